//! `drplan drill PLAN` and `drplan drill complete PLAN`: test failovers into isolated
//! networks that never touch production, and their guaranteed cleanup.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::review::show_plan;
use super::run::{RunArgs, announce, execute};
use super::session::{fail, open};
use super::{Format, Ui, exit};
use crate::planner::DrillScope;
use crate::runs::{DrillRequest, Held};
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
    let mut held = workspace.hold("drplan drill").await.map_err(|f| fail(ui, f))?;
    announce(&held);
    let request = DrillRequest {
        scope: DrillScope { groups: args.groups.clone(), machines: args.machines.clone() },
        point: args.point,
        max_age: args.max_age,
        notes: args.notes.clone(),
        parallelism: args.run.planning_parallelism(),
    };
    let plan = held.open_drill(&request).await.map_err(|f| fail(ui, f))?;
    show_plan(&plan, args.run.format, ui);
    let code = execute(&mut held, plan, &args.run, ui, args.notes.clone()).await;
    if args.auto_complete {
        // The cleanup's evidence goes beside the drill's, not over it.
        let mut run = args.run.clone();
        run.report = run.report.map(|d| d.join("cleanup"));
        // stdout carries one JSON document: the drill's report.
        run.quiet = run.format == Format::Json;
        let cleanup = cleanup(&mut held, &run, args.notes, ui).await?;
        return Ok(if code == exit::OK { cleanup } else { code });
    }
    if code == exit::OK {
        errln!("\nThe test copies are up in the isolated networks. When the checks are done:");
        errln!("  drplan drill complete {} --notes \"what was verified\"", path.display());
    }
    Ok(code)
}

async fn complete(path: &std::path::Path, notes: Option<String>, run: &RunArgs, ui: Ui) -> Result<u8, u8> {
    let workspace = open(path, ui)?;
    let mut held = workspace.hold("drplan drill complete").await.map_err(|f| fail(ui, f))?;
    announce(&held);
    cleanup(&mut held, run, notes, ui).await
}

/// Remove the open drill's copies; on success the drill is closed and its notes recorded.
async fn cleanup(held: &mut Held<'_>, run: &RunArgs, notes: Option<String>, ui: Ui) -> Result<u8, u8> {
    let open = held.state.drill.clone();
    // Refused when no drill is open.
    let plan = held.close_drill(run.planning_parallelism()).await.map_err(|f| fail(ui, f))?;
    let (id, drill_notes) = open.map(|d| (d.id, d.notes)).unwrap_or_default();
    let code = execute(held, plan, run, ui, notes.or(drill_notes)).await;
    if code == exit::OK {
        errln!("Drill {id} is complete: its test copies are gone.");
    }
    Ok(code)
}
