//! `drplan apply FILE|PLAN`: execute a saved plan exactly (refusing a stale one), or plan,
//! show, confirm and execute.

use std::path::{Path, PathBuf};

use super::review::{confirm, show_plan};
use super::run::{RunArgs, announce, execute};
use super::session::{fail, open, report};
use super::{Ui, exit};
use crate::planner::file;
use crate::runs::Prepared;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `drplan plan --out FILE`, or a plan document to plan and apply.
    #[arg(value_name = "FILE|PLAN")]
    target: PathBuf,
    /// Apply a plan document without asking for confirmation (for pipelines).
    #[arg(long)]
    auto_approve: bool,
    #[command(flatten)]
    run: RunArgs,
}

pub async fn run(args: Args, ui: Ui) -> u8 {
    match apply(args, ui).await {
        Ok(code) | Err(code) => code,
    }
}

fn is_saved_plan(path: &Path) -> bool {
    std::fs::read(path).ok().and_then(|b| b.iter().copied().find(|c| !c.is_ascii_whitespace())) == Some(b'{')
}

async fn apply(args: Args, ui: Ui) -> Result<u8, u8> {
    let saved =
        if is_saved_plan(&args.target) { Some(file::load(&args.target).map_err(|e| report(ui, &e))?) } else { None };
    let document = saved.is_none();
    let path = saved.as_ref().map_or(args.target.clone(), |p| p.plan.plan_path.clone());
    let workspace = open(&path, ui)?;
    workspace.lock_timeout.set(args.run.lock_timeout.unwrap_or_default());
    let mut held = workspace.hold("drplan apply").await.map_err(|f| fail(ui, f))?;
    announce(&held);
    let prepared = match saved {
        Some(plan) => held.prepare_saved(plan, &args.target).await,
        None => held.prepare_apply(args.run.planning_parallelism()).await,
    }
    .map_err(|f| fail(ui, f))?;
    let plan = match prepared {
        Prepared::Continue(plan) => plan,
        Prepared::New(plan) if !plan.has_actions() => {
            // Nothing to change, but the machines this plan dropped are let go of (and a
            // machine another plan manages is still refused).
            held.claim().await.map_err(|f| fail(ui, f))?;
            match document {
                true => show_plan(&plan, args.run.format, ui),
                false => outln!("Nothing to do: the saved plan has no changes."),
            }
            return Ok(exit::OK);
        }
        Prepared::New(plan) => {
            if document {
                show_plan(&plan, args.run.format, ui);
                confirm(args.auto_approve, ui, "Apply this plan?")?;
            }
            plan
        }
    };
    Ok(execute(&mut held, plan, &args.run, ui, None).await)
}
