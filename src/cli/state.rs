//! `drplan state restore PLAN`: put the previous state back when the current one is gone or
//! damaged.

use std::path::PathBuf;

use clap::Subcommand;

use super::session::{open, report};
use super::{Ui, exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Debug, Subcommand)]
enum StateCommand {
    /// Restore the state from its backup (`state.json.bak`, the version before the last save).
    Restore {
        /// The plan document whose state to restore.
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
    },
}

pub fn run(args: Args, ui: Ui) -> u8 {
    match args.command {
        StateCommand::Restore { plan } => {
            let workspace = match open(&plan, ui) {
                Ok(w) => w,
                Err(code) => return code,
            };
            // The lock keeps every other command out while the state is replaced.
            let _lock = match crate::state::StateStore::lock(workspace.store.as_ref(), "drplan state restore") {
                Ok(lock) => lock,
                Err(e) => return report(ui, &e),
            };
            match workspace.store.restore_backup() {
                Ok(serial) => {
                    outln!(
                        "Restored the state of `{}` from its backup (serial {serial}). `drplan plan {}` shows where things stand.",
                        workspace.model.name,
                        plan.display()
                    );
                    exit::OK
                }
                Err(e) => report(ui, &e),
            }
        }
    }
}
