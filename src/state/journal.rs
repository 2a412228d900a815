//! The execution journal: every step's start and end, appended and fsynced before anything
//! that depends on the step starts. Replaying it tells a resumed run what is already done.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::contract::OpOutcome;
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
    /// The provider's outcome, as it reported it (a script's: its summary and output).
    Succeeded {
        outcome: StepOutcome,
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

/// What a succeeded step reported. Typed rather than kept as JSON: a 60,000-step journal
/// read back for the report held a 600-byte map per outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    #[serde(flatten)]
    pub op: OpOutcome,
    /// A script's output (its last lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_written_before_outcomes_were_typed_read_the_same() {
        let script = r#"{"run":"r","seq":3,"at":"2026-11-24T00:00:00.000Z","step":"s","event":"succeeded","outcome":{"summary":"exit 0","output":"done\n"}}"#;
        let record: JournalRecord = serde_json::from_str(script).unwrap();
        let JournalEvent::Succeeded { outcome } = &record.event else { panic!("{record:?}") };
        assert_eq!((outcome.op.summary.as_str(), outcome.output.as_deref()), ("exit 0", Some("done\n")));

        let provider = r#"{"run":"r","seq":4,"at":"2026-11-24T00:00:00.000Z","step":"f","event":"succeeded","outcome":{"summary":"failed over","already_done":false,"point":7,"data_loss":{"time":1000,"bytes":5}}}"#;
        let record: JournalRecord = serde_json::from_str(provider).unwrap();
        let JournalEvent::Succeeded { outcome } = &record.event else { panic!("{record:?}") };
        assert_eq!(outcome.op.point, Some(7));
        assert_eq!(outcome.op.data_loss.map(|d| d.bytes), Some(Some(5)));
        assert_eq!(outcome.output, None);
        // Written back as it was read.
        let again: JournalRecord = serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(again, record);
    }
}
