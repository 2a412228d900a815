//! drplan's own bookkeeping at a local site, each file replaced atomically.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::contract::NicState;
use crate::contract::ProviderError;
pub use crate::os::process::ProcessId;
use crate::spec::time_format::{self, opt_time};
use crate::state::atomic::write_atomic;

/// A machine's copy at this site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineRecord {
    /// The live copy runs the machine; a stale one is what is left after a failover away.
    pub role: Role,
    /// Raised on every failover: when two sites both claim to be live (one was dark during
    /// the failover), the higher epoch wins.
    pub epoch: u64,
    pub power: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessId>,
    #[serde(default)]
    pub nics: Vec<NicState>,
    #[serde(default)]
    pub commit_pending: bool,
    /// Where the machine failed over from, while a rollback is still possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_over_from: Option<String>,
    /// When that failover happened (data loss of a later change of point counts from here).
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub failed_over_at: Option<SystemTime>,
    /// The recovery point the live copy was put in place from, while the failover is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holds_point: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Live,
    Stale,
}

impl MachineRecord {
    pub fn live(epoch: u64) -> Self {
        MachineRecord {
            role: Role::Live,
            epoch,
            power: false,
            process: None,
            nics: Vec::new(),
            commit_pending: false,
            failed_over_from: None,
            failed_over_at: None,
            holds_point: None,
        }
    }
}

/// The replica of a machine held at this site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaState {
    /// The site replicated from.
    pub from: String,
    /// False while a transfer is in progress or was interrupted: the current image is not a
    /// complete point, and the next transfer redoes it.
    pub consistent: bool,
    /// Set while the replica has been failed over to (the live copy now runs from it); the
    /// points stay for a rollback or a change of point until the commit.
    #[serde(default)]
    pub failed_over: bool,
    pub block_size: u64,
    pub points: Vec<PointMeta>,
    pub next_point: u64,
    /// The source's epoch when replication began.
    #[serde(default)]
    pub source_epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointMeta {
    pub id: u64,
    #[serde(with = "time_format")]
    pub time: SystemTime,
    pub app_consistent: bool,
    /// Disk name -> size in bytes at this point.
    pub disks: BTreeMap<String, u64>,
}

/// A drill's test copy at this site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    pub point: u64,
    pub power: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessId>,
    pub nics: Vec<NicState>,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<SystemTime>,
}

pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, ProviderError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ProviderError::failed(format!("{} is corrupt: {e}; restore it or remove it to start over", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ProviderError::failed(format!("cannot read {}: {e}", path.display()))),
    }
}

pub fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), ProviderError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| ProviderError::failed(e.to_string()))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes).map_err(|e| ProviderError::failed(format!("cannot write {}: {e}", path.display())))
}
