//! `drplan commit PLAN` and `drplan rollback PLAN [--point SEL]`: finish or undo failovers
//! that await commit.

use std::path::PathBuf;

use super::review::{confirm, show_plan};
use super::run::{RunArgs, announce, execute};
use super::session::{fail, open};
use super::{Ui, exit};
use crate::validate::RecoveryPointSel;

#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// The plan document whose failovers to commit.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long)]
    auto_approve: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The plan document whose uncommitted failovers to undo or move.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// Instead of undoing the failover, move it to this recovery point: `latest`,
    /// `latest-app-consistent`, `latest-processed` or an RFC 3339 time.
    #[arg(long, value_parser = super::parse_point)]
    point: Option<RecoveryPointSel>,
    /// Do not ask for confirmation.
    #[arg(long)]
    auto_approve: bool,
    #[command(flatten)]
    run: RunArgs,
}

enum What {
    Commit,
    Rollback(Option<RecoveryPointSel>),
}

pub async fn commit(args: CommitArgs, ui: Ui) -> u8 {
    lifecycle(&args.plan, args.auto_approve, &args.run, What::Commit, ui).await
}

pub async fn rollback(args: RollbackArgs, ui: Ui) -> u8 {
    lifecycle(&args.plan, args.auto_approve, &args.run, What::Rollback(args.point), ui).await
}

async fn lifecycle(path: &std::path::Path, auto_approve: bool, run: &RunArgs, what: What, ui: Ui) -> u8 {
    let result = async {
        let workspace = open(path, ui)?;
        workspace.lock_timeout.set(run.lock_timeout.unwrap_or_default());
        let command = match what {
            What::Commit => "drplan commit",
            What::Rollback(_) => "drplan rollback",
        };
        let mut held = workspace.hold(command).await.map_err(|f| fail(ui, f))?;
        announce(&held);
        let parallelism = run.planning_parallelism();
        let plan = match what {
            What::Commit => held.prepare_commit(parallelism).await,
            What::Rollback(point) => held.prepare_rollback(point, parallelism).await,
        }
        .map_err(|f| fail(ui, f))?;
        if !plan.has_actions() {
            outln!("No failover awaits commit.");
            return Ok(exit::OK);
        }
        show_plan(&plan, run.format, ui);
        confirm(auto_approve, ui, "Go ahead?")?;
        Ok(execute(&mut held, plan, run, ui, None).await)
    }
    .await;
    match result {
        Ok(code) | Err(code) => code,
    }
}
