//! What runs one step: journal its attempts, report progress, retry what may be retried,
//! and come back with how it ended.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::engine::Event;
use super::engine::Orphan;
use super::journal_writer::JournalHandle;
use super::script::{Reattached, Script, ScriptResult, reattach, spawn};
use super::site_slot::{SharedSite, Wait};
use super::supervisor::StepFiles;
use crate::contract::{OpOutcome, Provider, ProviderError, ProviderOp};
use crate::state::{JournalEvent, StepOutcome};

/// How a step ended, as its worker reports it.
pub(super) enum Done {
    Ok(String),
    Approved {
        by: String,
    },
    Failed(String),
    /// Nobody could answer a manual step now: the run pauses.
    Later,
    /// Whether a script ran is unknown: the run pauses for a person to say (the reason).
    Unknown(String),
    /// The run stopped while the step waited for its site's slot: it never started.
    NotStarted,
}

/// How long the engine waits for an operation before it fails the step. A start or a
/// shutdown carries its own timeout, which the provider acts on itself: it forces a machine
/// that ignored the power button off (a success), or reports what the guest did not do in
/// time. The engine's deadline comes later, by as long again (5 s to 30 s), for a provider
/// that does not answer at all.
pub(super) fn op_timeout(op: &ProviderOp, default: Duration) -> Duration {
    match op {
        ProviderOp::Start { timeout, .. } | ProviderOp::Shutdown { timeout, .. } => {
            *timeout + (*timeout).clamp(Duration::from_secs(5), Duration::from_secs(30))
        }
        _ => default,
    }
}

/// What every worker does around its attempts: journal, progress events, abortable waits.
pub(super) struct StepLog {
    pub(super) index: usize,
    pub(super) id: String,
    pub(super) journal: JournalHandle,
    pub(super) abort: CancellationToken,
    pub(super) events: Option<mpsc::UnboundedSender<Event>>,
}

