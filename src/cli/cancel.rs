//! `drplan cancel PLAN`: abandon the unfinished run. What it did stays done; a data sync it
//! interrupted leaves its target marked inconsistent, and the next apply redoes it.

use std::path::PathBuf;
use std::time::SystemTime;

use super::apply::load_run_plan;
use super::errors::RunError;
use super::session::{Session, report};
use super::{Ui, exit};
use crate::exec::run_report;
use crate::state::StateStore;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
}

pub fn run(args: Args, ui: Ui) -> u8 {
    let result = (|| {
        let session = Session::open(&args.plan, ui)?;
        let _lock = session.lock("drplan cancel")?;
        let mut state = session.store.load_or_init().map_err(|e| report(ui, &e))?;
        let Some(active) = state.run.take() else {
            return Err(report(ui, &RunError::NoActiveRun { plan: session.model.name.clone() }));
        };
        if let Ok(plan) = load_run_plan(&session, &active.id) {
            let journal = session.store.read_journal(&active.id).unwrap_or_default();
            let report = run_report::build(&active.id, &plan, &journal, "cancelled", SystemTime::now());
            let bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
            session
                .store
                .write_artifact(&format!("{}.report.json", active.id), &bytes)
                .map_err(|e| report_err(ui, e))?;
        }
        session.store.save(&mut state).map_err(|e| report(ui, &e))?;
        outln!(
            "Cancelled the {} run {} of `{}`. `drplan plan {}` shows what remains to do.",
            active.kind,
            active.id.chars().take(12).collect::<String>(),
            session.model.name,
            args.plan.display()
        );
        Ok(exit::OK)
    })();
    match result {
        Ok(code) | Err(code) => code,
    }
}

fn report_err(ui: Ui, e: crate::state::StateError) -> u8 {
    report(ui, &e)
}
