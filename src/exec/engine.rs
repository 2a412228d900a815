//! The executor: a ready queue over the action DAG, a semaphore for the parallelism limit
//! (plus one per limited site), a `JoinSet` of workers reporting over a channel, and two
//! cancellation levels (stop starting new steps; abort the running ones).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::journal_writer::JournalHandle;
use super::script::run_script;
use crate::contract::ProviderOp;
use crate::contract::{Provider, ProviderError};
use crate::planner::schedule::{Dispatch, ReadyQueue};
use crate::planner::{ActionKind, ActionPlan, Dag};
use crate::spec::OnFailure;
use crate::state::{JournalEvent, StateStore};

/// How a person answers a manual step in an interactive run.
pub enum Answer {
    Approved {
        by: String,
    },
    Rejected {
        by: String,
    },
    /// Nobody can answer now (no terminal): the run pauses.
    Later,
}

/// Asks for approvals interactively (a TTY prompt). Blocking; run off the async threads.
pub trait Approver: Send + Sync {
    fn ask(&self, step: &str, prompt: &str, approvers: &[String]) -> Answer;
}

#[derive(Clone)]
pub struct EngineOptions {
    pub parallelism: usize,
    /// Retries of a provider operation that failed transiently (throttling).
    pub transient_retries: u32,
    /// First backoff; doubles per attempt.
    pub backoff: Duration,
    /// Timeout of provider operations that carry none (syncs, failovers).
    pub op_timeout: Duration,
    pub approver: Option<Arc<dyn Approver>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            parallelism: 10,
            transient_retries: 5,
            backoff: Duration::from_millis(200),
            op_timeout: Duration::from_secs(3600),
            approver: None,
        }
    }
}

/// What the engine tells a progress display.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        index: usize,
        attempt: u32,
    },
    Retrying {
        index: usize,
        attempt: u32,
        error: String,
        delay: Duration,
    },
    Finished {
        index: usize,
        status: StepStatus,
        detail: String,
    },
    Awaiting {
        index: usize,
    },
    Stopping {
        reason: String,
    },
    /// A resumed run: this many steps were done before.
    AlreadyDone {
        count: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Succeeded,
    Failed,
    Skipped,
    Awaiting,
    /// Not started because the run stopped.
    NotRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Succeeded,
    /// Every step ran; some failed but the policy was to continue.
    CompletedWithErrors,
    Failed,
    Paused,
    Interrupted,
}

/// What earlier attempts of the same run already achieved (from the journal and state).
#[derive(Debug, Default, Clone)]
pub struct Prior {
    pub succeeded: HashSet<String>,
    pub approved: HashMap<String, String>,
    pub last_seq: u64,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: RunStatus,
    pub statuses: Vec<StepStatus>,
    pub awaiting: Vec<String>,
    /// Approvals given interactively during this run, to record in state.
    pub approvals: Vec<(String, String)>,
}

pub struct Engine {
    pub plan: Arc<ActionPlan>,
    pub dag: Arc<Dag>,
    pub provider: Arc<dyn Provider>,
    pub store: Arc<dyn StateStore>,
    pub run_id: String,
    pub options: EngineOptions,
    pub events: Option<mpsc::UnboundedSender<Event>>,
    /// Graceful stop: no new steps start; running ones finish.
    pub stop: CancellationToken,
    /// Hard stop: running steps are asked to stop at a safe point.
    pub abort: CancellationToken,
}

enum Done {
    Ok(String),
    Approved { by: String },
    Failed(String),
    Later,
}

