//! Showing a plan before it runs, and asking to go ahead.

use std::io::{BufRead, IsTerminal, Write};

use super::session::report;
use super::{Format, Ui, exit};
use crate::planner::ActionPlan;
use crate::report::plan::render;
use crate::report::style::Painter;
use crate::runs::RunsError;

/// The plan goes to stdout for people, to stderr when stdout carries JSON.
pub fn show_plan(plan: &ActionPlan, format: Format, ui: Ui) {
    match format {
        Format::Human => out!("{}", render(plan, Painter { enabled: ui.stdout_color })),
        // With JSON logs, one event says what will run (stdout carries the report).
        Format::Json if ui.json_logs => tracing::info!(
            target: "drplan",
            run = %plan.run,
            actions = plan.actions.len(),
            from = plan.from.as_deref(),
            to = plan.to.as_deref(),
            "plan"
        ),
        Format::Json => err!("{}", render(plan, Painter { enabled: ui.stderr_style.color })),
    }
}

/// Ask before changing the world, unless told not to; refuse in a pipeline without it.
pub fn confirm(auto_approve: bool, ui: Ui, question: &str) -> Result<(), u8> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || ui.json_logs {
        return Err(report(ui, &RunsError::NeedsAutoApprove));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "\n{question} Only `yes` is accepted: ");
    let _ = err.flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() == "yes" {
        Ok(())
    } else {
        errln!("Not applied.");
        Err(exit::ERROR)
    }
}
