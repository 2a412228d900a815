//! The executor: what a run is given and what it reports. The loop itself is short (see
//! [`Engine::run`]); the [`super::dispatch`] module decides what starts when, and
//! [`super::worker`] runs one step.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::dispatch::Dispatcher;
use crate::contract::Provider;
use crate::planner::schedule::Dispatch;
use crate::planner::{ActionPlan, Dag};
use crate::state::StateStore;

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
    /// The `drplan` binary, which supervises scripts (`drplan __supervise-step`).
    pub supervisor: PathBuf,
    /// Where the run keeps its scripts' status and output files while they run.
    pub step_files: PathBuf,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            parallelism: 10,
            transient_retries: 5,
            backoff: Duration::from_millis(200),
            op_timeout: Duration::from_secs(3600),
            approver: None,
            supervisor: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("drplan")),
            step_files: std::env::temp_dir().join("drplan-steps"),
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
    /// Every slot of the step's site is in use by other runs: it waits for one.
    WaitingForSite {
        index: usize,
        site: String,
        limit: usize,
    },
    /// A running operation reported how far it got.
    Progress {
        index: usize,
        progress: crate::contract::OpProgress,
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
    /// Script attempts started and not seen to end, by step.
    pub orphans: HashMap<String, Orphan>,
    /// Steps to start again although their orphan's outcome is unknown.
    pub rerun: HashSet<String>,
}

/// A script attempt an earlier drplan started (its supervisor journalled) and did not see end.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub attempt: u32,
    pub process: crate::os::process::ProcessId,
    pub files: std::path::PathBuf,
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

impl Engine {
    pub(super) fn emit(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    /// Execute the plan, skipping what `prior` says was done: settle what is ready, start
    /// queued steps while there are slots, wait for one to end, until nothing runs.
    pub async fn run(self, prior: Prior) -> Outcome {
        let plan = self.plan.clone();
        let dag = self.dag.clone();
        let already = plan.actions.iter().filter(|a| prior.succeeded.contains(&a.id)).count();
        if already > 0 {
            self.emit(Event::AlreadyDone { count: already });
        }
        // Steps wait for a slot by the same policy the plan's RTO estimate was simulated with.
        let (dispatch, _) = Dispatch::choose(&plan, &dag, |i| Duration::from_millis(plan.actions[i].estimate_ms));
        let mut dispatcher = Dispatcher::new(&self, &plan, &dag, &dispatch, prior);
        loop {
            dispatcher.settle_ready();
            if dispatcher.stopping() && dispatcher.drop_queued() {
                continue;
            }
            dispatcher.start_queued();
            if dispatcher.running == 0 {
                break;
            }
            dispatcher.wait().await;
        }
        dispatcher.finish(&self).await
    }
}