impl StepLog {
    fn emit(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    /// Progress of the running operation, as events of this step.
    fn progress_sink(&self) -> crate::contract::ProgressSink {
        let (events, index) = (self.events.clone(), self.index);
        Arc::new(move |progress| {
            if let Some(events) = &events {
                let _ = events.send(Event::Progress { index, progress });
            }
        })
    }

    fn started(&self, attempt: u32) {
        self.journal.note(&self.id, JournalEvent::Started { attempt });
        self.emit(Event::Started { index: self.index, attempt });
    }

    /// Record success durably; only then may dependents start.
    async fn succeeded(&self, outcome: StepOutcome) -> Done {
        let summary = outcome.op.summary.clone();
        match self.journal.commit(&self.id, JournalEvent::Succeeded { outcome }).await {
            Ok(()) => Done::Ok(summary),
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

pub(super) struct ProviderWorker {
    pub(super) log: StepLog,
    /// The journal's id of the operation (`RUN/STEP`), the same when asked again.
    pub(super) operation: String,
    pub(super) op: ProviderOp,
    pub(super) timeout: Duration,
    pub(super) provider: Arc<dyn Provider>,
    pub(super) retries: u32,
    pub(super) backoff: Duration,
    /// The site's slot shared with other runs, when the site is limited and shared.
    pub(super) shared: Option<SharedSite>,
}

impl ProviderWorker {
    /// Take the site's shared slot (if any), run the attempts, give the slot back after the
    /// end is journalled.
    pub(super) async fn run(mut self) -> Done {
        let Some(shared) = self.shared.take() else { return self.attempts().await };
        let (site, limit) = (shared.site.clone(), shared.limit);
        let held = shared
            .take(&self.log.abort, || self.log.emit(Event::WaitingForSite { index: self.log.index, site, limit }))
            .await;
        match held {
            Wait::Taken(slot) => {
                let done = self.attempts().await;
                slot.give_back();
                done
            }
            Wait::Stopped => Done::NotStarted,
            Wait::Failed(error) => {
                self.log.failed(&error, 1).await;
                Done::Failed(error)
            }
        }
    }

    async fn attempts(&self) -> Done {
        let log = &self.log;
        let mut attempt = 0;
        loop {
            attempt += 1;
            log.started(attempt);
            let call =
                self.provider.execute_as(&self.operation, &self.op, log.abort.child_token(), log.progress_sink());
            let result = match tokio::time::timeout(self.timeout, call).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::TimedOut { after: self.timeout }),
            };
            match result {
                Ok(outcome) => {
                    return log.succeeded(StepOutcome { op: outcome, output: None }).await;
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

pub(super) struct ScriptWorker {
    pub(super) log: StepLog,
    pub(super) program: std::path::PathBuf,
    pub(super) args: Vec<String>,
    pub(super) dir: std::path::PathBuf,
    pub(super) env: std::collections::BTreeMap<String, String>,
    pub(super) timeout: Duration,
    pub(super) retries: u32,
    /// The `drplan` binary, which supervises scripts.
    pub(super) supervisor: std::path::PathBuf,
    /// Where this run keeps its scripts' status and output files.
    pub(super) files: std::path::PathBuf,
    /// An attempt an earlier drplan started and did not see end.
    pub(super) orphan: Option<Orphan>,
    /// Start again even when the orphan's outcome is unknown (`resume --rerun`).
    pub(super) rerun: bool,
    /// Environment values that could not be had (the step fails without starting).
    pub(super) unresolved: Vec<String>,
}

impl ScriptWorker {
    pub(super) async fn run(self) -> Done {
        let log = &self.log;
        let mut attempt = 0;
        let mut reattached = match &self.orphan {
            Some(orphan) => {
                let files = StepFiles::new(&orphan.files, &log.id, orphan.attempt);
                attempt = orphan.attempt;
                match reattach(&orphan.process, &files, &log.abort).await {
                    Reattached::Finished(mut result) => {
                        result.reattached = true;
                        Some((result, files))
                    }
                    Reattached::NotStarted => None,
                    Reattached::Unknown(_) if self.rerun => None,
                    Reattached::Unknown(why) => {
                        return Done::Unknown(format!("the outcome of attempt {attempt} is unknown: {why}"));
                    }
                }
            }
            None => None,
        };
        loop {
            let (result, files) = match reattached.take() {
                Some(found) => found,
                None => {
                    attempt += 1;
                    log.started(attempt);
                    match self.attempt(attempt).await {
                        Ok(found) => found,
                        Err(error) => {
                            log.failed(&error, attempt).await;
                            return Done::Failed(error);
                        }
                    }
                }
            };
            let (ok, detail, output) = (result.success(), result.describe(), result.output);
            if ok {
                let outcome =
                    StepOutcome { op: OpOutcome { summary: detail, ..OpOutcome::default() }, output: Some(output) };
                let done = log.succeeded(outcome).await;
                files.remove();
                return done;
            }
            let error = match output.trim().lines().last() {
                Some(last) => format!("{detail}: {last}"),
                None => detail,
            };
            if log.may_retry(attempt, self.retries) {
                files.remove();
                let wait = (Duration::from_millis(500) * 2u32.pow(attempt - 1)).min(Duration::from_secs(30));
                log.retry_after(attempt, error, wait).await;
                continue;
            }
            log.failed(&error, attempt).await;
            files.remove();
            return Done::Failed(format!("{error} (after {attempt} attempt{})", if attempt == 1 { "" } else { "s" }));
        }
    }

    /// One attempt: start the supervisor, journal it durably, only then let the script run.
    async fn attempt(&self, attempt: u32) -> Result<(ScriptResult, StepFiles), String> {
        let log = &self.log;
        if !self.unresolved.is_empty() {
            return Err(format!("not started: {}", self.unresolved.join("; ")));
        }
        let script =
            Script { program: &self.program, args: &self.args, dir: &self.dir, env: &self.env, timeout: self.timeout };
        let files = StepFiles::new(&self.files, &log.id, attempt);
        let mut spawned = spawn(&self.supervisor, &script, files)?;
        let record = JournalEvent::Spawned { attempt, process: spawned.process, files: self.files.clone() };
        if let Err(e) = log.journal.commit(&log.id, record).await {
            // Never told to go, the supervisor exits without running anything.
            let _ = spawned.wait(&CancellationToken::new()).await;
            return Err(format!("not started: the journal could not record the start: {e}"));
        }
        if log.abort.is_cancelled() {
            let _ = spawned.wait(&log.abort).await;
            return Err("aborted before it started".into());
        }
        spawned.go().await?;
        let files = spawned.files.clone();
        Ok((spawned.wait(&log.abort).await, files))
    }
}
