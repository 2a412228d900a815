//! Running an action plan: the shared driver of apply, resume, commit and rollback.
//! It records the run in state, executes it with progress, handles Ctrl-C, and ends with
//! a report and the right exit code (0 done, 1 failed, 3 waiting for an approval).

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::progress::{Progress, Terminal};
use super::session::{Session, report};
use super::{Format, Ui, exit};
use crate::contract::Provider;
use crate::exec::engine::{Answer, Approver, Engine, EngineOptions, Prior, RunStatus};
use crate::exec::run_report::{self, RunReport};
use crate::planner::{ActionPlan, Dag, PlanError, file};
use crate::report::run::render_summary;
use crate::report::style::Painter;
use crate::state::{
    ActiveRun, Approval, HISTORY_KEPT, HistoryEntry, JournalEvent, JournalRecord, LastApply, RunState, State,
    StateStore, new_id,
};

/// How to execute.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Provider operations and scripts at once (default: the saved plan's, else 10).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub parallelism: Option<u32>,
    /// `human` or `json` (the final run report on stdout; progress goes to stderr).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Never prompt for manual steps, even in a terminal: pause and exit 3 instead.
    #[arg(long)]
    pub no_input: bool,
    /// Timeout of provider operations that have none of their own (syncs, failovers,
    /// protection); starts and shutdowns use the machine's `boot_timeout`.
    #[arg(long, default_value = "1h", value_parser = super::duration_at_least(std::time::Duration::from_millis(1)))]
    pub op_timeout: std::time::Duration,
    /// Also write the run's evidence into DIR: report.json, report.md, junit.xml, timeline.svg.
    #[arg(long, value_name = "DIR")]
    pub report: Option<std::path::PathBuf>,
    /// Print no outcome (a follow-up run whose caller already printed one).
    #[arg(skip)]
    pub quiet: bool,
}

/// The checksum that identifies a saved plan (the run records it).
pub fn plan_checksum(plan: &ActionPlan) -> String {
    let bytes = file::to_bytes(plan).unwrap_or_default();
    blake3::hash(&bytes).to_hex().to_string()
}

/// Execute `plan` as a new run, or continue `state.run` when it is this plan's run.
pub async fn execute(
    session: &Session,
    provider: Arc<dyn Provider>,
    plan: ActionPlan,
    mut state: State,
    args: &RunArgs,
) -> u8 {
    execute_with_notes(session, provider, plan, &mut state, args, None).await
}

