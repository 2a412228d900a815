//! `drplan show FILE`: render a saved plan and say whether it still matches the world.

use std::path::PathBuf;

use super::session::{fail, open, report};
use super::{Format, Ui, exit};
use crate::planner::{ActionPlan, PlanError, file};
use crate::report::plan::render;
use crate::report::style::Painter;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `drplan plan PLAN --out FILE`.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// `human` or `json` (the plan's JSON plus `stale`, the reasons it no longer applies).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub async fn run(args: Args, ui: Ui) -> u8 {
    let saved = match file::load(&args.file) {
        Ok(saved) => saved,
        Err(e) => return report(ui, &e),
    };
    let plan = &saved.plan;
    let (stale, authentic) = match open(&plan.plan_path, ui) {
        Ok(workspace) => match workspace.staleness(plan).await {
            Ok(reasons) => (reasons, workspace.authenticate(&saved, &args.file)),
            Err(failure) => return fail(ui, failure),
        },
        Err(code) => return code,
    };
    match args.format {
        Format::Human => {
            out!("{}", render(plan, Painter { enabled: ui.stdout_color }));
            if authentic.is_err() {
                // Said below, as the error.
            } else if stale.is_empty() {
                outln!("\nThe saved plan is current: `drplan apply {}` executes exactly this.", args.file.display());
            } else {
                report(ui, &PlanError::Stale { path: args.file.clone(), reasons: stale.join("; ") });
            }
        }
        Format::Json => {
            // The plan's JSON as `plan --format json` prints it, plus why it is stale; streamed
            // (a 10,000-machine plan built as a JSON tree took 290 MiB).
            #[derive(serde::Serialize)]
            struct Shown<'a> {
                #[serde(flatten)]
                plan: &'a ActionPlan,
                stale: &'a [String],
            }
            super::output::json(&Shown { plan, stale: &stale });
        }
    }
    // As `apply` would: a stale plan, or one not written for this state, is refused.
    if let Err(failure) = authentic {
        return fail(ui, failure);
    }
    if stale.is_empty() { exit::OK } else { exit::ERROR }
}
