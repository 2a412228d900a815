//! Executing a run from a command: progress on stderr, Ctrl-C handling, prompts for manual
//! steps in a terminal, and the outcome on stdout with the right exit code (0 done, 1 failed,
//! 3 waiting for an approval). The run itself is the library's (`runs`).

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::progress::{Progress, Terminal};
use super::session::fail;
use super::{Format, Ui, exit};
use crate::exec::engine::{Answer, Approver, RunStatus};
use crate::exec::run_report::RunReport;
use crate::planner::ActionPlan;
use crate::report::run::render_summary;
use crate::report::style::Painter;
use crate::runs::{Held, RunHooks, RunOptions};
use crate::state::short_id;

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
    /// When another runner holds the plan's lock, wait up to this long for it (e.g. `10m`)
    /// instead of failing at once.
    #[arg(long, value_parser = super::duration_at_least(std::time::Duration::ZERO))]
    pub lock_timeout: Option<std::time::Duration>,
    /// Print no outcome (a follow-up run whose caller already printed one).
    #[arg(skip)]
    pub quiet: bool,
    /// Script steps to run again although an earlier attempt's outcome is unknown (`resume`).
    #[arg(skip)]
    pub rerun: Vec<String>,
}

impl RunArgs {
    /// Parallelism for planning: the flag, else 10.
    pub fn planning_parallelism(&self) -> usize {
        self.parallelism.unwrap_or(10) as usize
    }

    fn options(&self, notes: Option<String>) -> RunOptions {
        RunOptions {
            parallelism: self.parallelism.map(|p| p as usize),
            op_timeout: Some(self.op_timeout),
            report_dir: self.report.clone(),
            notes,
            rerun: self.rerun.clone(),
        }
    }
}

/// Execute `plan` (a new run, or the continuation of the unfinished one) and print the outcome.
pub async fn execute(held: &mut Held<'_>, plan: ActionPlan, args: &RunArgs, ui: Ui, notes: Option<String>) -> u8 {
    let plan = Arc::new(plan);
    let terminal = std::io::stderr().is_terminal() && !ui.json_logs;
    let interactive = !args.no_input && std::io::stdin().is_terminal() && terminal;
    let progress = Progress::start(plan.clone(), ui, terminal);
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let signals = watch_interrupts(stop.clone(), abort.clone());
    let hooks = RunHooks {
        events: Some(progress.sender()),
        approver: interactive
            .then(|| Arc::new(TerminalApprover { terminal: progress.terminal() }) as Arc<dyn Approver>),
        stop,
        abort,
    };
    if let Some(active) = &held.state.run {
        errln!("Continuing run {} ({}).", short_id(&active.id), active.kind);
    }
    let result = held.execute(plan, &args.options(notes), hooks).await;
    signals.abort();
    progress.finish().await;
    let result = match result {
        Ok(r) => r,
        Err(failure) => return fail(ui, failure),
    };
    for warning in &result.warnings {
        errln!("warning: {warning}");
    }
    match &result.evidence {
        Some(Ok(files)) if args.format == Format::Human => {
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            errln!("Wrote {}.", names.join(", "));
        }
        Some(Err(e)) => errln!("warning: cannot write the run's reports: {e}"),
        _ => {}
    }
    if !args.quiet {
        print_outcome(&result.report, args.format, ui, &held.workspace.path);
    }
    match result.status {
        RunStatus::Succeeded => exit::OK,
        RunStatus::Paused => exit::AWAITING_APPROVAL,
        _ => exit::ERROR,
    }
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
                    let script = run_report.steps.iter().find(|s| &s.id == step).filter(|s| s.kind == "script");
                    match script {
                        Some(s) => {
                            outln!("  {step}: {}", s.error.as_deref().unwrap_or("its outcome is unknown"));
                            outln!("  drplan approve {p} {step} --by NAME    (it did run: count it as done)");
                            outln!("  drplan resume {p} --rerun {step}    (run it again)");
                        }
                        None => outln!("  drplan approve {p} {step} --by NAME"),
                    }
                }
                outln!("then continue with `drplan resume {p}`.");
            }
        }
    }
}

/// First Ctrl-C or SIGTERM (how CI systems stop a job): start nothing new and let running
/// steps finish. Second: abort them (a data sync that is stopped leaves its target marked
/// inconsistent for the next run to redo; a script is stopped and recorded as such).
fn watch_interrupts(stop: CancellationToken, abort: CancellationToken) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // One listener each for the whole run, so a second signal is never lost between two waits.
    let listeners = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
    tokio::spawn(async move {
        let (Ok(mut interrupt), Ok(mut terminate)) = listeners else { return };
        let mut next = async || {
            tokio::select! {
                got = interrupt.recv() => got.map(|()| "Interrupted"),
                got = terminate.recv() => got.map(|()| "Terminated"),
            }
        };
        let Some(what) = next().await else { return };
        errln!("\n{what}: no new steps start; running steps finish. Interrupt again to abort them.");
        stop.cancel();
        if next().await.is_some() {
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

/// Remove the open drill's copies; on success the drill is closed and its notes recorded.
pub async fn close_drill(held: &mut Held<'_>, run: &RunArgs, notes: Option<String>, ui: Ui) -> Result<u8, u8> {
    let open = held.state.drill.clone();
    // Refused when no drill is open.
    let plan = held.close_drill(run.planning_parallelism()).await.map_err(|f| super::session::fail(ui, f))?;
    let (id, drill_notes) = open.map(|d| (d.id, d.notes)).unwrap_or_default();
    let code = execute(held, plan, run, ui, notes.or(drill_notes)).await;
    if code == exit::OK {
        errln!("Drill {id} is complete: its test copies are gone.");
    }
    Ok(code)
}

/// The drill asked to be completed automatically and its run is over (first time, or
/// resumed after an approval): clean up now. The exit code is the drill run's (`code`)
/// unless that succeeded.
pub async fn complete_due_drill(held: &mut Held<'_>, args: &RunArgs, code: u8, ui: Ui) -> Result<u8, u8> {
    // The cleanup's evidence goes beside the drill's, not over it.
    let mut run = args.clone();
    run.report = run.report.map(|d| d.join("cleanup"));
    // stdout carries one JSON document: the drill's report.
    run.quiet = run.format == Format::Json;
    let cleanup = close_drill(held, &run, None, ui).await?;
    Ok(if code == exit::OK { cleanup } else { code })
}

/// Say what the command found when it took the plan (a drill open too long was cleaned up).
pub fn announce(held: &Held<'_>) {
    if let Some(expired) = &held.expired {
        use crate::spec::time_format::human_duration;
        errln!(
            "Drill {} had been open for {} (more than its maximum {}): its test copies were removed.",
            expired.id,
            human_duration(expired.age),
            human_duration(expired.max_age)
        );
        if !expired.failed.is_empty() {
            errln!("warning: could not remove every copy of drill {}: {}", expired.id, expired.failed.join("; "));
        }
    }
}
