//! The execution journal: every step's start and end, appended and fsynced before anything
//! that depends on the step starts. Replaying it tells a resumed run what is already done.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::spec::time_format;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    pub run: String,
    pub seq: u64,
    #[serde(with = "time_format")]
    pub at: SystemTime,
    /// The action id; empty for run-level events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    #[serde(flatten)]
    pub event: JournalEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum JournalEvent {
    RunStarted {
        operation: String,
        plan_hash: String,
    },
    Started {
        attempt: u32,
    },
    /// A script's supervisor runs (journalled before the script may start): a resumed run
    /// waits for it or reads how it ended instead of starting the script again.
    Spawned {
        attempt: u32,
        process: crate::os::process::ProcessId,
        /// The folder of the attempt's status and output files.
        files: std::path::PathBuf,
    },
    /// The provider's outcome, as it reported it.
    Succeeded {
        outcome: serde_json::Value,
    },
    Failed {
        error: String,
        attempt: u32,
    },
    Skipped {
        reason: String,
    },
    Awaiting {
        prompt: String,
    },
    Approved {
        by: String,
    },
    /// A data-moving step was interrupted: its target is inconsistent until synced again.
    Interrupted {
        reason: String,
    },
    RunFinished {
        status: String,
    },
}
