//! Abandoning the unfinished run. What it did stays done; a data sync it interrupted left its
//! target marked inconsistent, and the next apply redoes it. An abandoned run is still
//! history: its report says how far it got.

use std::time::SystemTime;

use super::error::{Failure, RunsError};
use super::history::record_history;
use super::workspace::{Held, Workspace};
use crate::exec::run_report::{self, RunReport};
use crate::planner::file;
use crate::state::{ActiveRun, RunKind, State};

impl Held<'_> {
    /// Abandon the unfinished run; its report and history entry say how far it got.
    pub fn cancel(&mut self) -> Result<ActiveRun, Failure> {
        let Some(active) = self.state.run.clone() else {
            return Err(RunsError::NoActiveRun { plan: self.model().name.clone() }.into());
        };
        abandon(self.workspace, &mut self.state, "cancelled")?;
        self.save()?;
        Ok(active)
    }
}

/// Take the unfinished run out of `state`, keep its report (status `status`) and record it
/// in history. The caller saves the state.
pub(super) fn abandon(workspace: &Workspace, state: &mut State, status: &str) -> Result<Option<RunReport>, Failure> {
    let Some(active) = state.run.take() else { return Ok(None) };
    let store = &workspace.store;
    let name = format!("{}.plan", active.id);
    let Some(bytes) = store.read_artifact(&name)? else { return Ok(None) };
    let plan = file::from_bytes(&std::path::PathBuf::from(format!("{} {name}", store.location())), &bytes)?;
    let journal = store.read_journal(&active.id)?;
    // Scripts an earlier drplan left running are stopped: nothing of an abandoned run goes on.
    for orphan in super::execute::orphans(&journal).values() {
        if let Err(e) = crate::os::process::stop(&orphan.process, std::time::Duration::from_secs(15)) {
            tracing::warn!(target: "drplan", "a script of the abandoned run did not stop: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(store.local_dir().join("steps").join(&active.id));
    let report = run_report::build(&active.id, &plan, &journal, status, SystemTime::now());
    let bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
    store.write_artifact(&format!("{}.report.json", active.id), &bytes)?;
    let drill = state.drill.as_ref().filter(|_| active.kind == RunKind::Drill).map(|d| d.id.clone());
    record_history(state, &report, drill);
    Ok(Some(report))
}
