//! Operations the engine asks a provider to perform.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::time::duration_ms;

/// An address given to a NIC on a network at the target site.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NicAssignment {
    pub network: String,
    /// None: DHCP.
    pub ip: Option<IpAddr>,
}

impl fmt::Display for NicAssignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            Some(ip) => write!(f, "{} {ip}", self.network),
            None => write!(f, "{} dhcp", self.network),
        }
    }
}

/// Failback data synchronisation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// Only changed blocks move: phase 1 while the active copy runs, a manual gate, then the final delta.
    #[default]
    Delta,
    /// Shut down, copy everything, start.
    Full,
}

/// One thing a provider is asked to do. Every operation is idempotent: asking again for
/// something already done reports `already_done` instead of doing it twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum ProviderOp {
    /// Initial replication: copy the machine to the other site, record the first point.
    EnableProtection { machine: String, from: String, to: String },
    /// Take a recovery point now (transferring what changed since the last one).
    TakePoint { machine: String, from: String, to: String },
    /// Power the machine off: `timeout` is how long its guest gets to shut down by itself
    /// (ACPI power-down, SIGTERM); after it the provider forces it off (a hard stop), which
    /// is a success. drplan waits as long again (5 s to 30 s) before it fails the step.
    Shutdown {
        machine: String,
        site: String,
        #[serde(with = "duration_ms")]
        timeout: Duration,
    },
    /// Power the machine on with `nics`: `timeout` is how long its guest gets to come up;
    /// after it the provider answers with an error that says what the guest did not do.
    /// drplan waits as long again (5 s to 30 s) before it fails the step itself. A machine
    /// the inventory calls [`Power::Booting`](crate::Power::Booting) is not launched again:
    /// the start waits for its guest.
    Start {
        machine: String,
        site: String,
        nics: Vec<NicAssignment>,
        #[serde(with = "duration_ms")]
        timeout: Duration,
    },
    /// Move data from the live copy to the other one. `final_sync`: the source is shut down
    /// and this is the last transfer before the target takes over.
    Sync { machine: String, from: String, to: String, mode: SyncMode, final_sync: bool },
    /// Make the copy at `to` the live one, from recovery point `point` or (None) from
    /// exactly the data synced last. `prefer_synced`: when a final sync did complete, use
    /// that instead of the point (unplanned failover that could still reach the source).
    /// The machine is not started.
    Failover {
        machine: String,
        from: String,
        to: String,
        point: Option<u64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        prefer_synced: bool,
        nics: Vec<NicAssignment>,
    },
    /// Drop the recovery points kept for changing the point after failover.
    Commit { machine: String, site: String },
    /// Before commit: roll the live copy at `site` to another recovery point (it is off).
    ChangePoint { machine: String, site: String, point: u64 },
    /// Before commit: undo a failover; the copy at `to` (the old source, untouched since)
    /// becomes the live one again and the failed-over copy at `from` is discarded.
    Revert { machine: String, from: String, to: String },
    /// Replicate from the live copy at `from` back to `to`, transferring only the delta.
    Reprotect { machine: String, from: String, to: String },
    /// Create and start a test copy from a point, attached only to drill networks.
    CreateTestCopy { machine: String, site: String, point: u64, nics: Vec<NicAssignment>, drill: String },
    /// Stop and delete a drill's test copy.
    RemoveTestCopy { machine: String, site: String, drill: String },
}

impl ProviderOp {
    pub fn machine(&self) -> &str {
        match self {
            ProviderOp::EnableProtection { machine, .. }
            | ProviderOp::TakePoint { machine, .. }
            | ProviderOp::Shutdown { machine, .. }
            | ProviderOp::Start { machine, .. }
            | ProviderOp::Sync { machine, .. }
            | ProviderOp::Failover { machine, .. }
            | ProviderOp::Commit { machine, .. }
            | ProviderOp::ChangePoint { machine, .. }
            | ProviderOp::Revert { machine, .. }
            | ProviderOp::Reprotect { machine, .. }
            | ProviderOp::CreateTestCopy { machine, .. }
            | ProviderOp::RemoveTestCopy { machine, .. } => machine,
        }
    }

