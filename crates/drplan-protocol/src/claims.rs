//! Who manages a machine. Two plans that drive one machine would undo each other's moves, so
//! a provider records which plan's state owns each machine and refuses a second owner.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::time as time_format;

/// One plan's state: the owner of the machines that plan manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claimant {
    /// The plan's name.
    pub plan: String,
    /// The lineage of its state (fixed when the state was created).
    pub lineage: String,
    /// Where its state lives (a directory, or a backend's address).
    pub state: String,
    /// The host that last claimed for it.
    pub host: String,
}

impl Claimant {
    /// Whether `other` is this same plan's state (the host may differ: shared state).
    pub fn same_owner(&self, other: &Claimant) -> bool {
        self.lineage == other.lineage && self.state == other.state
    }
}

impl std::fmt::Display for Claimant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plan `{}` (state at {}, claimed from {})", self.plan, self.state, self.host)
    }
}

/// Another plan's claim on one of this plan's machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignClaim {
    /// The machine, by its name in this plan.
    pub machine: String,
    pub owner: Claimant,
    #[serde(with = "time_format")]
    pub since: SystemTime,
}
