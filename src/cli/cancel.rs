//! `drplan cancel PLAN`: abandon the unfinished run. What it did stays done; a data sync it
//! interrupted leaves its target marked inconsistent, and the next apply redoes it.

use std::path::PathBuf;

use super::session::{fail, open};
use super::{Ui, exit};
use crate::state::short_id;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan document whose unfinished run to abandon.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
}

pub fn run(args: Args, ui: Ui) -> u8 {
    let result = (|| {
        let workspace = open(&args.plan, ui)?;
        let mut held = workspace.lock("drplan cancel").map_err(|f| fail(ui, f))?;
        let cancelled = held.cancel().map_err(|f| fail(ui, f))?;
        outln!(
            "Cancelled the {} run {} of `{}`. `drplan plan {}` shows what remains to do.",
            cancelled.kind,
            short_id(&cancelled.id),
            workspace.model.name,
            args.plan.display()
        );
        Ok(exit::OK)
    })();
    match result {
        Ok(code) | Err(code) => code,
    }
}
