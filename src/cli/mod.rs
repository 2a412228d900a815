//! The command line: parse arguments, run one subcommand, map the outcome to an exit code.

// Command output goes through these instead of `print!`/`eprint!`: see `output`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(format_args!($($arg)*))
    };
}
macro_rules! outln {
    () => {
        $crate::cli::output::stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::output::stderr(format_args!($($arg)*))
    };
}
macro_rules! errln {
    () => {
        $crate::cli::output::stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod apply;
mod approve;
mod cancel;
mod check;
mod commit;
mod diff;
mod drill;
mod export;
mod graph;
mod history;
mod import;
mod lab;
mod output;
mod plan;
mod progress;
mod provider;
mod replicate;
mod resume;
mod review;
mod run;
mod schema;
mod session;
mod show;
mod sim;
mod state;
mod unlock;
mod validate;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::report::diagnostics::Style;

/// `--point`: a recovery point selector, as `target.recovery_point` takes.
fn parse_point(text: &str) -> Result<crate::validate::RecoveryPointSel, String> {
    crate::validate::RecoveryPointSel::parse(text)
        .ok_or_else(|| "use latest, latest-app-consistent, latest-processed or an RFC 3339 time".to_string())
}

/// A parser for duration flags with a floor (`--every 0s` would spin, a zero timeout would
/// fail every operation).
fn duration_at_least(
    min: std::time::Duration,
) -> impl Fn(&str) -> Result<std::time::Duration, String> + Clone + Send + Sync + 'static {
    move |text| {
        let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
        if d < min {
            return Err(format!("must be at least {}", humantime::format_duration(min)));
        }
        Ok(d)
    }
}

/// Exit codes are part of the interface pipelines rely on.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    /// `plan --detailed-exitcode`: there are changes.
    pub const CHANGES: u8 = 2;
    /// A run paused at a manual step; `drplan approve` then `drplan resume`.
    pub const AWAITING_APPROVAL: u8 = 3;
}

#[derive(Debug, Parser)]
#[command(name = "drplan", version, about = "Disaster recovery as code: plan, drill, fail over and fail back.")]
#[command(propagate_version = true)]
pub struct Cli {
    /// When to use colour: auto (a terminal without NO_COLOR), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Log events on stderr as text or JSON lines (level from DRPLAN_LOG; JSON lines default to `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check plan files: schema and semantic rules, every problem with its line and column.
    Validate(validate::Args),
    /// Show what applying the plan would do; save it with --out for `drplan apply`.
    Plan(plan::Args),
    /// What a change to a plan does, for review: two plan files, or one and --git REV.
    Diff(diff::Args),
    /// Could every machine fail over now? Per machine, what blocks it (for nightly pipelines).
    Check(check::Args),
    /// Execute a saved plan exactly, or plan, confirm and execute a plan document.
    Apply(apply::Args),
    /// Record the approval of a manual step of the unfinished run.
    Approve(approve::Args),
    /// Continue the unfinished run (after an approval, a failure, an interruption or a crash).
    Resume(resume::Args),
    /// Abandon the unfinished run.
    Cancel(cancel::Args),
    /// Commit failovers that await it (and reprotect, if the plan says so).
    Commit(commit::CommitArgs),
    /// Undo failovers that await commit, or move them to another recovery point.
    Rollback(commit::RollbackArgs),
    /// A test failover into the isolated networks (`drill complete` cleans it up).
    Drill(Box<drill::Args>),
    /// Past runs and drills with measured RTO and data loss against the objectives.
    History(history::Args),
    /// Write a past run's evidence (JSON, Markdown, JUnit, SVG timeline) into a directory.
    Report(history::ReportArgs),
    /// Render a saved plan and check that it still matches the world.
    Show(show::Args),
    /// Draw the boot-group and step DAG (Graphviz dot or Mermaid).
    Graph(graph::Args),
    /// Write a plan document from another tool's recovery plan (Azure Site Recovery).
    Import(import::Args),
    /// Write a plan as another tool's recovery plan (Azure Site Recovery: ARM or Bicep).
    Export(export::Args),
    /// Release the lock of a plan whose holder is gone.
    Unlock(unlock::Args),
    /// Take a recovery point of every protected machine now, or keep doing so (--every).
    Replicate(replicate::Args),
    /// A two-site lab on this machine (local provider) and the whole story on it.
    Lab(lab::Args),
    /// Create and steer simulated datacenters (the `sim` provider).
    Sim(sim::Args),
    /// Look after a plan's state: restore it from its backup.
    State(state::Args),
    /// Print the JSON Schema of the plan document.
    Schema(schema::Args),
    /// Provider plugins: serve a built-in one over the plugin protocol, or test a plugin.
    Provider(provider::Args),
}

