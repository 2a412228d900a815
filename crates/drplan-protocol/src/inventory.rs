//! What is actually there: a provider's view of the plan's machines at one moment.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// A small map kept as a sorted list: a machine's copies (one per site) and settings.
/// Serialized as a JSON object, like a `BTreeMap`.
pub type SmallMap<K, V> = litemap::LiteMap<K, V>;

use crate::time::{self as time_format, opt_duration_ms};

/// Everything a provider can see of the plan's machines, at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    #[serde(with = "time_format")]
    pub taken_at: SystemTime,
    pub sites: BTreeMap<String, SiteInventory>,
    /// Keyed by the machine's name in the plan.
    pub machines: BTreeMap<String, MachineInventory>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteInventory {
    pub reachable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Power {
    On,
    /// The machine runs, but its guest has not yet said that it is up (a provider that can
    /// tell, by a ready line on the console say). drplan plans a start for it, and a provider
    /// asked to start a booting machine waits for its guest.
    Booting,
    Off,
    /// The site cannot be reached.
    Unknown,
}

impl Power {
    /// Whether the machine runs at all, its guest up or not: it must be stopped before its
    /// disks are overwritten, and a start need not launch it again.
    pub fn runs(self) -> bool {
        matches!(self, Power::On | Power::Booting)
    }
}

impl fmt::Display for Power {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Power::On => "on",
            Power::Booting => "booting",
            Power::Off => "off",
            Power::Unknown => "unknown",
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineInventory {
    /// Where the live copy is (None: the machine exists nowhere yet, or cannot be told).
    pub active_site: Option<String>,
    /// Copies of the machine by site: the live one and replicas.
    pub copies: SmallMap<String, MachineCopy>,
    pub replication: Option<Replication>,
    /// Oldest first.
    pub points: Vec<RecoveryPoint>,
    /// A failover happened and has not been committed yet.
    pub commit_pending: bool,
    /// When that uncommitted failover happened: data loss is counted from here when the
    /// recovery point is changed before the commit.
    #[serde(default, with = "time_format::opt_time", skip_serializing_if = "Option::is_none")]
    pub failed_over_at: Option<SystemTime>,
    pub test_copies: Vec<TestCopy>,
}

impl MachineInventory {
    pub fn power_at(&self, site: &str) -> Option<Power> {
        self.copies.get(site).map(|c| c.power)
    }
}

/// One copy of a machine at one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineCopy {
    pub power: Power,
    /// False when a data sync into this copy was interrupted: it must be synced again.
    pub consistent: bool,
    pub nics: Vec<NicState>,
    /// Machine settings (cpu, memory, ...), compared for drift before a failback.
    pub settings: SmallMap<String, String>,
    pub disks: Vec<DiskInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicState {
    pub network: String,
    pub ip: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    pub name: String,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replication {
    pub from: String,
    pub to: String,
    pub health: ReplicationHealth,
    /// Age of the newest recovery point.
    #[serde(default, with = "opt_duration_ms", skip_serializing_if = "Option::is_none")]
    pub lag: Option<Duration>,
    /// Bytes written at the source that no recovery point holds yet, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicationHealth {
    Healthy,
    /// Replication is set up but the source cannot be reached (a site is dark).
    Degraded,
    /// The replica is not usable until synced again.
    Inconsistent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryPoint {
    pub id: u64,
    #[serde(with = "time_format")]
    pub time: SystemTime,
    pub consistency: Consistency,
    /// Already processed at the recovery site (fastest to fail over to).
    pub processed: bool,
    /// Bytes written at the source after this point, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_after: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    Crash,
    App,
}

impl Consistency {
    /// App-consistent when the guest was quiesced (frozen) at the point's instant.
    pub fn of(quiesced: bool) -> Consistency {
        if quiesced { Consistency::App } else { Consistency::Crash }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCopy {
    pub site: String,
    pub drill: String,
    pub power: Power,
}
