//! Drills: one open drill per plan, recorded before anything is created so that a crash still
//! leaves something to clean up; cleaned up by `drill complete`, or by the next command once
//! the drill is older than its maximum age.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::cancel::abandon;
use super::error::{Failure, RunsError};
use super::workspace::{Held, Workspace};
use crate::contract::{Provider, ProviderOp};
use crate::exec::run_report::RunReport;
use crate::planner::{ActionKind, ActionPlan, DrillScope, build_drill, build_drill_cleanup};
use crate::spec::suggest;
use crate::state::{HistoryEntry, OpenDrill, RunKind, RunState, State, new_id};
use crate::validate::RecoveryPointSel;

/// A drill that was force-cleaned because it was open longer than its maximum age.
#[derive(Debug, Clone)]
pub struct ExpiredDrill {
    pub id: String,
    pub age: Duration,
    pub max_age: Duration,
    /// Copies that could not be removed (the drill then stays open).
    pub failed: Vec<String>,
}

/// What a drill is asked to be.
#[derive(Debug, Clone)]
pub struct DrillRequest {
    pub scope: DrillScope,
    pub point: Option<RecoveryPointSel>,
    pub max_age: Duration,
    pub notes: Option<String>,
    pub parallelism: usize,
    /// Clean up once the drill's run is over.
    pub auto_complete: bool,
}

impl Held<'_> {
    /// `--group` and `--machine` must name parts of the plan: a typo would otherwise drill nothing.
    pub fn check_drill_scope(&self, scope: &DrillScope) -> Result<(), Failure> {
        let model = self.model();
        let plan = model.name.clone();
        for name in &scope.groups {
            if !model.groups.iter().any(|g| &g.name == name) {
                let help = suggest::help_for("group", name, model.groups.iter().map(|g| g.name.as_str()));
                return Err(RunsError::UnknownGroup { name: name.clone(), plan, help }.into());
            }
        }
        for name in &scope.machines {
            if !model.machines.iter().any(|m| &m.name == name) {
                let help = suggest::help_for("machine", name, model.machines.iter().map(|m| m.name.as_str()));
                return Err(RunsError::UnknownMachine { name: name.clone(), plan, help }.into());
            }
        }
        Ok(())
    }

    /// Plan a drill and record it as open (before anything is created). Execute the returned
    /// plan next.
    pub async fn open_drill(&mut self, request: &DrillRequest) -> Result<ActionPlan, Failure> {
        self.check_drill_scope(&request.scope)?;
        self.refuse_unfinished()?;
        if let Some(open) = &self.state.drill {
            return Err(RunsError::DrillInProgress {
                id: open.id.clone(),
                plan: self.model().name.clone(),
                started: humantime::format_rfc3339_seconds(open.started_at).to_string(),
                path: self.workspace.path.display().to_string(),
            }
            .into());
        }
        let observed = self.observe().await?;
        let id = format!("drill-{}", &new_id()[..12]);
        let plan = build_drill(&self.input(&observed, request.parallelism), &request.scope, request.point, &id)?;
        let copies: BTreeMap<String, String> = plan
            .actions
            .iter()
            .filter_map(|a| match &a.kind {
                ActionKind::Provider { op: ProviderOp::CreateTestCopy { machine, site, .. } } => {
                    Some((machine.clone(), site.clone()))
                }
                _ => None,
            })
            .collect();
        self.state.drill = Some(OpenDrill {
            id,
            run: String::new(),
            started_at: SystemTime::now(),
            max_age: request.max_age,
            copies,
            notes: request.notes.clone(),
            auto_complete: request.auto_complete,
        });
        self.save()?;
        Ok(plan)
    }

    /// The open drill asked to be completed automatically and its run is over (it is not
    /// waiting for an approval): its cleanup is due now.
    pub fn drill_cleanup_due(&self) -> bool {
        let Some(drill) = &self.state.drill else { return false };
        let drill_run_paused = self.state.run.as_ref().is_some_and(|r| r.status == RunState::Paused);
        let other_run = self.state.run.as_ref().is_some_and(|r| r.kind != RunKind::Drill);
        drill.auto_complete && !drill.run.is_empty() && !drill_run_paused && !other_run
    }

    /// The plan that removes every copy of the open drill. An unfinished run of the drill
    /// itself (paused or interrupted) is abandoned: the cleanup takes over.
    pub async fn close_drill(&mut self, parallelism: usize) -> Result<ActionPlan, Failure> {
        let Some(open) = self.state.drill.clone() else {
            return Err(RunsError::NoOpenDrill {
                plan: self.model().name.clone(),
                path: self.workspace.path.display().to_string(),
            }
            .into());
        };
        if let Some(active) = &self.state.run {
            if active.kind != RunKind::Drill {
                return Err(self.in_progress(active).into());
            }
            let status = format!("{:?}", active.status).to_lowercase();
            abandon(self.workspace, &mut self.state, &status)?;
            self.save()?;
        }
        let observed = self.observe().await?;
        Ok(build_drill_cleanup(&self.input(&observed, parallelism), &open.id, &open.copies))
    }

    /// A finished drill run or drill cleanup updates the open drill and its history entries.
    pub(super) fn settle_drill(&mut self, report: &RunReport, finished: bool) {
        let Some(open) = self.state.drill.as_mut() else { return };
        match report.kind {
            RunKind::Drill => {
                open.run = report.run.clone();
                if let Some(entry) = self.state.history.last_mut().filter(|h| finished && h.run == report.run) {
                    entry.drill = Some(open.id.clone());
                }
            }
            RunKind::DrillCleanup if finished && report.status == "succeeded" => {
                let id = open.id.clone();
                let notes = report.notes.first().cloned().or_else(|| open.notes.clone());
                self.state.drill = None;
                if let Some(n) = &notes
                    && let Some(entry) =
                        self.state.history.iter_mut().rev().find(|h| h.drill.as_deref() == Some(id.as_str()))
                {
                    entry.notes = Some(n.clone());
                }
                if let Some(entry) = self.state.history.last_mut().filter(|h| h.run == report.run) {
                    entry.drill = Some(id);
                }
            }
            _ => {}
        }
    }
}

