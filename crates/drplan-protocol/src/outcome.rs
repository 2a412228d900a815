//! What a provider reports back after an operation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::duration_ms;

/// What an operation did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpOutcome {
    /// One line for logs and reports.
    pub summary: String,
    /// The operation had already taken effect; nothing was done.
    #[serde(default)]
    pub already_done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_transferred: Option<u64>,
    /// The recovery point the machine now runs from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<u64>,
    /// Data lost by this failover: time and, where known, bytes after the point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_loss: Option<DataLoss>,
    /// Checksum verification of the target against the expected data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DataLoss {
    #[serde(with = "duration_ms")]
    pub time: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}
