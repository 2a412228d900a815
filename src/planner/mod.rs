//! From a change set and the operation semantics to an ordered action DAG, saved as a plan file.

pub mod action;
pub mod build;
pub mod dag;
pub mod drill;
pub mod error;
pub mod file;
pub mod fingerprint;
pub mod schedule;
pub mod script_env;
mod transition;

pub use action::{Action, ActionKind, ActionPlan, FailurePolicy, Pending, PendingRun, Phase, RunKind, Unprotected};
pub use build::{PlanInput, build, build_commit, build_rollback};
pub use dag::Dag;
pub use drill::{DrillScope, build_drill, build_drill_cleanup};
pub use error::PlanError;
