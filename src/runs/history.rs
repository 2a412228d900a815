//! Finished runs: remembered in state for `drplan history`, their reports kept beside it.

use super::error::{Failure, RunsError};
use super::workspace::Workspace;
use crate::exec::run_report::RunReport;
use crate::planner::PlanError;
use crate::spec::suggest;
use crate::state::{HISTORY_KEPT, HistoryEntry, State};

/// Remember a finished run for `drplan history`.
pub fn record_history(state: &mut State, run: &RunReport, drill: Option<String>) {
    state.history.push(HistoryEntry {
        run: run.run.clone(),
        kind: run.kind,
        status: run.status.clone(),
        started_at: run.started_at,
        finished_at: run.finished_at,
        rto_ms: run.rto.as_ref().map(|r| r.measured_ms),
        rto_objective_ms: run.objectives.rto_ms,
        data_loss_ms: run.data_loss.as_ref().map(|l| l.max_time_ms),
        rpo_objective_ms: run.objectives.rpo_ms,
        drill,
        notes: (!run.notes.is_empty()).then(|| run.notes.join("\n")),
    });
    let excess = state.history.len().saturating_sub(HISTORY_KEPT);
    state.history.drain(..excess);
}

impl Workspace {
    /// The kept report of a past (or the unfinished) run, by id or a prefix of one.
    pub fn run_report(&self, state: &State, run: &str) -> Result<RunReport, Failure> {
        let known: Vec<&str> =
            state.history.iter().map(|h| h.run.as_str()).chain(state.run.as_ref().map(|r| r.id.as_str())).collect();
        let Some(id) = known.iter().find(|r| !run.is_empty() && r.starts_with(run)).map(|r| r.to_string()) else {
            let help = suggest::help_for("run", run, known.iter().copied());
            return Err(RunsError::UnknownRun { run: run.to_string(), plan: self.model.name.clone(), help }.into());
        };
        let name = format!("{id}.report.json");
        let bytes = self.store.read_artifact(&name)?.ok_or(RunsError::ReportMissing { run: id })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| PlanError::CorruptFile { path: name.into(), reason: e.to_string() }.into())
    }
}