/// A drill left open past its maximum age is cleaned up by the next command that holds the
/// plan.
pub(super) async fn expire_old_drill(
    workspace: &Workspace,
    provider: &dyn Provider,
    state: &mut State,
) -> Result<Option<ExpiredDrill>, Failure> {
    let Some(open) = state.drill.clone() else { return Ok(None) };
    let age = SystemTime::now().duration_since(open.started_at).unwrap_or_default();
    if age <= open.max_age {
        return Ok(None);
    }
    let inventory = provider.inventory().await?;
    let mut copies = open.copies.clone();
    for (name, m) in &inventory.machines {
        for copy in m.test_copies.iter().filter(|c| c.drill == open.id) {
            copies.entry(name.clone()).or_insert_with(|| copy.site.clone());
        }
    }
    let mut failed = Vec::new();
    for (machine, site) in copies {
        let op = ProviderOp::RemoveTestCopy { machine: machine.clone(), site, drill: open.id.clone() };
        if let Err(e) = provider.execute(&op, CancellationToken::new()).await {
            failed.push(format!("{machine}: {e}"));
        }
    }
    let _ = provider.flush().await;
    let expired = ExpiredDrill { id: open.id.clone(), age, max_age: open.max_age, failed };
    if !expired.failed.is_empty() {
        return Ok(Some(expired));
    }
    if state.run.as_ref().is_some_and(|r| r.kind == RunKind::Drill) {
        let status = state.run.as_ref().map(|r| format!("{:?}", r.status).to_lowercase()).unwrap_or_default();
        abandon(workspace, state, &status)?;
    }
    state.drill = None;
    let now = SystemTime::now();
    let model = &workspace.model;
    state.history.push(HistoryEntry {
        run: open.run.clone(),
        kind: RunKind::DrillCleanup,
        status: "force-cleaned".into(),
        started_at: now,
        finished_at: now,
        rto_ms: None,
        rto_objective_ms: model.protection.rto.as_millis() as u64,
        data_loss_ms: None,
        rpo_objective_ms: model.protection.rpo.as_millis() as u64,
        drill: Some(open.id.clone()),
        notes: Some(format!("force-cleaned after {}", crate::spec::time_format::human_duration(age))),
    });
    workspace.store.save(state)?;
    Ok(Some(expired))
}
