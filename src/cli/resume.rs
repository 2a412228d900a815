//! `drplan resume PLAN`: continue the plan's unfinished run (after an approval, a failure or
//! a crash), skipping what its journal shows as done.

use std::path::PathBuf;

use super::Ui;
use super::run::{RunArgs, announce, complete_due_drill, execute};
use super::session::{fail, open};
use crate::runs::RunsError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan document whose unfinished run to continue.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// Run this script step again although its earlier attempt's outcome is unknown (its
    /// supervisor vanished, e.g. with the host). Repeatable. Without it such a step waits for
    /// `drplan approve` (counting it as done) and is never run twice silently.
    #[arg(long, value_name = "STEP")]
    rerun: Vec<String>,
    #[command(flatten)]
    run: RunArgs,
}

pub async fn run(mut args: Args, ui: Ui) -> u8 {
    args.run.rerun = std::mem::take(&mut args.rerun);
    let result = async {
        let workspace = open(&args.plan, ui)?;
        workspace.lock_timeout.set(args.run.lock_timeout.unwrap_or_default());
        let mut held = workspace.hold("drplan resume").await.map_err(|f| fail(ui, f))?;
        announce(&held);
        let Some(active) = &held.state.run else {
            return Err(fail(ui, RunsError::NoActiveRun { plan: workspace.model.name.clone() }.into()));
        };
        let plan = held.run_plan(&active.id.clone()).map_err(|f| fail(ui, f))?;
        let code = execute(&mut held, plan, &args.run, ui, None).await;
        if held.drill_cleanup_due() {
            return complete_due_drill(&mut held, &args.run, code, ui).await;
        }
        Ok(code)
    }
    .await;
    match result {
        Ok(code) | Err(code) => code,
    }
}
