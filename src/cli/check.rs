//! `drplan check PLAN`: could every machine fail over now? For a nightly pipeline.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::ValueEnum;

use super::session::fail;
use super::{Ui, exit};
use crate::readiness::{CheckOptions, assess, human, json, junit, last_drills, markdown};
use crate::runs::{Failure, Workspace};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CheckFormat {
    Human,
    Json,
    /// A table for a job summary or a pull-request comment.
    Markdown,
    /// One test case per machine, for the pipeline's test report.
    Junit,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan document.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// A machine whose last successful drill is older than this (or that was never drilled)
    /// is not ready; `0` leaves drills out of the check.
    #[arg(long, value_name = "AGE", default_value = "30days", value_parser = humantime::parse_duration)]
    drill_max_age: Duration,
    /// `human`, `json`, `markdown` (a table for a job summary) or `junit` (one test case per machine).
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    format: CheckFormat,
}

pub async fn run(args: Args, ui: Ui) -> u8 {
    match check(&args).await {
        Ok(ready) => {
            if ready {
                exit::OK
            } else {
                exit::ERROR
            }
        }
        Err(failure) => fail(ui, failure),
    }
}

/// Read the world and the state (without the plan's lock: a check never changes anything).
async fn check(args: &Args) -> Result<bool, Failure> {
    let (workspace, _warnings) = Workspace::open(&args.plan)?;
    let provider = workspace.provider()?;
    let inventory = provider.inventory().await?;
    let state = workspace.load_state()?;
    let drills = last_drills(&state, |run| workspace.store.read_journal(run).unwrap_or_default());
    let options = CheckOptions {
        drill_max_age: (!args.drill_max_age.is_zero()).then_some(args.drill_max_age),
        now: SystemTime::now(),
    };
    let readiness = assess(&workspace.model, &inventory, &state, &drills, &options);
    let text = match args.format {
        CheckFormat::Human => human(&readiness),
        CheckFormat::Json => format!("{}\n", json(&readiness)),
        CheckFormat::Markdown => markdown(&readiness),
        CheckFormat::Junit => junit(&readiness),
    };
    out!("{text}");
    Ok(readiness.ready)
}
