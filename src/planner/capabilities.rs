//! A provider's support matrix, checked when a plan is made (like a platform that allows
//! no test failover in one direction).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ops::ProviderOp;
use crate::spec::Direction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directions {
    pub forward: bool,
    pub back: bool,
}

impl Directions {
    pub const BOTH: Directions = Directions { forward: true, back: true };

    pub fn allows(self, direction: Direction) -> bool {
        match direction {
            Direction::Forward => self.forward,
            Direction::Back => self.back,
        }
    }
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

/// What the planner needs to know about the platform: what it supports and how long its
/// operations take (for the RTO estimate).
pub trait Platform {
    fn capabilities(&self) -> Capabilities;
    fn estimate(&self, op: &ProviderOp) -> Duration;
}
