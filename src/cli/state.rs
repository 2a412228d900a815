//! `drplan state restore PLAN`: put the previous state back when the current one is gone or
//! damaged. `drplan state migrate PLAN --to file|postgres`: move the state to another backend.

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
    /// Copy the plan's state (state, journals, run artifacts, plan key) to another backend and
    /// verify it; the source stays. Then switch the plan's `state:` block.
    Migrate {
        /// The plan document whose state to move (its `state:` block says where it is now).
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// Where to: `file` (`.drplan/` beside the plan) or `postgres`.
        #[arg(long, value_parser = ["file", "postgres"])]
        to: String,
        /// With `--to postgres`: the variable holding the connection string.
        #[arg(long, default_value = "DRPLAN_PG_URL")]
        url_env: String,
    },
}

pub fn run(args: Args, ui: Ui) -> u8 {
    match args.command {
        StateCommand::Migrate { plan, to, url_env } => migrate(&plan, &to, &url_env, ui),
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

fn migrate(plan: &std::path::Path, to: &str, url_env: &str, ui: Ui) -> u8 {
    use crate::state::{FileStore, PgStore, StateStore};
    let workspace = match open(plan, ui) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let target: Box<dyn StateStore> = match to {
        "postgres" => match PgStore::for_plan(plan, &workspace.model.name, url_env) {
            Ok(store) => Box::new(store),
            Err(e) => return report(ui, &e),
        },
        _ => Box::new(FileStore::for_plan(plan, &workspace.model.name)),
    };
    if target.identity() == workspace.store.identity() {
        outln!("The state of `{}` already lives at {}.", workspace.model.name, target.location());
        return exit::OK;
    }
    // Both locked: nothing changes either side while the state moves.
    let _source = match workspace.store.lock("drplan state migrate") {
        Ok(lock) => lock,
        Err(e) => return report(ui, &e),
    };
    let _target = match target.lock("drplan state migrate") {
        Ok(lock) => lock,
        Err(e) => return report(ui, &e),
    };
    match crate::state::migrate::migrate(workspace.store.as_ref(), target.as_ref()) {
        Ok(m) => {
            outln!(
                "Copied the state of `{}` to {} and read it back equal: serial {}, {} history entries, {} journals ({} records), {} run artifacts, the plan key.",
                workspace.model.name,
                target.location(),
                m.serial,
                m.history,
                m.journals,
                m.journal_records,
                m.artifacts
            );
            let block = if to == "postgres" {
                format!("state: {{ backend: postgres, url_env: {url_env} }}")
            } else {
                "state: { backend: file }".to_string()
            };
            outln!(
                "Next: set `{block}` in {}; the old state at {} stays until you remove it.",
                plan.display(),
                workspace.store.location()
            );
            exit::OK
        }
        Err(e) => report(ui, &e),
    }
}
