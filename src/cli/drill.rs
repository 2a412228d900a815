//! `drplan drill PLAN` and `drplan drill complete PLAN`: test failovers into isolated
//! networks that never touch production, and their guaranteed cleanup.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::review::show_plan;
use super::run::{RunArgs, announce, close_drill, complete_due_drill, execute};
use super::session::{fail, open};
use super::{Ui, exit};
use crate::planner::DrillScope;
use crate::runs::DrillRequest;
use crate::validate::RecoveryPointSel;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<DrillCommand>,
    #[command(flatten)]
    start: StartArgs,
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// The plan document to drill.
    #[arg(value_name = "PLAN", required = true)]
    plan: Option<PathBuf>,
    /// Drill only these groups (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Drill only these machines (repeatable).
    #[arg(long = "machine", value_name = "MACHINE")]
    machines: Vec<String>,
    /// Recovery point to test: latest, latest-app-consistent, latest-processed or an RFC 3339
    /// time (default: the plan's `target.recovery_point`).
    #[arg(long, value_parser = super::parse_point)]
    point: Option<RecoveryPointSel>,
    /// Clean up right after the test copies are up and the drill's checks ran.
    #[arg(long)]
    auto_complete: bool,
    /// A drill left open longer than this is force-cleaned by the next drplan command.
    #[arg(long, default_value = "14days", value_parser = humantime::parse_duration)]
    max_age: Duration,
    /// Observations for the report (with --auto-complete).
    #[arg(long)]
    notes: Option<String>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum DrillCommand {
    /// Remove everything the open drill created, and record it.
    Complete {
        /// The plan document whose open drill to complete.
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// What was checked and found, for the drill's report.
        #[arg(long)]
        notes: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
}

pub async fn run(args: Args, ui: Ui) -> u8 {
    let result = match args.command {
        Some(DrillCommand::Complete { plan, notes, run }) => complete(&plan, notes, &run, ui).await,
        None => start(args.start, ui).await,
    };
    match result {
        Ok(code) | Err(code) => code,
    }
}

async fn start(args: StartArgs, ui: Ui) -> Result<u8, u8> {
    let path = args.plan.clone().unwrap_or_default();
    let workspace = open(&path, ui)?;
    workspace.lock_timeout.set(args.run.lock_timeout.unwrap_or_default());
    let mut held = workspace.hold("drplan drill").await.map_err(|f| fail(ui, f))?;
    announce(&held);
    let request = DrillRequest {
        scope: DrillScope { groups: args.groups.clone(), machines: args.machines.clone() },
        point: args.point,
        max_age: args.max_age,
        notes: args.notes.clone(),
        parallelism: args.run.planning_parallelism(),
        auto_complete: args.auto_complete,
    };
    let plan = held.open_drill(&request).await.map_err(|f| fail(ui, f))?;
    show_plan(&plan, args.run.format, ui);
    let code = execute(&mut held, plan, &args.run, ui, args.notes.clone()).await;
    if held.drill_cleanup_due() {
        return complete_due_drill(&mut held, &args.run, code, ui).await;
    }
    if code == exit::AWAITING_APPROVAL && args.auto_complete {
        errln!("\nThe drill waits for an approval; it stays open. Once approved, `drplan resume` finishes it and");
        errln!("removes its test copies (--auto-complete); `drplan drill complete` removes them now instead.");
    } else if code == exit::OK {
        errln!("\nThe test copies are up in the isolated networks. When the checks are done:");
        errln!("  drplan drill complete {} --notes \"what was verified\"", path.display());
    }
    Ok(code)
}

async fn complete(path: &std::path::Path, notes: Option<String>, run: &RunArgs, ui: Ui) -> Result<u8, u8> {
    let workspace = open(path, ui)?;
    workspace.lock_timeout.set(run.lock_timeout.unwrap_or_default());
    let mut held = workspace.hold("drplan drill complete").await.map_err(|f| fail(ui, f))?;
    announce(&held);
    close_drill(&mut held, run, notes, ui).await
}