/// As [`execute`], with notes for the report (a drill's observations) and the state kept for
/// the caller (a drill records its copies in it).
pub async fn execute_with_notes(
    session: &Session,
    provider: Arc<dyn Provider>,
    plan: ActionPlan,
    state: &mut State,
    args: &RunArgs,
    notes: Option<String>,
) -> u8 {
    let ui = session.ui;
    let store = session.store.clone();
    let dag = match Dag::new(&plan) {
        Ok(dag) => Arc::new(dag),
        Err(reason) => {
            return report(
                ui,
                &PlanError::CorruptFile {
                    path: plan.plan_path.clone(),
                    reason: format!("invalid action graph: {reason}"),
                },
            );
        }
    };
    let checksum = plan_checksum(&plan);
    // A new run, or the continuation of an unfinished one.
    let (run_id, prior) = match &state.run {
        Some(active) if active.plan_checksum == checksum => {
            let journal = match store.read_journal(&active.id) {
                Ok(j) => j,
                Err(e) => return report(ui, &e),
            };
            errln!("Continuing run {} ({}).", short(&active.id), active.kind);
            (active.id.clone(), prior_from(&journal, active))
        }
        Some(active) => {
            return report(
                ui,
                &crate::cli::errors::RunError::InProgress {
                    plan: session.model.name.clone(),
                    run: short(&active.id),
                    kind: active.kind.clone(),
                    state: format!("{:?}", active.status).to_lowercase(),
                    path: session.path.display().to_string(),
                },
            );
        }
        None => {
            let id = new_id();
            let bytes = match file::to_bytes(&plan) {
                Ok(b) => b,
                Err(reason) => return report(ui, &PlanError::Unwritable { path: "run plan".into(), reason }),
            };
            if let Err(e) = store.write_artifact(&format!("{id}.plan"), &bytes) {
                return report(ui, &e);
            }
            state.run = Some(ActiveRun {
                id: id.clone(),
                kind: plan.run.title().to_string(),
                plan_checksum: checksum.clone(),
                document_hash: plan.fingerprint.document_hash.clone(),
                started_at: SystemTime::now(),
                status: RunState::Running,
                awaiting: Vec::new(),
                approvals: Default::default(),
            });
            if let Err(e) = store.save(state) {
                return report(ui, &e);
            }
            let start = JournalRecord {
                run: id.clone(),
                seq: 1,
                at: SystemTime::now(),
                step: String::new(),
                event: JournalEvent::RunStarted {
                    operation: plan.run.title().to_string(),
                    plan_hash: checksum.clone(),
                },
            };
            if let Err(e) = store.append_journal(&id, &[start]) {
                return report(ui, &e);
            }
            (id, Prior { last_seq: 1, ..Prior::default() })
        }
    };
    if let Some(active) = state.run.as_mut() {
        active.status = RunState::Running;
        active.awaiting.clear();
    }
    if let Err(e) = store.save(state) {
        return report(ui, &e);
    }

    let plan = Arc::new(plan);
    let interactive = !args.no_input && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let progress = Progress::start(plan.clone(), ui, std::io::stderr().is_terminal());
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let signals = watch_interrupts(stop.clone(), abort.clone());
    let options = EngineOptions {
        parallelism: args.parallelism.map_or(plan.parallelism, |p| p as usize),
        op_timeout: args.op_timeout,
        approver: interactive
            .then(|| Arc::new(TerminalApprover { terminal: progress.terminal() }) as Arc<dyn Approver>),
        ..EngineOptions::default()
    };
    let engine = Engine {
        plan: plan.clone(),
        dag,
        provider: provider.clone(),
        store: store.clone(),
        run_id: run_id.clone(),
        options,
        events: Some(progress.sender()),
        stop: stop.clone(),
        abort,
    };
    let outcome = engine.run(prior).await;
    signals.abort();
    progress.finish().await;
    if let Err(e) = provider.flush().await {
        report(ui, &e);
    }

    // Record the outcome in state, then report.
    let status_word = match outcome.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::CompletedWithErrors => "completed-with-errors",
        RunStatus::Failed => "failed",
        RunStatus::Paused => "paused",
        RunStatus::Interrupted => "interrupted",
    };
    let finished = matches!(outcome.status, RunStatus::Succeeded | RunStatus::CompletedWithErrors);
    let mut journal = store.read_journal(&run_id).unwrap_or_default();
    if finished {
        let record = JournalRecord {
            run: run_id.clone(),
            seq: journal.iter().map(|r| r.seq).max().unwrap_or(0) + 1,
            at: SystemTime::now(),
            step: String::new(),
            event: JournalEvent::RunFinished { status: status_word.into() },
        };
        if let Err(e) = store.append_journal(&run_id, std::slice::from_ref(&record)) {
            report(ui, &e);
        }
        journal.push(record);
    }
    let mut run_report = run_report::build(&run_id, &plan, &journal, status_word, SystemTime::now());
    run_report.git_commit = super::git::commit_of(&session.path);
    run_report.notes.extend(notes);
    let report_bytes = serde_json::to_vec_pretty(&run_report).unwrap_or_default();
    if let Err(e) = store.write_artifact(&format!("{run_id}.report.json"), &report_bytes) {
        report(ui, &e);
    }
    if let Some(dir) = &args.report {
        match crate::report::evidence::write_all(&run_report, dir) {
            Ok(files) if args.format == Format::Human => {
                let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                errln!("Wrote {}.", names.join(", "));
            }
            Ok(_) => {}
            Err(e) => errln!("warning: cannot write the reports into {}: {e}", dir.display()),
        }
    }
    if let Some(active) = state.run.as_mut() {
        for (step, by) in &outcome.approvals {
            active.approvals.insert(step.clone(), Approval { by: by.clone(), at: SystemTime::now() });
        }
        active.awaiting = outcome.awaiting.clone();
        active.status = match outcome.status {
            RunStatus::Paused => RunState::Paused,
            RunStatus::Interrupted => RunState::Interrupted,
            _ => RunState::Failed,
        };
    }
    if finished {
        state.run = None;
        record_history(state, &run_report, None);
        state.last_apply = Some(LastApply {
            run: run_id.clone(),
            operation: plan.run.title().to_string(),
            document_hash: plan.fingerprint.document_hash.clone(),
            finished_at: SystemTime::now(),
            status: status_word.to_string(),
        });
    }
    if let Err(e) = store.save(state) {
        return report(ui, &e);
    }
    if !args.quiet {
        print_outcome(&run_report, args.format, ui, &session.path);
    }
    match outcome.status {
        RunStatus::Succeeded => exit::OK,
        RunStatus::Paused => exit::AWAITING_APPROVAL,
        _ => exit::ERROR,
    }
}

