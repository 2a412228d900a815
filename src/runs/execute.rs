//! Executing an action plan as a run: recorded in state before it starts, continued where its
//! journal says it stopped, finished with its evidence and history.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::{Failure, RunsError};
use super::history::record_history;
use super::workspace::Held;
use crate::exec::engine::{Approver, Engine, EngineOptions, Event, Orphan, Prior, RunStatus};
use crate::exec::run_report::{self, RunReport};
use crate::planner::{ActionKind, ActionPlan, Dag, PlanError, file, script_env};
use crate::spec::suggest;
use crate::state::{ActiveRun, Approval, JournalEvent, JournalRecord, LastApply, RunState, new_id};

/// How to execute.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Steps at once (default: the plan's).
    pub parallelism: Option<usize>,
    /// Timeout of provider operations that carry none of their own.
    pub op_timeout: Option<Duration>,
    /// Also write the evidence (JSON, Markdown, JUnit, SVG) into this directory.
    pub report_dir: Option<PathBuf>,
    /// Observations for the report.
    pub notes: Option<String>,
    /// Script steps to start again although an earlier attempt's outcome is unknown.
    pub rerun: Vec<String>,
}

/// How the caller takes part while a run executes.
#[derive(Default)]
pub struct RunHooks {
    /// Progress events, for a display and logs.
    pub events: Option<mpsc::UnboundedSender<Event>>,
    /// Answers manual steps interactively; without one, the run pauses at them.
    pub approver: Option<Arc<dyn Approver>>,
    /// Graceful stop: start nothing new.
    pub stop: CancellationToken,
    /// Hard stop: running steps stop at a safe point.
    pub abort: CancellationToken,
}

/// How a run ended (this time).
pub struct RunResult {
    pub status: RunStatus,
    pub report: RunReport,
    /// The id of the unfinished run this continued, if it did.
    pub continued: Option<String>,
    /// Files written into `report_dir`, or why they could not be.
    pub evidence: Option<Result<Vec<PathBuf>, String>>,
    /// Problems after the run that did not change its outcome.
    pub warnings: Vec<String>,
}

/// The checksum that identifies a saved plan (the run records it).
pub fn plan_checksum(plan: &ActionPlan) -> String {
    let bytes = file::to_bytes(plan).unwrap_or_default();
    blake3::hash(&bytes).to_hex().to_string()
}

