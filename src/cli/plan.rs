//! `drplan plan PLAN`: what applying the plan would do, optionally saved for `apply`.

use std::path::PathBuf;

use clap::ValueEnum;

use super::run::announce;
use super::session::{fail, open};
use super::{Ui, exit};
use crate::report::plan::{markdown, render};
use crate::report::style::Painter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlanFormat {
    Human,
    /// The saved plan's body, documented in README.
    Json,
    /// For a pull-request comment or a job summary.
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan document.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// Save the plan for `drplan apply FILE`.
    #[arg(long, short = 'o', value_name = "FILE", alias = "out-file")]
    out: Option<PathBuf>,
    /// `human`, `json` (the saved plan's body, documented in README) or `markdown` (for a pull-request comment).
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    format: PlanFormat,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Provider operations at once, for the RTO estimate (and the saved plan).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    parallelism: u32,
}

pub async fn run(args: Args, ui: Ui) -> u8 {
    match plan(args, ui).await {
        Ok(code) | Err(code) => code,
    }
}

async fn plan(args: Args, ui: Ui) -> Result<u8, u8> {
    let workspace = open(&args.plan, ui)?;
    let held = workspace.hold("drplan plan").await.map_err(|f| fail(ui, f))?;
    announce(&held);
    if args.out.is_some() {
        // A saved plan would cross the unfinished run: `apply` continues that run instead.
        held.refuse_unfinished().map_err(|f| fail(ui, f))?;
    }
    let plan = held.plan(args.parallelism as usize).await.map_err(|f| fail(ui, f))?;
    match args.format {
        PlanFormat::Human => out!("{}", render(&plan, Painter { enabled: ui.stdout_color })),
        PlanFormat::Json => super::output::json(&plan),
        PlanFormat::Markdown => out!("{}", markdown(&plan)),
    }
    if let Some(out) = &args.out {
        held.save_plan(&plan, out).map_err(|f| fail(ui, f))?;
        if args.format == PlanFormat::Human {
            outln!("\nSaved the plan to {}. Apply exactly this with `drplan apply {}`.", out.display(), out.display());
        }
    }
    let changes = plan.has_changes();
    // The process ends next: freeing 600,000 actions one by one would take half a second.
    std::mem::forget(plan);
    Ok(if args.detailed_exitcode && changes { exit::CHANGES } else { exit::OK })
}
