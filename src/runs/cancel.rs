//! Abandoning the unfinished run. What it did stays done; a data sync it interrupted left its
//! target marked inconsistent, and the next apply redoes it.

use std::time::SystemTime;

use super::error::{Failure, RunsError};
use super::workspace::Held;
use crate::exec::run_report;
use crate::state::{ActiveRun, StateStore};

impl Held<'_> {
    /// Abandon the unfinished run; its report says how far it got.
    pub fn cancel(&mut self) -> Result<ActiveRun, Failure> {
        let Some(active) = self.state.run.take() else {
            return Err(RunsError::NoActiveRun { plan: self.model().name.clone() }.into());
        };
        if let Ok(plan) = self.run_plan(&active.id) {
            let store = self.workspace.store.clone();
            let journal = store.read_journal(&active.id).unwrap_or_default();
            let report = run_report::build(&active.id, &plan, &journal, "cancelled", SystemTime::now());
            let bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
            store.write_artifact(&format!("{}.report.json", active.id), &bytes)?;
        }
        self.save()?;
        Ok(active)
    }
}
