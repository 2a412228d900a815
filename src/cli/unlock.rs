//! `drplan unlock PLAN`: release a plan's lock whose holder is gone.

use std::path::PathBuf;

use super::session::{open, report};
use super::{Ui, exit};
use crate::state::UnlockOutcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan document whose lock to release.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// Also break a lock whose holder still runs (only when you are sure it is stuck).
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args, ui: Ui) -> u8 {
    let session = match open(&args.plan, ui) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match session.store.unlock(args.force) {
        Ok(UnlockOutcome::NotLocked) => {
            outln!("`{}` is not locked.", session.model.name);
            exit::OK
        }
        Ok(UnlockOutcome::Released(holder)) => {
            let who = holder.map(|h| format!(" (was held by {h})")).unwrap_or_default();
            outln!("Released the lock of `{}`{who}.", session.model.name);
            exit::OK
        }
        Ok(UnlockOutcome::StillHeld(holder)) => {
            errln!(
                "`{}` is locked by {holder}, which is still running.\nWait for it, or pass --force if you are sure it is stuck.",
                session.model.name
            );
            exit::ERROR
        }
        Err(e) => report(ui, &e),
    }
}
