//! The command line: parse arguments, run one subcommand, map the outcome to an exit code.

mod schema;
mod validate;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::report::diagnostics::Style;

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
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check plan files: schema and semantic rules, every problem with its line and column.
    Validate(validate::Args),
    /// Print the JSON Schema of the plan document.
    Schema(schema::Args),
}

/// Everything a subcommand needs to know about the terminal.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    pub stderr_style: Style,
    pub stdout_color: bool,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 1, so that `plan --detailed-exitcode` keeps 2 for "changes".
            return ExitCode::from(if e.use_stderr() { exit::ERROR } else { exit::OK });
        }
    };
    let ui = ui_for(cli.color);
    let code = match cli.command {
        Command::Validate(args) => validate::run(args, ui),
        Command::Schema(args) => schema::run(args, ui),
    };
    ExitCode::from(code)
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
    Ui { stderr_style: Style { color: wants(stderr_tty), width }, stdout_color: wants(std::io::stdout().is_terminal()) }
}

fn terminal_width() -> Option<usize> {
    std::env::var("COLUMNS").ok()?.parse().ok()
}
