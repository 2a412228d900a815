//! The enumerations of the Azure Site Recovery REST API (2025-08-01) that recovery plans use,
//! and how drplan's step filters say the same.

use crate::spec::{Direction, Operation};

pub const GROUP_TYPES: &[&str] = &["Shutdown", "Failover", "Boot"];

/// `ReplicationProtectedItemOperation`: the operations an action may be filtered to.
pub const FAILOVER_TYPES: &[&str] = &[
    "ReverseReplicate",
    "Commit",
    "PlannedFailover",
    "UnplannedFailover",
    "DisableProtection",
    "TestFailover",
    "TestFailoverCleanup",
    "Failback",
    "FinalizeFailback",
    "CancelFailover",
    "ChangePit",
    "RepairReplication",
    "SwitchProtection",
    "CompleteMigration",
];

/// `PossibleOperationsDirections`.
pub const DIRECTIONS: &[&str] = &["PrimaryToRecovery", "RecoveryToPrimary"];

/// `RecoveryPlanActionLocation`.
pub const LOCATIONS: &[&str] = &["Primary", "Recovery"];

/// `FailoverDeploymentModel`.
pub const DEPLOYMENT_MODELS: &[&str] = &["NotApplicable", "Classic", "ResourceManager"];

/// The `instanceType`s of an action's `customDetails`.
pub const ACTION_KINDS: &[&str] = &["ManualActionDetails", "ScriptActionDetails", "AutomationRunbookActionDetails"];

/// The API's spelling of `value` among `allowed` (ARM compares enumerations without case).
pub fn canonical(value: &str, allowed: &[&'static str]) -> Option<&'static str> {
    allowed.iter().copied().find(|a| a.eq_ignore_ascii_case(value))
}

/// drplan's operations an ASR failover type means, given the action's directions: a planned
/// failover from the recovery site is what drplan calls a failback. Empty: no drplan meaning
/// (actions run only in failovers; commit, reprotect, cleanup and the rest run none).
pub fn operations_of(failover_type: &str, directions: &[Direction]) -> Vec<Operation> {
    match failover_type {
        "TestFailover" => vec![Operation::Drill],
        "UnplannedFailover" => vec![Operation::Unplanned],
        "Failback" => vec![Operation::Failback],
        "PlannedFailover" => {
            let mut ops = Vec::new();
            if directions.contains(&Direction::Forward) {
                ops.push(Operation::Planned);
            }
            if directions.contains(&Direction::Back) {
                ops.push(Operation::Failback);
            }
            ops
        }
        _ => Vec::new(),
    }
}

pub fn direction_of(direction: &str) -> Direction {
    if direction == "RecoveryToPrimary" { Direction::Back } else { Direction::Forward }
}

/// drplan's `direction` for an action's failover directions (each once, in order).
pub fn directions_meant(directions: &[String]) -> Vec<Direction> {
    let mut meant = Vec::new();
    for d in directions.iter().map(|d| direction_of(d)) {
        if !meant.contains(&d) {
            meant.push(d);
        }
    }
    meant
}

/// drplan's `only` for an action's failover types in `directions` (each once, in order).
pub fn operations_meant(failover_types: &[String], directions: &[Direction]) -> Vec<Operation> {
    let mut meant = Vec::new();
    for op in failover_types.iter().flat_map(|t| operations_of(t, directions)) {
        if !meant.contains(&op) {
            meant.push(op);
        }
    }
    meant
}

pub fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Forward => "PrimaryToRecovery",
        Direction::Back => "RecoveryToPrimary",
    }
}

/// The failover types that say drplan's `only` (ASR has no separate failback type in its
/// current scenarios: a failback is a planned failover from the recovery site).
pub fn failover_types_of(operations: &[Operation]) -> Vec<&'static str> {
    let mut types = Vec::new();
    for op in operations {
        let t = match op {
            Operation::Drill => "TestFailover",
            Operation::Planned | Operation::Failback => "PlannedFailover",
            Operation::Unplanned => "UnplannedFailover",
        };
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types
}

/// What `only` is absent: every operation an action can run in.
pub const ALL_OPERATIONS: &[Operation] =
    &[Operation::Planned, Operation::Unplanned, Operation::Drill, Operation::Failback];
