//! A provider's support matrix, checked when a plan is made (like a platform that allows
//! no test failover in one direction).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directions {
    pub forward: bool,
    pub back: bool,
}

impl Directions {
    pub const BOTH: Directions = Directions { forward: true, back: true };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub test_failover: Directions,
    pub planned_failover: Directions,
    pub unplanned_failover: Directions,
    pub failback_delta: bool,
    pub failback_full: bool,
    pub alternate_location: bool,
    pub app_consistent_points: bool,
    /// Before commit, fail over again to another recovery point.
    pub change_recovery_point: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            test_failover: Directions::BOTH,
            planned_failover: Directions::BOTH,
            unplanned_failover: Directions::BOTH,
            failback_delta: true,
            failback_full: true,
            alternate_location: true,
            app_consistent_points: true,
            change_recovery_point: true,
        }
    }
}