impl Held<'_> {
    /// Execute `plan` as a new run, or continue the unfinished run when it is this plan's.
    pub async fn execute(
        &mut self,
        mut plan: Arc<ActionPlan>,
        options: &RunOptions,
        hooks: RunHooks,
    ) -> Result<RunResult, Failure> {
        // A plan read from a file has only digests of the scripts' environment values (one
        // planned in this process has them all, and is shared, not copied, with the display).
        let lacks_values = |a: &crate::planner::Action| match &a.kind {
            ActionKind::Script { env, .. } => script_env::lacks_values(env),
            _ => false,
        };
        if plan.actions.iter().any(lacks_values) {
            self.refill_env(Arc::make_mut(&mut plan))?;
        }
        let dag = Dag::new(&plan).map_err(|reason| PlanError::CorruptFile {
            path: plan.plan_path.clone(),
            reason: format!("invalid action graph: {reason}"),
        })?;
        let provider = self.provider()?;
        let checksum = plan_checksum(&plan);
        let journal = match &self.state.run {
            Some(active) if active.plan_checksum == checksum => self.workspace.store.read_journal(&active.id)?,
            _ => Vec::new(),
        };
        let done = journal
            .iter()
            .filter(|r| matches!(r.event, JournalEvent::Succeeded { .. } | JournalEvent::Approved { .. }))
            .map(|r| r.step.clone())
            .collect();
        self.preflight(&plan, &done).await?;
        self.claim().await?;
        check_rerun(&options.rerun, &journal)?;
        let (run_id, mut prior, continued) = self.begin(&plan, checksum, &journal, options.report_dir.as_ref())?;
        prior.rerun = options.rerun.iter().cloned().collect();
        // Absolute: the journal keeps it for a resume started from another folder.
        let step_files = std::path::absolute(self.workspace.store.local_dir().join("steps").join(&run_id))
            .map_err(|e| PlanError::Unwritable { path: "the step files folder".into(), reason: e.to_string() })?;
        let mut engine_options = EngineOptions {
            parallelism: options.parallelism.unwrap_or(plan.parallelism),
            approver: hooks.approver,
            step_files: step_files.clone(),
            ..EngineOptions::default()
        };
        if let Some(timeout) = options.op_timeout {
            engine_options.op_timeout = timeout;
        }
        let engine = Engine {
            plan: plan.clone(),
            dag: Arc::new(dag),
            provider: provider.clone(),
            store: self.workspace.store.clone(),
            run_id: run_id.clone(),
            options: engine_options,
            events: hooks.events,
            stop: hooks.stop,
            abort: hooks.abort,
        };
        let outcome = engine.run(prior).await;
        let mut warnings = Vec::new();
        if let Err(e) = provider.flush().await {
            warnings.push(e.to_string());
        }
        // The evidence is the journal: when it cannot be read back, no step's outcome is
        // known, and the run is not reported as done.
        let journal = self.workspace.store.read_journal(&run_id);
        let status = match &journal {
            Ok(_) => outcome.status,
            Err(e) => {
                warnings.push(format!("the run's journal cannot be read back, so no step's outcome is known: {e}"));
                RunStatus::Failed
            }
        };
        let finished = matches!(status, RunStatus::Succeeded | RunStatus::CompletedWithErrors);
        let report = self.evidence(&run_id, &plan, journal.unwrap_or_default(), status, options, &mut warnings);
        // The run's own evidence folder, given when it started or now.
        let report_dir = self.state.run.as_ref().and_then(|r| r.report_dir.clone());
        let evidence =
            report_dir.as_ref().map(|dir| crate::report::evidence::write_all(&report, dir).map_err(|e| e.to_string()));

        let store = self.workspace.store.clone();
        if let Some(active) = self.state.run.as_mut() {
            for (step, by) in &outcome.approvals {
                active.approvals.insert(step.clone(), Approval { by: by.clone(), at: SystemTime::now() });
            }
            active.awaiting = outcome.awaiting.clone();
            active.status = match status {
                RunStatus::Paused => RunState::Paused,
                RunStatus::Interrupted => RunState::Interrupted,
                _ => RunState::Failed,
            };
        }
        if finished {
            // Every script's outcome is in the journal now.
            let _ = std::fs::remove_dir_all(&step_files);
            self.state.run = None;
            record_history(&mut self.state, &report, None);
            self.state.last_apply = Some(LastApply {
                run: run_id.clone(),
                operation: plan.run.title().to_string(),
                document_hash: plan.fingerprint.document_hash.clone(),
                finished_at: SystemTime::now(),
                status: report.status.clone(),
            });
        }
        self.settle_drill(&report, finished);
        store.save(&mut self.state)?;
        Ok(RunResult { status, report, continued, evidence, warnings })
    }

    /// Start a new run (recorded in state and journal before any step), or pick up the
    /// unfinished one.
    fn begin(
        &mut self,
        plan: &ActionPlan,
        checksum: String,
        journal: &[JournalRecord],
        report_dir: Option<&PathBuf>,
    ) -> Result<(String, Prior, Option<String>), Failure> {
        let store = self.workspace.store.clone();
        self.keep();
        let (id, prior, continued) = match &self.state.run {
            Some(active) if active.plan_checksum == checksum => {
                (active.id.clone(), prior_from(journal, active), Some(active.id.clone()))
            }
            Some(active) => return Err(self.in_progress(active).into()),
            None => {
                let id = new_id();
                let bytes =
                    file::to_bytes(plan).map_err(|reason| PlanError::Unwritable { path: "run plan".into(), reason })?;
                store.write_artifact(&format!("{id}.plan"), &bytes)?;
                self.state.run = Some(ActiveRun {
                    id: id.clone(),
                    kind: plan.run,
                    plan_checksum: checksum.clone(),
                    document_hash: plan.fingerprint.document_hash.clone(),
                    started_at: SystemTime::now(),
                    status: RunState::Running,
                    awaiting: Vec::new(),
                    report_dir: None,
                    approvals: Default::default(),
                });
                store.save(&mut self.state)?;
                let start = JournalRecord {
                    run: id.clone(),
                    seq: 1,
                    at: SystemTime::now(),
                    step: String::new(),
                    event: JournalEvent::RunStarted { operation: plan.run.title().to_string(), plan_hash: checksum },
                };
                store.append_journal(&id, &[start])?;
                (id, Prior { last_seq: 1, ..Prior::default() }, None)
            }
        };
        if let Some(active) = self.state.run.as_mut() {
            active.status = RunState::Running;
            active.awaiting.clear();
            if let Some(dir) = report_dir {
                active.report_dir = Some(std::path::absolute(dir).unwrap_or_else(|_| dir.clone()));
            }
        }
        store.save(&mut self.state)?;
        Ok((id, prior, continued))
    }

    /// The run's report, rebuilt from its journal (ending it there when it finished), and kept
    /// in state as `<run>.report.json`.
    fn evidence(
        &self,
        run_id: &str,
        plan: &ActionPlan,
        mut journal: Vec<JournalRecord>,
        status: RunStatus,
        options: &RunOptions,
        warnings: &mut Vec<String>,
    ) -> RunReport {
        let store = &self.workspace.store;
        let status_word = status_word(status);
        if matches!(status, RunStatus::Succeeded | RunStatus::CompletedWithErrors) {
            let record = JournalRecord {
                run: run_id.to_string(),
                seq: journal.iter().map(|r| r.seq).max().unwrap_or(0) + 1,
                at: SystemTime::now(),
                step: String::new(),
                event: JournalEvent::RunFinished { status: status_word.into() },
            };
            if let Err(e) = store.append_journal(run_id, std::slice::from_ref(&record)) {
                warnings.push(e.to_string());
            }
            journal.push(record);
        }
        let mut report = run_report::build(run_id, plan, &journal, status_word, SystemTime::now());
        report.git_commit = super::git::commit_of(&self.workspace.path);
        report.notes.extend(options.notes.clone());
        let bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
        if let Err(e) = store.write_artifact(&format!("{run_id}.report.json"), &bytes) {
            warnings.push(e.to_string());
        }
        report
    }
}