impl Engine {
    fn emit(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    pub async fn run(self, prior: Prior) -> Outcome {
        let plan = self.plan.clone();
        let dag = self.dag.clone();
        let n = plan.actions.len();
        let journal = JournalHandle::spawn(self.store.clone(), self.run_id.clone(), prior.last_seq);
        let already = plan.actions.iter().filter(|a| prior.succeeded.contains(&a.id)).count();
        if already > 0 {
            self.emit(Event::AlreadyDone { count: already });
        }
        let global = Arc::new(Semaphore::new(self.options.parallelism.max(1)));
        let sites: HashMap<String, Arc<Semaphore>> =
            plan.site_limits.iter().map(|(s, n)| (s.clone(), Arc::new(Semaphore::new((*n).max(1))))).collect();

        let mut waiting: Vec<usize> = dag.preds.iter().map(Vec::len).collect();
        let mut status: Vec<Option<StepStatus>> = vec![None; n];
        let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        let mut workers: JoinSet<()> = JoinSet::new();
        // Provider operations and scripts wait here for a slot, by the same policy the plan's
        // RTO estimate was simulated with.
        let (dispatch, _) = Dispatch::choose(&plan, &dag, |i| Duration::from_millis(plan.actions[i].estimate_ms));
        let mut queue = ReadyQueue::new(&plan, &dispatch);
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Done)>();
        let mut finished_now = Vec::new();
        let mut running = 0usize;
        let mut stopping = false;
        let mut awaiting = Vec::new();
        let mut approvals = Vec::new();

        loop {
            while let Some(i) = ready.pop_front() {
                let action = &plan.actions[i];
                let mut finished = |s: &mut Vec<Option<StepStatus>>, st: StepStatus, ready: &mut VecDeque<usize>| {
                    s[i] = Some(st);
                    release(&dag, i, &mut waiting, ready);
                };
                if prior.succeeded.contains(&action.id) {
                    queue.settled(i);
                    finished(&mut status, StepStatus::Succeeded, &mut ready);
                    continue;
                }
                let blocked =
                    dag.preds[i].iter().any(|&(p, hard)| hard && status[p as usize] != Some(StepStatus::Succeeded));
                if blocked {
                    let reason = dag.preds[i]
                        .iter()
                        .filter(|&&(p, hard)| hard && status[p as usize] != Some(StepStatus::Succeeded))
                        .map(|&(p, _)| plan.actions[p as usize].id.clone())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let reason = format!("needs {reason}, which did not succeed");
                    if !matches!(action.kind, ActionKind::Barrier) {
                        journal.note(&action.id, JournalEvent::Skipped { reason: reason.clone() });
                        self.emit(Event::Finished { index: i, status: StepStatus::Skipped, detail: reason });
                    }
                    queue.settled(i);
                    finished(&mut status, StepStatus::Skipped, &mut ready);
                    continue;
                }
                if stopping || self.stop.is_cancelled() {
                    queue.settled(i);
                    finished(&mut status, StepStatus::NotRun, &mut ready);
                    continue;
                }
                match &action.kind {
                    ActionKind::Barrier => finished(&mut status, StepStatus::Succeeded, &mut ready),
                    ActionKind::Manual { prompt, approvers } => {
                        if let Some(by) = prior.approved.get(&action.id) {
                            self.emit(Event::Finished {
                                index: i,
                                status: StepStatus::Succeeded,
                                detail: format!("approved by {by}"),
                            });
                            finished(&mut status, StepStatus::Succeeded, &mut ready);
                        } else if let Some(approver) = self.options.approver.clone() {
                            let (tx, id, prompt, approvers) =
                                (tx.clone(), action.id.clone(), prompt.clone(), approvers.clone());
                            let asked = id.clone();
                            let journal = journal.clone();
                            running += 1;
                            self.emit(Event::Awaiting { index: i });
                            workers.spawn(async move {
                                let answer =
                                    tokio::task::spawn_blocking(move || approver.ask(&asked, &prompt, &approvers))
                                        .await
                                        .unwrap_or(Answer::Later);
                                let done = match answer {
                                    Answer::Approved { by } => {
                                        match journal.commit(&id, JournalEvent::Approved { by: by.clone() }).await {
                                            Ok(()) => Done::Approved { by },
                                            Err(e) => Done::Failed(format!("journal: {e}")),
                                        }
                                    }
                                    Answer::Rejected { by } => Done::Failed(format!("rejected by {by}")),
                                    Answer::Later => Done::Later,
                                };
                                let _ = tx.send((i, done));
                            });
                        } else {
                            journal.note(&action.id, JournalEvent::Awaiting { prompt: prompt.clone() });
                            self.emit(Event::Awaiting { index: i });
                            status[i] = Some(StepStatus::Awaiting);
                            awaiting.push(action.id.clone());
                        }
                    }
                    ActionKind::Provider { .. } | ActionKind::Script { .. } => {
                        running += 1;
                        queue.push(i);
                    }
                }
            }
            // Once stopping, queued steps never start.
            if stopping || self.stop.is_cancelled() {
                while let Some(i) = queue.pop(|_| true, usize::MAX) {
                    running -= 1;
                    status[i] = Some(StepStatus::NotRun);
                    release(&dag, i, &mut waiting, &mut ready);
                }
                if !ready.is_empty() {
                    continue;
                }
            }
            // Start queued steps while there are slots (the global one and their site's).
            let step_log = |i: usize| StepLog {
                index: i,
                id: plan.actions[i].id.clone(),
                journal: journal.clone(),
                abort: self.abort.clone(),
                events: self.events.clone(),
            };
            loop {
                let Ok(global_permit) = global.clone().try_acquire_owned() else { break };
                // Free slots, counting the one just taken.
                let free = global.available_permits() + 1;
                let picked = queue
                    .pop(|site| site.is_none_or(|s| sites.get(s).is_some_and(|sem| sem.available_permits() > 0)), free);
                let Some(i) = picked else { break };
                let site_permit =
                    queue.site(i).and_then(|s| sites.get(s)).and_then(|sem| sem.clone().try_acquire_owned().ok());
                let permits = (global_permit, site_permit);
                let tx = tx.clone();
                match &plan.actions[i].kind {
                    ActionKind::Provider { op } => {
                        let worker = ProviderWorker {
                            log: step_log(i),
                            op: op.clone(),
                            timeout: op_timeout(op, self.options.op_timeout),
                            provider: self.provider.clone(),
                            retries: self.options.transient_retries,
                            backoff: self.options.backoff,
                        };
                        workers.spawn(async move {
                            let done = worker.run().await;
                            drop(permits);
                            let _ = tx.send((i, done));
                        });
                    }
                    ActionKind::Script { program, run, dir, env, timeout, retries } => {
                        let mut env = env.clone();
                        env.insert("DRPLAN_RUN_ID".into(), self.run_id.clone());
                        let worker = ScriptWorker {
                            log: step_log(i),
                            program: program.clone(),
                            args: run.iter().skip(1).cloned().collect(),
                            dir: dir.clone(),
                            env,
                            timeout: *timeout,
                            retries: *retries,
                        };
                        workers.spawn(async move {
                            let done = worker.run().await;
                            drop(permits);
                            let _ = tx.send((i, done));
                        });
                    }
                    _ => unreachable!("only slot-taking actions are queued"),
                }
            }
            if running == 0 {
                break;
            }
            tokio::select! {
                // Everything that has finished by now, settled before any slot is handed out.
                received = rx.recv_many(&mut finished_now, 64) => {
                    if received == 0 {
                        continue;
                    }
                    for (i, done) in finished_now.drain(..) {
                        running -= 1;
                        let action = &plan.actions[i];
                        let st = match done {
                            Done::Ok(detail) => {
                                self.emit(Event::Finished { index: i, status: StepStatus::Succeeded, detail });
                                StepStatus::Succeeded
                            }
                            Done::Approved { by } => {
                                self.emit(Event::Finished { index: i, status: StepStatus::Succeeded, detail: format!("approved by {by}") });
                                approvals.push((action.id.clone(), by));
                                StepStatus::Succeeded
                            }
                            Done::Later => {
                                journal.note(&action.id, JournalEvent::Awaiting { prompt: String::new() });
                                awaiting.push(action.id.clone());
                                status[i] = Some(StepStatus::Awaiting);
                                continue;
                            }
                            Done::Failed(error) => {
                                self.emit(Event::Finished { index: i, status: StepStatus::Failed, detail: error.clone() });
                                if action.on_failure == OnFailure::Stop && !stopping {
                                    stopping = true;
                                    self.emit(Event::Stopping { reason: format!("{} failed: {error}", action.id) });
                                }
                                StepStatus::Failed
                            }
                        };
                        status[i] = Some(st);
                        release(&dag, i, &mut waiting, &mut ready);
                    }
                }
                _ = self.stop.cancelled(), if !stopping => {
                    stopping = true;
                    self.emit(Event::Stopping { reason: "interrupted".into() });
                }
            }
        }
        while workers.join_next().await.is_some() {}
        // Everything noted (skips, awaits) is on disk before the outcome is reported.
        let _ = journal.flush().await;

        let statuses: Vec<StepStatus> = status.into_iter().map(|s| s.unwrap_or(StepStatus::NotRun)).collect();
        let failed = statuses.contains(&StepStatus::Failed);
        let not_run = statuses.contains(&StepStatus::NotRun);
        let run_status = if self.stop.is_cancelled() && not_run {
            RunStatus::Interrupted
        } else if failed && not_run {
            RunStatus::Failed
        } else if !awaiting.is_empty() {
            RunStatus::Paused
        } else if failed {
            RunStatus::CompletedWithErrors
        } else {
            RunStatus::Succeeded
        };
        Outcome { status: run_status, statuses, awaiting, approvals }
    }
}

