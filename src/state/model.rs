//! The engine's own state document.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::spec::time_format::{self, opt_time};
use crate::spec::{OnFailure, Operation};

/// The state format this build reads and writes.
pub const STATE_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: u32,
    /// Fixed when the state is created: a saved plan from another lineage is never applied.
    pub lineage: String,
    /// Bumped on every save: a saved plan computed at another serial is stale.
    pub serial: u64,
    pub plan: String,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<SystemTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_apply: Option<LastApply>,
    /// A run that has not finished: paused at an approval, failed, or interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<ActiveRun>,
    /// The drill whose test copies exist (at most one per plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<OpenDrill>,
    /// Finished runs and drills, oldest first (the newest `HISTORY_KEPT`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Where this state lived when it first claimed its machines, once it has moved to
    /// another backend (`drplan state migrate`): its claims stay recorded under that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_as: Option<String>,
}

/// What kind of run a plan performs. State files written before this was typed hold the
/// titles (`planned failover`), which still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// Nothing moves: protection, commits, power.
    Converge,
    #[serde(alias = "planned failover")]
    PlannedFailover,
    #[serde(alias = "unplanned failover")]
    UnplannedFailover,
    Failback,
    /// The recovery site is gone: back to the primary from the latest point that reached it.
    UnplannedFailback,
    Drill,
    #[serde(alias = "drill cleanup")]
    DrillCleanup,
    Commit,
    Rollback,
}

impl RunKind {
    /// The operations step filters (`only:`) match, if steps run at all. `failback` is the
    /// planned move home (as failover types and directions combine in the reference); an
    /// unplanned failback is an unplanned failover in the `back` direction.
    pub fn step_operations(self) -> &'static [Operation] {
        match self {
            RunKind::PlannedFailover => &[Operation::Planned],
            RunKind::UnplannedFailover => &[Operation::Unplanned],
            RunKind::Failback => &[Operation::Failback],
            RunKind::UnplannedFailback => &[Operation::Unplanned],
            RunKind::Drill => &[Operation::Drill],
            _ => &[],
        }
    }

    /// Runs that go on past errors and report them all.
    pub fn is_unplanned(self) -> bool {
        matches!(self, RunKind::UnplannedFailover | RunKind::UnplannedFailback)
    }

    /// What a script without `on_failure` does when it fails: a planned failover or a failback
    /// stops (re-running continues), an unplanned failover and a drill run to completion.
    pub fn script_failure_policy(self) -> OnFailure {
        match self {
            RunKind::UnplannedFailover | RunKind::UnplannedFailback | RunKind::Drill | RunKind::Converge => {
                OnFailure::Continue
            }
            _ => OnFailure::Stop,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            RunKind::Converge => "converge",
            RunKind::PlannedFailover => "planned failover",
            RunKind::UnplannedFailover => "unplanned failover",
            RunKind::Failback => "failback",
            RunKind::UnplannedFailback => "unplanned failback",
            RunKind::Drill => "drill",
            RunKind::DrillCleanup => "drill cleanup",
            RunKind::Commit => "commit",
            RunKind::Rollback => "rollback",
        }
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.title())
    }
}

/// How many finished runs the state remembers.
pub const HISTORY_KEPT: usize = 500;

/// A drill that has created test copies and not yet been cleaned up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenDrill {
    pub id: String,
    /// The run that created the copies.
    pub run: String,
    #[serde(with = "time_format")]
    pub started_at: SystemTime,
    /// Force-cleaned by the next command after this age.
    #[serde(with = "crate::spec::time_format::duration_ms")]
    pub max_age: std::time::Duration,
    /// Where the test copies are, by machine.
    pub copies: std::collections::BTreeMap<String, String>,
    /// Clean up as soon as the drill's run is over (also when it is resumed after an approval).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A finished run or drill, for `drplan history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub run: String,
    pub kind: RunKind,
    pub status: String,
    #[serde(with = "time_format")]
    pub started_at: SystemTime,
    #[serde(with = "time_format")]
    pub finished_at: SystemTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_ms: Option<u64>,
    pub rto_objective_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_loss_ms: Option<u64>,
    pub rpo_objective_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

impl State {
    pub fn new(plan: &str) -> Self {
        State {
            format: STATE_FORMAT,
            lineage: new_id(),
            serial: 0,
            plan: plan.to_string(),
            updated_at: None,
            last_apply: None,
            run: None,
            drill: None,
            history: Vec::new(),
            claims_as: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastApply {
    pub run: String,
    pub operation: String,
    pub document_hash: String,
    #[serde(with = "time_format")]
    pub finished_at: SystemTime,
    pub status: String,
}

/// A run that has started and not finished. Its plan is kept as the artifact
/// `<id>.plan`, its journal as `<id>.journal.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveRun {
    pub id: String,
    pub kind: RunKind,
    /// Identifies the saved plan it executes (its checksum).
    pub plan_checksum: String,
    pub document_hash: String,
    #[serde(with = "time_format")]
    pub started_at: SystemTime,
    pub status: RunState,
    /// Manual steps the run waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting: Vec<String>,
    /// Where the run writes its evidence (`--report DIR`), so a resumed run updates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_dir: Option<std::path::PathBuf>,
    /// Approvals recorded for this run, by step id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub approvals: std::collections::BTreeMap<String, Approval>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    Running,
    Paused,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    #[serde(with = "time_format")]
    pub at: SystemTime,
}

/// The first characters of a run id, as shown to people.
pub fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// A random 128-bit id in hex: lineages, run ids, drill ids.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_err() {
        // No /dev/urandom: mix the clock and pid; unique enough for local identifiers.
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        bytes = blake3::hash(format!("{nanos}-{}", std::process::id()).as_bytes()).as_bytes()[..16]
            .try_into()
            .unwrap_or([0; 16]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
