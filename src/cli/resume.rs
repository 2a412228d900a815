//! `drplan resume PLAN`: continue the plan's unfinished run (after an approval, a failure or
//! a crash), skipping what its journal shows as done.

use std::path::PathBuf;

use super::Ui;
use super::apply::load_run_plan;
use super::errors::RunError;
use super::run::{RunArgs, execute};
use super::session::{Session, report};
use crate::state::StateStore;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

pub async fn run(args: Args, ui: Ui) -> u8 {
    let result = async {
        let session = Session::open(&args.plan, ui)?;
        let _lock = session.lock("drplan resume")?;
        let mut state = session.store.load_or_init().map_err(|e| report(ui, &e))?;
        let provider = session.provider()?;
        super::drill::expire_old_drill(&session, provider.as_ref(), &mut state).await?;
        let Some(active) = &state.run else {
            return Err(report(ui, &RunError::NoActiveRun { plan: session.model.name.clone() }));
        };
        let plan = load_run_plan(&session, &active.id)?;
        Ok(execute(&session, provider, plan, state, &args.run).await)
    }
    .await;
    match result {
        Ok(code) | Err(code) => code,
    }
}
