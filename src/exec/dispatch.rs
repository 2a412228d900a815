//! Deciding what starts when: a ready queue over the action DAG, a semaphore for the
//! parallelism limit (plus one per limited site), a `JoinSet` of workers reporting over a
//! channel, failure policies, and two cancellation levels (stop starting new steps; abort the
//! running ones).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::engine::{Answer, Engine, Event, Outcome, Prior, RunStatus, StepStatus};
use super::journal_writer::JournalHandle;
use super::site_slot::SharedSite;
use super::worker::{Done, ProviderWorker, ScriptWorker, StepLog, op_timeout};
use crate::planner::schedule::{Dispatch, ReadyQueue};
use crate::planner::{ActionKind, ActionPlan, Dag};
use crate::spec::OnFailure;
use crate::state::JournalEvent;

pub(super) struct Dispatcher<'e> {
    engine: &'e Engine,
    plan: &'e ActionPlan,
    dag: &'e Dag,
    prior: Prior,
    journal: JournalHandle,
    global: Arc<Semaphore>,
    sites: HashMap<String, Arc<Semaphore>>,
    /// The backend's slots that hold limited sites' limits across runs, if it shares them.
    shared_sites: Option<Arc<dyn crate::state::SiteSlots>>,
    /// Predecessors each action still waits for.
    waiting: Vec<usize>,
    status: Vec<Option<StepStatus>>,
    /// Actions whose predecessors are all settled, not yet looked at.
    ready: VecDeque<usize>,
    /// Provider operations and scripts waiting for a slot.
    queue: ReadyQueue<'e>,
    workers: JoinSet<()>,
    tx: mpsc::UnboundedSender<(usize, Done)>,
    rx: mpsc::UnboundedReceiver<(usize, Done)>,
    finished_now: Vec<(usize, Done)>,
    /// Steps queued or running.
    pub(super) running: usize,
    stopping: bool,
    awaiting: Vec<String>,
    approvals: Vec<(String, String)>,
}

impl<'e> Dispatcher<'e> {
    pub(super) fn new(
        engine: &'e Engine,
        plan: &'e ActionPlan,
        dag: &'e Dag,
        dispatch: &'e Dispatch,
        prior: Prior,
    ) -> Self {
        let n = plan.actions.len();
        let waiting: Vec<usize> = dag.pred_counts();
        let ready = (0..n).filter(|&i| waiting[i] == 0).collect();
        let (tx, rx) = mpsc::unbounded_channel();
        Dispatcher {
            journal: JournalHandle::spawn(engine.store.clone(), engine.run_id.clone(), prior.last_seq),
            global: Arc::new(Semaphore::new(engine.options.parallelism.max(1))),
            sites: plan.site_limits.iter().map(|(s, n)| (s.clone(), Arc::new(Semaphore::new((*n).max(1))))).collect(),
            shared_sites: if plan.site_limits.is_empty() { None } else { engine.store.site_slots() },
            engine,
            plan,
            dag,
            prior,
            waiting,
            status: vec![None; n],
            ready,
            queue: ReadyQueue::new(plan, dispatch),
            workers: JoinSet::new(),
            tx,
            rx,
            finished_now: Vec::new(),
            running: 0,
            stopping: false,
            awaiting: Vec::new(),
            approvals: Vec::new(),
        }
    }

    pub(super) fn stopping(&self) -> bool {
        self.stopping || self.engine.stop.is_cancelled()
    }

    /// `i` is settled: its successors have one less thing to wait for.
    fn settle(&mut self, i: usize, status: StepStatus) {
        self.status[i] = Some(status);
        for &next in self.dag.succs(i) {
            self.waiting[next as usize] -= 1;
            if self.waiting[next as usize] == 0 {
                self.ready.push_back(next as usize);
            }
        }
    }

    /// Look at every ready action: settle what needs no slot (done before, skipped, not run,
    /// barriers, manual steps) and queue the rest for a slot.
    pub(super) fn settle_ready(&mut self) {
        while let Some(i) = self.ready.pop_front() {
            let action = &self.plan.actions[i];
            if self.prior.succeeded.contains(&action.id) {
                self.queue.settled(i);
                self.settle(i, StepStatus::Succeeded);
                continue;
            }
            let unmet: Vec<&str> = self
                .dag
                .preds(i)
                .iter()
                .filter(|&&(p, hard)| hard && self.status[p as usize] != Some(StepStatus::Succeeded))
                .map(|&(p, _)| self.plan.actions[p as usize].id.as_str())
                .collect();
            if !unmet.is_empty() {
                let reason = format!("needs {}, which did not succeed", unmet.join(", "));
                if !matches!(action.kind, ActionKind::Barrier) {
                    self.journal.note(&action.id, JournalEvent::Skipped { reason: reason.clone() });
                    self.engine.emit(Event::Finished { index: i, status: StepStatus::Skipped, detail: reason });
                }
                self.queue.settled(i);
                self.settle(i, StepStatus::Skipped);
                continue;
            }
            if self.stopping() {
                self.queue.settled(i);
                self.settle(i, StepStatus::NotRun);
                continue;
            }
            match &action.kind {
                ActionKind::Barrier => self.settle(i, StepStatus::Succeeded),
                ActionKind::Manual { prompt, approvers } => self.manual(i, prompt.clone(), approvers.clone()),
                ActionKind::Provider { .. } | ActionKind::Script { .. } => {
                    self.running += 1;
                    self.queue.push(i);
                }
            }
        }
    }