pub fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::CompletedWithErrors => "completed-with-errors",
        RunStatus::Failed => "failed",
        RunStatus::Paused => "paused",
        RunStatus::Interrupted => "interrupted",
    }
}

/// What the journal (and the recorded approvals) say was already done.
fn prior_from(journal: &[JournalRecord], active: &ActiveRun) -> Prior {
    let mut succeeded = HashSet::new();
    let mut last_seq = 0;
    for record in journal {
        last_seq = last_seq.max(record.seq);
        if let JournalEvent::Succeeded { .. } | JournalEvent::Approved { .. } = &record.event {
            succeeded.insert(record.step.clone());
        }
    }
    let approved = active.approvals.iter().map(|(k, v)| (k.clone(), v.by.clone())).collect();
    Prior { succeeded, approved, last_seq, orphans: orphans(journal), rerun: HashSet::new() }
}

/// Script attempts journalled as started whose end the journal does not show.
pub(super) fn orphans(journal: &[JournalRecord]) -> HashMap<String, Orphan> {
    let mut found = HashMap::new();
    for record in journal {
        match &record.event {
            JournalEvent::Spawned { attempt, process, files } => {
                found
                    .insert(record.step.clone(), Orphan { attempt: *attempt, process: *process, files: files.clone() });
            }
            JournalEvent::Succeeded { .. }
            | JournalEvent::Failed { .. }
            | JournalEvent::Approved { .. }
            | JournalEvent::Skipped { .. } => {
                found.remove(&record.step);
            }
            _ => {}
        }
    }
    found
}

/// `--rerun` names steps whose outcome is unknown: a script attempt started and not seen to end.
fn check_rerun(rerun: &[String], journal: &[JournalRecord]) -> Result<(), Failure> {
    let unknown = orphans(journal);
    for step in rerun {
        if !unknown.contains_key(step) {
            let help = match unknown.is_empty() {
                true => {
                    "no script of the unfinished run has an unknown outcome: `drplan resume` alone continues it".into()
                }
                false => suggest::help_for("unknown-outcome step", step, unknown.keys().map(String::as_str)),
            };
            return Err(RunsError::NotRerunnable { step: step.clone(), help }.into());
        }
    }
    Ok(())
}