/// `i` finished: its successors have one less thing to wait for.
fn release(dag: &Dag, i: usize, waiting: &mut [usize], ready: &mut VecDeque<usize>) {
    for &next in &dag.succs[i] {
        waiting[next as usize] -= 1;
        if waiting[next as usize] == 0 {
            ready.push_back(next as usize);
        }
    }
}

fn op_timeout(op: &ProviderOp, default: Duration) -> Duration {
    match op {
        ProviderOp::Start { timeout, .. } | ProviderOp::Shutdown { timeout, .. } => *timeout,
        _ => default,
    }
}

/// What every worker does around its attempts: journal, progress events, abortable waits.
struct StepLog {
    index: usize,
    id: String,
    journal: JournalHandle,
    abort: CancellationToken,
    events: Option<mpsc::UnboundedSender<Event>>,
}

impl StepLog {
    fn emit(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    fn started(&self, attempt: u32) {
        self.journal.note(&self.id, JournalEvent::Started { attempt });
        self.emit(Event::Started { index: self.index, attempt });
    }

    /// Record success durably; only then may dependents start.
    async fn succeeded(&self, detail: String, outcome: serde_json::Value) -> Done {
        match self.journal.commit(&self.id, JournalEvent::Succeeded { outcome }).await {
            Ok(()) => Done::Ok(detail),
            Err(e) => Done::Failed(format!("succeeded, but the journal could not record it: {e}")),
        }
    }

    /// Note a failed attempt and wait before the next one (cut short by an abort).
    async fn retry_after(&self, attempt: u32, error: String, wait: Duration) {
        self.journal.note(&self.id, JournalEvent::Failed { error: error.clone(), attempt });
        self.emit(Event::Retrying { index: self.index, attempt, error, delay: wait });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.abort.cancelled() => {}
        }
    }

