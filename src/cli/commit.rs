//! `drplan commit PLAN` and `drplan rollback PLAN [--point SEL]`: finish or undo failovers
//! that await commit.

use std::path::PathBuf;

use super::apply::{confirm, in_progress, show_plan};
use super::run::{RunArgs, execute};
use super::session::{Session, report, report_all};
use super::{Ui, exit};
use crate::planner::{build_commit, build_rollback};
use crate::state::StateStore;
use crate::validate::RecoveryPointSel;

#[derive(Debug, clap::Args)]
pub struct CommitArgs {
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
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// Instead of undoing the failover, move it to this recovery point: `latest`,
    /// `latest-app-consistent`, `latest-processed` or an RFC 3339 time.
    #[arg(long, value_parser = super::parse_point)]
    point: Option<RecoveryPointSel>,
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
        let session = Session::open(path, ui)?;
        let _lock = session.lock("drplan commit")?;
        let mut state = session.store.load_or_init().map_err(|e| report(ui, &e))?;
        let provider = session.provider()?;
        super::drill::expire_old_drill(&session, provider.as_ref(), &mut state).await?;
        if let Some(active) = &state.run {
            return Err(report(ui, &in_progress(&session, active)));
        }
        let observed = session.observe(provider.as_ref()).await?;
        let input = observed.input(&session, &state, provider.as_ref(), run.parallelism.unwrap_or(10) as usize);
        let built = match what {
            What::Commit => build_commit(&input),
            What::Rollback(point) => build_rollback(&input, point),
        };
        let plan = built.map_err(|problems| report_all(ui, &problems))?;
        if !plan.has_changes() {
            outln!("No failover awaits commit.");
            return Ok(exit::OK);
        }
        show_plan(&plan, run.format, ui);
        confirm(auto_approve, ui, "Go ahead?")?;
        Ok(execute(&session, provider, plan, state, run).await)
    }
    .await;
    match result {
        Ok(code) | Err(code) => code,
    }
}
