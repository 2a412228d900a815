//! `drplan approve PLAN STEP [--by NAME]`: record an approval of a manual step of the
//! unfinished run; `drplan resume` then continues past it.

use std::path::PathBuf;
use std::time::SystemTime;

use super::apply::load_run_plan;
use super::errors::RunError;
use super::session::{Session, report};
use super::{Ui, exit};
use crate::planner::ActionKind;
use crate::spec::suggest;
use crate::state::{Approval, JournalEvent, JournalRecord, StateStore};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// The step id, e.g. `app/before/dns` or `gate/complete-failover`.
    #[arg(value_name = "STEP")]
    step: String,
    /// Who approves (default: $USER). Must be one of the step's approvers, if it names any.
    #[arg(long)]
    by: Option<String>,
}

pub fn run(args: Args, ui: Ui) -> u8 {
    match approve(args, ui) {
        Ok(code) | Err(code) => code,
    }
}

fn approve(args: Args, ui: Ui) -> Result<u8, u8> {
    let session = Session::open(&args.plan, ui)?;
    let _lock = session.lock("drplan approve")?;
    let mut state = session.store.load_or_init().map_err(|e| report(ui, &e))?;
    let Some(active) = state.run.clone() else {
        return Err(report(ui, &RunError::NoActiveRun { plan: session.model.name.clone() }));
    };
    let plan = load_run_plan(&session, &active.id)?;
    let manual: Vec<(&str, &Vec<String>)> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Manual { approvers, .. } => Some((a.id.as_str(), approvers)),
            _ => None,
        })
        .collect();
    let Some(&(_, approvers)) = manual.iter().find(|(id, _)| *id == args.step) else {
        let help = suggest::help_for("manual step", &args.step, manual.iter().map(|(id, _)| *id));
        return Err(report(ui, &RunError::UnknownStep { step: args.step.clone(), help }));
    };
    let by = args.by.clone().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    if !approvers.is_empty() && !approvers.contains(&by) {
        return Err(report(
            ui,
            &RunError::NotAnApprover { step: args.step.clone(), by, approvers: approvers.join(", ") },
        ));
    }
    let journal = session.store.read_journal(&active.id).map_err(|e| report(ui, &e))?;
    let seq = journal.iter().map(|r| r.seq).max().unwrap_or(0) + 1;
    let now = SystemTime::now();
    let record = JournalRecord {
        run: active.id.clone(),
        seq,
        at: now,
        step: args.step.clone(),
        event: JournalEvent::Approved { by: by.clone() },
    };
    session.store.append_journal(&active.id, &[record]).map_err(|e| report(ui, &e))?;
    if let Some(run) = state.run.as_mut() {
        run.approvals.insert(args.step.clone(), Approval { by: by.clone(), at: now });
        run.awaiting.retain(|s| s != &args.step);
    }
    session.store.save(&mut state).map_err(|e| report(ui, &e))?;
    outln!("Approved {} by {by}. Continue with `drplan resume {}`.", args.step, args.plan.display());
    Ok(exit::OK)
}