/// Remember a finished run for `drplan history`.
pub fn record_history(state: &mut State, run: &RunReport, drill: Option<String>) {
    state.history.push(HistoryEntry {
        run: run.run.clone(),
        kind: run.kind.title().to_string(),
        status: run.status.clone(),
        started_at: run.started_at,
        finished_at: run.finished_at,
        rto_ms: run.rto.as_ref().map(|r| r.measured_ms),
        rto_objective_ms: run.objectives.rto_ms,
        data_loss_ms: run.data_loss.as_ref().map(|l| l.max_time_ms),
        rpo_objective_ms: run.objectives.rpo_ms,
        drill,
        notes: (!run.notes.is_empty()).then(|| run.notes.join("\n")),
    });
    let excess = state.history.len().saturating_sub(HISTORY_KEPT);
    state.history.drain(..excess);
}

fn print_outcome(run_report: &RunReport, format: Format, ui: Ui, plan_path: &std::path::Path) {
    match format {
        Format::Json => super::output::json(run_report),
        Format::Human => {
            out!("{}", render_summary(run_report, Painter { enabled: ui.stdout_color }));
            if !run_report.awaiting.is_empty() {
                let p = plan_path.display();
                outln!("\nWaiting for approval of: {}.", run_report.awaiting.join(", "));
                for step in &run_report.awaiting {
                    outln!("  drplan approve {p} {step} --by NAME");
                }
                outln!("then continue with `drplan resume {p}`.");
            }
        }
    }
}

/// What the journal (and the recorded approvals) say was already done.
fn prior_from(journal: &[JournalRecord], active: &ActiveRun) -> Prior {
    let mut succeeded = HashSet::new();
    let mut last_seq = 0;
    for record in journal {
        last_seq = last_seq.max(record.seq);
        match &record.event {
            JournalEvent::Succeeded { .. } | JournalEvent::Approved { .. } => {
                succeeded.insert(record.step.clone());
            }
            // A later failure or restart of the same step replaces an earlier success only
            // when the step was retried, which the engine never does after success.
            _ => {}
        }
    }
    let approved = active.approvals.iter().map(|(k, v)| (k.clone(), v.by.clone())).collect();
    Prior { succeeded, approved, last_seq }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// First Ctrl-C: start nothing new and let running steps finish. Second: abort them (a data
/// sync that is stopped leaves its target marked inconsistent for the next run to redo).
fn watch_interrupts(stop: CancellationToken, abort: CancellationToken) -> tokio::task::JoinHandle<()> {
    // One listener for the whole run, so a second Ctrl-C is never lost between two waits.
    let listener = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    tokio::spawn(async move {
        let Ok(mut interrupt) = listener else { return };
        if interrupt.recv().await.is_none() {
            return;
        }
        errln!("\nInterrupted: no new steps start; running steps finish. Press Ctrl-C again to abort them.");
        stop.cancel();
        if interrupt.recv().await.is_some() {
            errln!("\nAborting running steps at their next safe point.");
            abort.cancel();
        }
    })
}

/// Prompts on the terminal for a manual step.
struct TerminalApprover {
    terminal: Terminal,
}

impl Approver for TerminalApprover {
    fn ask(&self, step: &str, prompt: &str, approvers: &[String]) -> Answer {
        let _terminal = self.terminal.take();
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        let who = if approvers.is_empty() { String::new() } else { format!(" (approvers: {})", approvers.join(", ")) };
        let mut err = std::io::stderr();
        let _ = write!(err, "\n? {step}: {prompt}{who}\n  Approve as {user}? [y/N/later] ");
        let _ = err.flush();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err() {
            return Answer::Later;
        }
        match line.trim().to_lowercase().as_str() {
            "y" | "yes" => {
                if !approvers.is_empty() && !approvers.contains(&user) {
                    let _ = writeln!(err, "  {user} is not an approver of {step}; the run pauses for one of them.");
                    return Answer::Later;
                }
                Answer::Approved { by: user }
            }
            "n" | "no" => Answer::Rejected { by: user },
            _ => Answer::Later,
        }
    }
}
