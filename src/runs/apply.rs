//! What a state-changing command is about to execute: a new plan to review, or the unfinished
//! run to continue; refused when it would cross another run or act on a stale view.

use std::collections::HashSet;
use std::path::Path;

use super::error::Failure;
use super::execute::plan_checksum;
use super::workspace::{Held, Workspace};
use crate::planner::file::{self, SavedPlan};
use crate::planner::fingerprint::staleness;
use crate::planner::{ActionKind, ActionPlan, PendingRun, PlanError, build, build_commit, build_rollback};
use crate::state::JournalEvent;
use crate::validate::RecoveryPointSel;

/// What an apply will execute.
pub enum Prepared {
    /// The unfinished run of this plan, continued where it stopped.
    Continue(ActionPlan),
    /// A new plan, to show and confirm first.
    New(ActionPlan),
}

impl Held<'_> {
    /// What applying the plan document would do now: continue the unfinished run (its plan,
    /// with how far it got), or the plan of the change to the target.
    pub async fn plan(&self, parallelism: usize) -> Result<ActionPlan, Failure> {
        if let Some(active) = &self.state.run {
            let mut plan = self.run_plan(&active.id)?;
            let journal = self.workspace.store.read_journal(&active.id)?;
            let done: HashSet<&str> = journal
                .iter()
                .filter(|r| matches!(r.event, JournalEvent::Succeeded { .. } | JournalEvent::Approved { .. }))
                .map(|r| r.step.as_str())
                .collect();
            let steps: Vec<&str> =
                plan.actions.iter().filter(|a| !matches!(a.kind, ActionKind::Barrier)).map(|a| a.id.as_str()).collect();
            plan.pending.run = Some(PendingRun {
                id: active.id.clone(),
                kind: active.kind,
                status: format!("{:?}", active.status).to_lowercase(),
                awaiting: active.awaiting.clone(),
                steps_done: steps.iter().filter(|s| done.contains(*s)).count(),
                steps_total: steps.len(),
                same_document: active.document_hash == self.model().document_hash,
            });
            return Ok(plan);
        }
        let observed = self.observe().await?;
        let mut plan = build(&self.input(&observed, parallelism))?;
        plan.pending.claimed = self.foreign_claims().await?;
        // A saved plan names this state's lineage: it must stay.
        self.keep();
        Ok(plan)
    }

    /// Apply the plan document: continue its unfinished run (if the document is the one that
    /// run was planned from), or plan anew.
    pub async fn prepare_apply(&self, parallelism: usize) -> Result<Prepared, Failure> {
        if let Some(active) = &self.state.run {
            if active.document_hash != self.model().document_hash {
                return Err(self.in_progress(active).into());
            }
            return Ok(Prepared::Continue(self.run_plan(&active.id)?));
        }
        Ok(Prepared::New(self.plan(parallelism).await?))
    }

    /// Apply a saved plan exactly: continue its own unfinished run, or refuse it when anything
    /// it was computed from changed.
    pub async fn prepare_saved(&self, saved: SavedPlan, file: &Path) -> Result<Prepared, Failure> {
        // Only what `plan --out` wrote for this state runs, whatever its checksum says.
        saved.authenticate(file, &self.secret_key)?;
        let plan = saved.plan;
        if let Some(active) = &self.state.run {
            if active.plan_checksum != plan_checksum(&plan) {
                return Err(self.in_progress(active).into());
            }
            return Ok(Prepared::Continue(plan));
        }
        let inventory = self.inventory().await?;
        let mut reasons = staleness(&plan, &self.model().document_hash, &self.state, &inventory);
        if self.model().name != plan.plan {
            reasons.insert(0, format!("the document now holds plan `{}`", self.model().name));
        }
        if !reasons.is_empty() {
            return Err(PlanError::Stale { path: file.to_path_buf(), reasons: reasons.join("; ") }.into());
        }
        Ok(Prepared::New(plan))
    }

    /// `drplan commit`: commit every failover that awaits it, then reprotect.
    pub async fn prepare_commit(&self, parallelism: usize) -> Result<ActionPlan, Failure> {
        self.refuse_unfinished()?;
        let observed = self.observe().await?;
        Ok(build_commit(&self.input(&observed, parallelism))?)
    }

    /// `drplan rollback`: undo failovers that await commit, or move them to another point.
    pub async fn prepare_rollback(
        &self,
        point: Option<RecoveryPointSel>,
        parallelism: usize,
    ) -> Result<ActionPlan, Failure> {
        self.refuse_unfinished()?;
        let observed = self.observe().await?;
        Ok(build_rollback(&self.input(&observed, parallelism), point)?)
    }
}

impl Held<'_> {
    /// Save `plan` for `apply`, authenticated with this state's key.
    pub fn save_plan(&self, plan: &ActionPlan, out: &Path) -> Result<(), Failure> {
        Ok(file::save(plan, out, &self.secret_key)?)
    }
}

impl Workspace {
    /// Whether `apply` would accept the saved plan at `path` as written for this state.
    pub fn authenticate(&self, saved: &SavedPlan, path: &Path) -> Result<(), Failure> {
        Ok(saved.authenticate(path, &self.store.plan_key()?)?)
    }

    /// Why a saved plan no longer matches the world (empty when it still does).
    pub async fn staleness(&self, plan: &ActionPlan) -> Result<Vec<String>, Failure> {
        if self.model.name != plan.plan {
            return Ok(vec![format!(
                "`{}` now holds plan `{}`, not `{}`",
                plan.plan_path.display(),
                self.model.name,
                plan.plan
            )]);
        }
        let state = self.load_state()?;
        let inventory = self.provider()?.inventory().await?;
        Ok(staleness(plan, &self.model.document_hash, &state, &inventory))
    }
}