    /// The site whose capacity the operation uses (for per-site parallelism limits).
    pub fn site(&self) -> &str {
        match self {
            ProviderOp::Shutdown { site, .. }
            | ProviderOp::Start { site, .. }
            | ProviderOp::Commit { site, .. }
            | ProviderOp::ChangePoint { site, .. }
            | ProviderOp::CreateTestCopy { site, .. }
            | ProviderOp::RemoveTestCopy { site, .. } => site,
            ProviderOp::EnableProtection { to, .. }
            | ProviderOp::TakePoint { to, .. }
            | ProviderOp::Sync { to, .. }
            | ProviderOp::Failover { to, .. }
            | ProviderOp::Revert { to, .. }
            | ProviderOp::Reprotect { to, .. } => to,
        }
    }

    /// The sites that must be reachable for the operation to work. A failover needs only its
    /// target: it must work while the source is dark.
    pub fn sites_needed(&self) -> Vec<&str> {
        match self {
            ProviderOp::EnableProtection { from, to, .. }
            | ProviderOp::TakePoint { from, to, .. }
            | ProviderOp::Sync { from, to, .. }
            | ProviderOp::Reprotect { from, to, .. }
            | ProviderOp::Revert { from, to, .. } => vec![from, to],
            ProviderOp::Failover { to, .. } => vec![to],
            ProviderOp::ChangePoint { site, .. }
            | ProviderOp::Shutdown { site, .. }
            | ProviderOp::Start { site, .. }
            | ProviderOp::Commit { site, .. }
            | ProviderOp::CreateTestCopy { site, .. }
            | ProviderOp::RemoveTestCopy { site, .. } => vec![site],
        }
    }

    pub fn kind(&self) -> OpKind {
        match self {
            ProviderOp::EnableProtection { .. } => OpKind::EnableProtection,
            ProviderOp::TakePoint { .. } => OpKind::TakePoint,
            ProviderOp::Shutdown { .. } => OpKind::Shutdown,
            ProviderOp::Start { .. } => OpKind::Start,
            ProviderOp::Sync { .. } => OpKind::Sync,
            ProviderOp::Failover { .. } => OpKind::Failover,
            ProviderOp::Commit { .. } => OpKind::Commit,
            ProviderOp::ChangePoint { .. } => OpKind::ChangePoint,
            ProviderOp::Revert { .. } => OpKind::Revert,
            ProviderOp::Reprotect { .. } => OpKind::Reprotect,
            ProviderOp::CreateTestCopy { .. } => OpKind::CreateTestCopy,
            ProviderOp::RemoveTestCopy { .. } => OpKind::RemoveTestCopy,
        }
    }

    /// Moving data: interrupting it leaves the target inconsistent.
    pub fn moves_data(&self) -> bool {
        matches!(self.kind(), OpKind::Sync | OpKind::EnableProtection | OpKind::Reprotect | OpKind::TakePoint)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    EnableProtection,
    TakePoint,
    Shutdown,
    Start,
    Sync,
    Failover,
    Commit,
    ChangePoint,
    Revert,
    Reprotect,
    CreateTestCopy,
    RemoveTestCopy,
}

impl OpKind {
    pub const ALL: [OpKind; 12] = [
        OpKind::EnableProtection,
        OpKind::TakePoint,
        OpKind::Shutdown,
        OpKind::Start,
        OpKind::Sync,
        OpKind::Failover,
        OpKind::Commit,
        OpKind::ChangePoint,
        OpKind::Revert,
        OpKind::Reprotect,
        OpKind::CreateTestCopy,
        OpKind::RemoveTestCopy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::EnableProtection => "enable-protection",
            OpKind::TakePoint => "take-point",
            OpKind::Shutdown => "shutdown",
            OpKind::Start => "start",
            OpKind::Sync => "sync",
            OpKind::Failover => "failover",
            OpKind::Commit => "commit",
            OpKind::ChangePoint => "change-point",
            OpKind::Revert => "revert",
            OpKind::Reprotect => "reprotect",
            OpKind::CreateTestCopy => "create-test-copy",
            OpKind::RemoveTestCopy => "remove-test-copy",
        }
    }
}
