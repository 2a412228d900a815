//! The action plan: an ordered DAG of actions, with what it was computed from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::contract::ProviderOp;
use crate::spec::time_format;
use crate::spec::{Direction, OnFailure};
pub use crate::state::RunKind;

/// Version of the plan file format.
pub const PLAN_FILE_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionPlan {
    pub plan: String,
    /// The plan document, as given on the command line when the plan was made.
    pub plan_path: PathBuf,
    pub drplan_version: String,
    #[serde(with = "time_format")]
    pub created_at: SystemTime,
    pub run: RunKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub policy: FailurePolicy,
    pub fingerprint: Fingerprint,
    pub parallelism: usize,
    /// Per-site limits on concurrent provider operations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub site_limits: BTreeMap<String, usize>,
    /// Topologically ordered: every action comes after what it waits for.
    pub actions: Vec<Action>,
    pub machines: Vec<crate::diff::MachineDiff>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<crate::diff::Drift>,
    pub summary: PlanSummary,
    /// What keeps the plan from its target besides these actions.
    #[serde(default, skip_serializing_if = "Pending::is_empty")]
    pub pending: Pending,
}

impl ActionPlan {
    /// Something to execute.
    pub fn has_actions(&self) -> bool {
        self.actions.iter().any(|a| !matches!(a.kind, ActionKind::Barrier))
    }

    /// The plan has not reached its target: actions to execute, or something pending.
    pub fn has_changes(&self) -> bool {
        self.has_actions() || !self.pending.is_empty()
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.actions.iter().position(|a| a.id == id)
    }
}

/// What stands between the world and the plan's target, other than the plan's actions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// An unfinished run: `apply` continues it rather than planning anew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<PendingRun>,
    /// Failovers that await `drplan commit` (`commit: manual`), by machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<String>,
    /// Machines that will not be protected (replicating) once this plan has run, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unprotected: Vec<Unprotected>,
    /// Machines another plan manages: `apply` refuses until one of the plans lets them go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claimed: Vec<crate::contract::ForeignClaim>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.run.is_none() && self.commits.is_empty() && self.unprotected.is_empty() && self.claimed.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRun {
    pub id: String,
    pub kind: RunKind,
    /// paused, failed, interrupted or running (a crashed process).
    pub status: String,
    /// Manual steps it waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting: Vec<String>,
    pub steps_done: usize,
    pub steps_total: usize,
    /// False when the plan document changed since the run started: `apply` refuses until the
    /// run is resumed or cancelled.
    pub same_document: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unprotected {
    pub machine: String,
    pub reason: String,
}

/// What a failed action does to the rest of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Start nothing new after a failure; what runs finishes. Re-running continues.
    Stop,
    /// Skip only what needs the failed action; report every error at the end.
    Continue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub document_hash: String,
    pub state_lineage: String,
    pub state_serial: u64,
    /// A short hash per machine of the inventory the plan relies on.
    pub machines: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Failback phase 1: copy while the live machines keep running.
    PreSync,
    /// The "complete failover" gate of a delta-sync failback.
    Gate,
    Shutdown,
    FinalSync,
    Failover,
    Boot,
    Commit,
    Protect,
    Drill,
    Cleanup,
}

impl Phase {
    pub fn title(self) -> &'static str {
        match self {
            Phase::PreSync => "sync while running",
            Phase::Gate => "complete failover",
            Phase::Shutdown => "shut down",
            Phase::FinalSync => "final sync",
            Phase::Failover => "fail over",
            Phase::Boot => "boot groups in order",
            Phase::Commit => "commit",
            Phase::Protect => "protect",
            Phase::Drill => "drill",
            Phase::Cleanup => "clean up",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: String,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    pub kind: ActionKind,
    /// Ids of actions that must have succeeded before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Ids of actions that must have finished (whatever their result) before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Expected duration (provider latency estimate), for the RTO estimate.
    pub estimate_ms: u64,
    /// `continue`: a failure of this action does not stop the run.
    pub on_failure: OnFailure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ActionKind {
    Provider {
        op: ProviderOp,
    },
    Script {
        run: Vec<String>,
        program: PathBuf,
        dir: PathBuf,
        env: BTreeMap<String, super::script_env::ScriptEnv>,
        #[serde(with = "time_format::duration_ms")]
        timeout: std::time::Duration,
        retries: u32,
    },
    Manual {
        prompt: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        approvers: Vec<String>,
    },
    /// A point in the DAG (a group begins or is done); takes no time.
    Barrier,
}

impl ActionKind {
    /// Uses a slot of the parallelism limit.
    pub fn takes_slot(&self) -> bool {
        matches!(self, ActionKind::Provider { .. } | ActionKind::Script { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// How many actions of each kind, in display order.
    pub counts: Vec<Count>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_rto_ms: Option<u64>,
    pub rto_objective_ms: u64,
    pub rpo_objective_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replication_lag_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_data_loss: Option<LossSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// `protect`, `shut-down`, `sync`, `fail-over`, `start`, `script`, `approval`, `commit`,
    /// `reprotect`, `take-point`, `create-test-copy` or `remove-test-copy`.
    pub what: String,
    pub count: usize,
}

impl Count {
    /// "4 to shut down", "1 approval", "2 test copies to create".
    pub fn phrase(&self) -> String {
        let n = self.count;
        let one = n == 1;
        match self.what.as_str() {
            "script" => format!("{n} script{}", if one { "" } else { "s" }),
            "approval" => format!("{n} approval{}", if one { "" } else { "s" }),
            "take-point" => format!("{n} recovery point{} to take", if one { "" } else { "s" }),
            "create-test-copy" => format!("{n} test cop{} to create", if one { "y" } else { "ies" }),
            "remove-test-copy" => format!("{n} test cop{} to remove", if one { "y" } else { "ies" }),
            "change-point" => format!("{n} to move to another recovery point"),
            other => format!("{n} to {}", other.replace('-', " ")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossSummary {
    /// The worst machine's loss in time.
    pub max_time_ms: u64,
    /// Total bytes lost across machines, where every machine's loss is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
}
