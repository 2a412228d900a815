//! Recording the approval of a manual step of the unfinished run (or of a script whose
//! outcome is unknown, which counts it as done); `resume` then continues past it.

use std::time::SystemTime;

use super::error::{Failure, RunsError};
use super::workspace::Held;
use crate::planner::ActionKind;
use crate::spec::suggest;
use crate::state::{Approval, JournalEvent, JournalRecord};

impl Held<'_> {
    /// Approve `step` of the unfinished run as `by` (checked against the step's approvers).
    /// Approving again changes nothing: the first approval is returned and stays the record.
    pub fn approve(&mut self, step: &str, by: &str) -> Result<Option<Approval>, Failure> {
        let Some(active) = self.state.run.clone() else {
            return Err(RunsError::NoActiveRun { plan: self.model().name.clone() }.into());
        };
        let plan = self.run_plan(&active.id)?;
        // Manual steps, and scripts whose outcome is unknown (approving says they did run).
        let anyone = Vec::new();
        let manual: Vec<(&str, &Vec<String>)> = plan
            .actions
            .iter()
            .filter_map(|a| match &a.kind {
                ActionKind::Manual { approvers, .. } => Some((a.id.as_str(), approvers)),
                ActionKind::Script { .. } if active.awaiting.contains(&a.id) => Some((a.id.as_str(), &anyone)),
                _ => None,
            })
            .collect();
        let Some(&(_, approvers)) = manual.iter().find(|(id, _)| *id == step) else {
            let help = suggest::help_for("manual step", step, manual.iter().map(|(id, _)| *id));
            return Err(RunsError::UnknownStep { step: step.to_string(), help }.into());
        };
        if !approvers.is_empty() && !approvers.iter().any(|a| a == by) {
            return Err(RunsError::NotAnApprover {
                step: step.to_string(),
                by: by.to_string(),
                approvers: approvers.join(", "),
            }
            .into());
        }
        if let Some(earlier) = active.approvals.get(step) {
            return Ok(Some(earlier.clone()));
        }
        let store = self.workspace.store.clone();
        let journal = store.read_journal(&active.id)?;
        let seq = journal.iter().map(|r| r.seq).max().unwrap_or(0) + 1;
        let now = SystemTime::now();
        let record = JournalRecord {
            run: active.id.clone(),
            seq,
            at: now,
            step: step.to_string(),
            event: JournalEvent::Approved { by: by.to_string() },
        };
        store.append_journal(&active.id, &[record])?;
        if let Some(run) = self.state.run.as_mut() {
            run.approvals.insert(step.to_string(), Approval { by: by.to_string(), at: now });
            run.awaiting.retain(|s| s != step);
        }
        self.save()?;
        Ok(None)
    }
}