    /// A manual step: approved before, asked for now, or the run pauses at it.
    fn manual(&mut self, i: usize, prompt: String, approvers: Vec<String>) {
        let id = self.plan.actions[i].id.clone();
        if let Some(by) = self.prior.approved.get(&id) {
            let detail = format!("approved by {by}");
            self.engine.emit(Event::Finished { index: i, status: StepStatus::Succeeded, detail });
            self.settle(i, StepStatus::Succeeded);
            return;
        }
        let Some(approver) = self.engine.options.approver.clone() else {
            self.journal.note(&id, JournalEvent::Awaiting { prompt });
            self.engine.emit(Event::Awaiting { index: i });
            self.status[i] = Some(StepStatus::Awaiting);
            self.awaiting.push(id);
            return;
        };
        let (tx, journal) = (self.tx.clone(), self.journal.clone());
        self.running += 1;
        self.engine.emit(Event::Awaiting { index: i });
        self.workers.spawn(async move {
            let asked = id.clone();
            let answer = tokio::task::spawn_blocking(move || approver.ask(&asked, &prompt, &approvers))
                .await
                .unwrap_or(Answer::Later);
            let done = match answer {
                Answer::Approved { by } => match journal.commit(&id, JournalEvent::Approved { by: by.clone() }).await {
                    Ok(()) => Done::Approved { by },
                    Err(e) => Done::Failed(format!("journal: {e}")),
                },
                Answer::Rejected { by } => Done::Failed(format!("rejected by {by}")),
                Answer::Later => Done::Later,
            };
            let _ = tx.send((i, done));
        });
    }

    /// Once stopping, queued steps never start. Returns whether that made more actions ready.
    pub(super) fn drop_queued(&mut self) -> bool {
        while let Some(i) = self.queue.pop(|_| true, usize::MAX) {
            self.running -= 1;
            self.settle(i, StepStatus::NotRun);
        }
        !self.ready.is_empty()
    }

    /// Start queued steps while there are slots (the global one and their site's).
    pub(super) fn start_queued(&mut self) {
        loop {
            let Ok(global_permit) = self.global.clone().try_acquire_owned() else { break };
            // Free slots, counting the one just taken.
            let free = self.global.available_permits() + 1;
            let sites = &self.sites;
            let picked = self
                .queue
                .pop(|site| site.is_none_or(|s| sites.get(s).is_some_and(|sem| sem.available_permits() > 0)), free);
            let Some(i) = picked else { break };
            let site_permit =
                self.queue.site(i).and_then(|s| self.sites.get(s)).and_then(|sem| sem.clone().try_acquire_owned().ok());
            let permits = (global_permit, site_permit);
            let tx = self.tx.clone();
            let log = StepLog {
                index: i,
                id: self.plan.actions[i].id.clone(),
                journal: self.journal.clone(),
                abort: self.engine.abort.clone(),
                events: self.engine.events.clone(),
            };
            let engine = self.engine;
            match &self.plan.actions[i].kind {
                ActionKind::Provider { op } => {
                    let shared = self.queue.site(i).and_then(|site| {
                        let slots = self.shared_sites.clone()?;
                        let limit = *self.plan.site_limits.get(site)?;
                        Some(SharedSite {
                            slots,
                            site: site.to_string(),
                            limit: limit.max(1),
                            stop: engine.stop.clone(),
                        })
                    });
                    let worker = ProviderWorker {
                        operation: format!("{}/{}", engine.run_id, self.plan.actions[i].id),
                        log,
                        op: op.clone(),
                        timeout: op_timeout(op, engine.options.op_timeout),
                        provider: engine.provider.clone(),
                        retries: engine.options.transient_retries,
                        backoff: engine.options.backoff,
                        shared,
                    };
                    self.workers.spawn(async move {
                        let done = worker.run().await;
                        drop(permits);
                        let _ = tx.send((i, done));
                    });
                }
                ActionKind::Script { program, run, dir, env, timeout, retries } => {
                    // Values are put together only now, in memory: secrets are kept nowhere.
                    let mut resolved = std::collections::BTreeMap::new();
                    let mut unresolved = Vec::new();
                    for (name, value) in env {
                        match value.resolve(name) {
                            Ok(value) => drop(resolved.insert(name.clone(), value)),
                            Err(e) => unresolved.push(e),
                        }
                    }
                    resolved.insert("DRPLAN_RUN_ID".into(), engine.run_id.clone());
                    let env = resolved;
                    let worker = ScriptWorker {
                        log,
                        program: program.clone(),
                        args: run.iter().skip(1).cloned().collect(),
                        dir: dir.clone(),
                        env,
                        timeout: *timeout,
                        retries: *retries,
                        supervisor: engine.options.supervisor.clone(),
                        files: engine.options.step_files.clone(),
                        orphan: self.prior.orphans.get(&self.plan.actions[i].id).cloned(),
                        rerun: self.prior.rerun.contains(&self.plan.actions[i].id),
                        unresolved,
                    };
                    self.workers.spawn(async move {
                        let done = worker.run().await;
                        drop(permits);
                        let _ = tx.send((i, done));
                    });
                }
                ActionKind::Manual { .. } | ActionKind::Barrier => {
                    debug_assert!(false, "only slot-taking actions are queued");
                    self.running -= 1;
                }
            }
        }
    }