    async fn failed(&self, error: &str, attempt: u32) {
        let _ = self.journal.commit(&self.id, JournalEvent::Failed { error: error.to_string(), attempt }).await;
    }

    fn may_retry(&self, attempt: u32, retries: u32) -> bool {
        attempt <= retries && !self.abort.is_cancelled()
    }
}

struct ProviderWorker {
    log: StepLog,
    op: ProviderOp,
    timeout: Duration,
    provider: Arc<dyn Provider>,
    retries: u32,
    backoff: Duration,
}

impl ProviderWorker {
    async fn run(self) -> Done {
        let log = &self.log;
        let mut attempt = 0;
        loop {
            attempt += 1;
            log.started(attempt);
            let call = self.provider.execute(&self.op, log.abort.child_token());
            let result = match tokio::time::timeout(self.timeout, call).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::TimedOut { after: self.timeout }),
            };
            match result {
                Ok(outcome) => {
                    let value = serde_json::to_value(&outcome).unwrap_or_default();
                    return log.succeeded(outcome.summary, value).await;
                }
                Err(e) if e.is_transient() && log.may_retry(attempt, self.retries) => {
                    let backoff = self.backoff * 2u32.pow(attempt - 1);
                    let wait = match &e {
                        ProviderError::Throttled { retry_after } => (*retry_after).max(backoff),
                        _ => backoff,
                    };
                    log.retry_after(attempt, e.to_string(), wait.min(Duration::from_secs(60))).await;
                }
                Err(e) => {
                    let error = e.to_string();
                    let interrupted = matches!(e, ProviderError::Cancelled | ProviderError::TimedOut { .. });
                    if interrupted && self.op.moves_data() {
                        // The target is not trusted until the transfer is redone.
                        let reason = format!("data transfer did not finish ({error})");
                        let _ = log.journal.commit(&log.id, JournalEvent::Interrupted { reason }).await;
                    }
                    log.failed(&error, attempt).await;
                    return Done::Failed(error);
                }
            }
        }
    }
}

struct ScriptWorker {
    log: StepLog,
    program: std::path::PathBuf,
    args: Vec<String>,
    dir: std::path::PathBuf,
    env: std::collections::BTreeMap<String, String>,
    timeout: Duration,
    retries: u32,
}

impl ScriptWorker {
    async fn run(self) -> Done {
        let log = &self.log;
        let mut attempt = 0;
        loop {
            attempt += 1;
            log.started(attempt);
            let result = tokio::select! {
                r = run_script(&self.program, &self.args, &self.dir, &self.env, self.timeout) => r,
                _ = log.abort.cancelled() => Err("aborted".to_string()),
            };
            let (ok, detail, output) = match result {
                Ok(r) => (r.success, r.describe(), r.output),
                Err(e) => (false, e, String::new()),
            };
            if ok {
                let value = serde_json::json!({ "summary": detail, "output": output });
                return log.succeeded(detail, value).await;
            }
            let error = match output.trim().lines().last() {
                Some(last) => format!("{detail}: {last}"),
                None => detail,
            };
            if log.may_retry(attempt, self.retries) {
                let wait = (Duration::from_millis(500) * 2u32.pow(attempt - 1)).min(Duration::from_secs(30));
                log.retry_after(attempt, error, wait).await;
                continue;
            }
            log.failed(&error, attempt).await;
            return Done::Failed(format!("{error} (after {attempt} attempt{})", if attempt == 1 { "" } else { "s" }));
        }
    }
}