/// Everything a subcommand needs to know about the terminal.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub stderr_style: Style,
    pub stdout_color: bool,
    /// `--log-format json`: stderr carries JSON lines only, and nothing prompts.
    pub json_logs: bool,
}

pub fn main() -> ExitCode {
    // The supervisor of a script step: no command line parsing, logging or runtime of its own.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == crate::exec::supervisor::SUBCOMMAND) {
        return ExitCode::from(crate::exec::supervisor::main(&argv[2..]));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && wants_json_logs() => {
            // Even a bad command line is one JSON line when JSON logs were asked for.
            let line = serde_json::json!({"level": "ERROR", "code": "drplan::usage", "message": e.kind().to_string(), "detail": e.to_string().trim()});
            eprintln!("{line}");
            return ExitCode::from(exit::ERROR);
        }
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 1, so that `plan --detailed-exitcode` keeps 2 for "changes".
            return ExitCode::from(if e.use_stderr() { exit::ERROR } else { exit::OK });
        }
    };
    let mut ui = ui_for(cli.color);
    init_logging(cli.log_format);
    if cli.log_format == LogFormat::Json {
        // JSON lines only on stderr: no colour, no live display, no prompts.
        output::set_json_logs(true);
        ui.stderr_style.color = false;
        ui.json_logs = true;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let code = match cli.command {
        Command::Validate(args) => runtime.block_on(validate::run(args, ui)),
        Command::Plan(args) => runtime.block_on(plan::run(args, ui)),
        Command::Apply(args) => runtime.block_on(apply::run(args, ui)),
        Command::Approve(args) => approve::run(args, ui),
        Command::Resume(args) => runtime.block_on(resume::run(args, ui)),
        Command::Cancel(args) => cancel::run(args, ui),
        Command::Commit(args) => runtime.block_on(commit::commit(args, ui)),
        Command::Rollback(args) => runtime.block_on(commit::rollback(args, ui)),
        Command::Drill(args) => runtime.block_on(drill::run(*args, ui)),
        Command::History(args) => history::run(args, ui),
        Command::Report(args) => history::write_report(args, ui),
        Command::Show(args) => runtime.block_on(show::run(args, ui)),
        Command::Graph(args) => graph::run(args, ui),
        Command::Diff(args) => diff::run(args, ui),
        Command::Check(args) => runtime.block_on(check::run(args, ui)),
        Command::Import(args) => import::run(args, ui),
        Command::Export(args) => export::run(args, ui),
        Command::Unlock(args) => unlock::run(args, ui),
        Command::Replicate(args) => runtime.block_on(replicate::run(args, ui)),
        Command::Lab(args) => lab::run(args, ui),
        Command::Sim(args) => sim::run(args, ui),
        Command::State(args) => state::run(args, ui),
        Command::Schema(args) => schema::run(args, ui),
        Command::Provider(args) => runtime.block_on(provider::run(args, ui)),
    };
    ExitCode::from(output::exit_code(code))
}

/// `--log-format json` (or `=json`) anywhere on a command line that did not parse.
fn wants_json_logs() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).any(|w| w[0] == "--log-format" && w[1] == "json") || args.iter().any(|a| a == "--log-format=json")
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // People read the progress display; JSON logs are for machines and default to `info`.
    let default = match format {
        LogFormat::Text => "off",
        LogFormat::Json => "info",
    };
    let filter = EnvFilter::try_from_env("DRPLAN_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn ui_for(choice: ColorChoice) -> Ui {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let wants = |tty: bool| match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => tty && !no_color,
    };
    let stderr_tty = std::io::stderr().is_terminal();
    let width = if stderr_tty { terminal_width().unwrap_or(100) } else { 100 };
    Ui {
        stderr_style: Style { color: wants(stderr_tty), width },
        stdout_color: wants(std::io::stdout().is_terminal()),
        json_logs: false,
    }
}

fn terminal_width() -> Option<usize> {
    std::env::var("COLUMNS").ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument of every command says what it is for in `--help`.
    #[test]
    fn every_argument_has_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "drplan", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }
}