    /// Wait until a step ends (or a graceful stop is asked for); settle everything that has
    /// ended by then before any slot is handed out again.
    pub(super) async fn wait(&mut self) {
        tokio::select! {
            received = self.rx.recv_many(&mut self.finished_now, 64) => {
                if received == 0 {
                    return;
                }
                let finished: Vec<(usize, Done)> = self.finished_now.drain(..).collect();
                for (i, done) in finished {
                    self.running -= 1;
                    self.ended(i, done);
                }
            }
            _ = self.engine.stop.cancelled(), if !self.stopping => {
                self.stopping = true;
                self.engine.emit(Event::Stopping { reason: "interrupted".into() });
            }
        }
    }

    /// A step ended: report it and apply the failure policy.
    fn ended(&mut self, i: usize, done: Done) {
        let action = &self.plan.actions[i];
        let status = match done {
            Done::Ok(detail) => {
                self.engine.emit(Event::Finished { index: i, status: StepStatus::Succeeded, detail });
                StepStatus::Succeeded
            }
            Done::Approved { by } => {
                let detail = format!("approved by {by}");
                self.engine.emit(Event::Finished { index: i, status: StepStatus::Succeeded, detail });
                self.approvals.push((action.id.clone(), by));
                StepStatus::Succeeded
            }
            Done::NotStarted => {
                self.settle(i, StepStatus::NotRun);
                return;
            }
            Done::Later => {
                self.journal.note(&action.id, JournalEvent::Awaiting { prompt: String::new() });
                self.awaiting.push(action.id.clone());
                self.status[i] = Some(StepStatus::Awaiting);
                return;
            }
            Done::Unknown(reason) => {
                self.engine.emit(Event::Awaiting { index: i });
                self.journal.note(&action.id, JournalEvent::Awaiting { prompt: reason });
                self.awaiting.push(action.id.clone());
                self.status[i] = Some(StepStatus::Awaiting);
                return;
            }
            Done::Failed(error) => {
                self.engine.emit(Event::Finished { index: i, status: StepStatus::Failed, detail: error.clone() });
                if action.on_failure == OnFailure::Stop && !self.stopping {
                    self.stopping = true;
                    self.engine.emit(Event::Stopping { reason: format!("{} failed: {error}", action.id) });
                }
                StepStatus::Failed
            }
        };
        self.settle(i, status);
    }

    /// Wait for every worker, make sure everything noted is on disk, and say how the run ended.
    pub(super) async fn finish(mut self, engine: &Engine) -> Outcome {
        while self.workers.join_next().await.is_some() {}
        // Everything noted (skips, awaits) is on disk before the outcome is reported.
        let _ = self.journal.flush().await;
        let statuses: Vec<StepStatus> = self.status.into_iter().map(|s| s.unwrap_or(StepStatus::NotRun)).collect();
        let failed = statuses.contains(&StepStatus::Failed);
        let not_run = statuses.contains(&StepStatus::NotRun);
        let status = if engine.stop.is_cancelled() && not_run {
            RunStatus::Interrupted
        } else if failed && not_run {
            RunStatus::Failed
        } else if !self.awaiting.is_empty() {
            RunStatus::Paused
        } else if failed {
            RunStatus::CompletedWithErrors
        } else {
            RunStatus::Succeeded
        };
        Outcome { status, statuses, awaiting: self.awaiting, approvals: self.approvals }
    }
}
