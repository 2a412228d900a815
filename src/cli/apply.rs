//! `drplan apply FILE|PLAN`: execute a saved plan exactly (refusing a stale one), or plan,
//! show, confirm and execute.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::errors::RunError;
use super::run::{RunArgs, execute, plan_checksum};
use super::session::{Session, report, report_all};
use super::{Format, Ui, exit};
use crate::planner::fingerprint::staleness;
use crate::planner::{ActionPlan, PlanError, build, file};
use crate::report::plan::render;
use crate::report::style::Painter;
use crate::state::StateStore;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `drplan plan --out FILE`, or a plan document to plan and apply.
    #[arg(value_name = "FILE|PLAN")]
    target: PathBuf,
    /// Apply a plan document without asking for confirmation (for pipelines).
    #[arg(long)]
    auto_approve: bool,
    #[command(flatten)]
    run: RunArgs,
}

pub async fn run(args: Args, ui: Ui) -> u8 {
    match apply(args, ui).await {
        Ok(code) | Err(code) => code,
    }
}

fn is_saved_plan(path: &Path) -> bool {
    std::fs::read(path).ok().and_then(|b| b.iter().copied().find(|c| !c.is_ascii_whitespace())) == Some(b'{')
}

async fn apply(args: Args, ui: Ui) -> Result<u8, u8> {
    if is_saved_plan(&args.target) {
        return apply_saved(&args, ui).await;
    }
    let session = Session::open(&args.target, ui)?;
    let _lock = session.lock("drplan apply")?;
    let mut state = session.store.load_or_init().map_err(|e| report(ui, &e))?;
    let provider = session.provider()?;
    super::drill::expire_old_drill(&session, provider.as_ref(), &mut state).await?;
    if let Some(active) = &state.run {
        if active.document_hash != session.model.document_hash {
            return Err(report(ui, &in_progress(&session, active)));
        }
        let plan = load_run_plan(&session, &active.id)?;
        return Ok(execute(&session, provider, plan, state, &args.run).await);
    }
    let observed = session.observe(provider.as_ref()).await?;
    let input = observed.input(&session, &state, provider.as_ref(), args.run.parallelism.unwrap_or(10) as usize);
    let plan = build(&input).map_err(|problems| report_all(ui, &problems))?;
    show_plan(&plan, args.run.format, ui);
    if !plan.has_changes() {
        return Ok(exit::OK);
    }
    confirm(args.auto_approve, ui, "Apply this plan?")?;
    Ok(execute(&session, provider, plan, state, &args.run).await)
}

async fn apply_saved(args: &Args, ui: Ui) -> Result<u8, u8> {
    let plan = file::load(&args.target).map_err(|e| report(ui, &e))?;
    let session = Session::open(&plan.plan_path, ui)?;
    let _lock = session.lock("drplan apply")?;
    let mut state = session.store.load_or_init().map_err(|e| report(ui, &e))?;
    let provider = session.provider()?;
    super::drill::expire_old_drill(&session, provider.as_ref(), &mut state).await?;
    if let Some(active) = &state.run {
        if active.plan_checksum != plan_checksum(&plan) {
            return Err(report(ui, &in_progress(&session, active)));
        }
        return Ok(execute(&session, provider, plan, state, &args.run).await);
    }
    let inventory = session.inventory(provider.as_ref()).await?;
    let mut reasons = staleness(&plan, &session.model.document_hash, &state, &inventory);
    if session.model.name != plan.plan {
        reasons.insert(0, format!("the document now holds plan `{}`", session.model.name));
    }
    if !reasons.is_empty() {
        return Err(report(ui, &PlanError::Stale { path: args.target.clone(), reasons: reasons.join("; ") }));
    }
    if !plan.has_changes() {
        outln!("Nothing to do: the saved plan has no changes.");
        return Ok(exit::OK);
    }
    Ok(execute(&session, provider, plan, state, &args.run).await)
}

pub fn in_progress(session: &Session, active: &crate::state::ActiveRun) -> RunError {
    RunError::InProgress {
        plan: session.model.name.clone(),
        run: active.id.chars().take(12).collect(),
        kind: active.kind.clone(),
        state: format!("{:?}", active.status).to_lowercase(),
        path: session.path.display().to_string(),
    }
}

/// The plan an unfinished run executes, as stored when it started.
pub fn load_run_plan(session: &Session, run: &str) -> Result<ActionPlan, u8> {
    let name = format!("{run}.plan");
    let bytes = session.store.read_artifact(&name).map_err(|e| report(session.ui, &e))?.ok_or_else(|| {
        report(
            session.ui,
            &PlanError::Unreadable {
                path: session.store.dir().join("runs").join(&name),
                reason: "the run's saved plan is missing".into(),
            },
        )
    })?;
    file::from_bytes(&session.store.dir().join("runs").join(&name), &bytes).map_err(|e| report(session.ui, &e))
}

/// The plan goes to stdout for people, to stderr when stdout carries JSON.
pub fn show_plan(plan: &ActionPlan, format: Format, ui: Ui) {
    match format {
        Format::Human => out!("{}", render(plan, Painter { enabled: ui.stdout_color })),
        Format::Json => err!("{}", render(plan, Painter { enabled: ui.stderr_style.color })),
    }
}

/// Ask before changing the world, unless told not to; refuse in a pipeline without it.
pub fn confirm(auto_approve: bool, ui: Ui, question: &str) -> Result<(), u8> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(report(ui, &RunError::NeedsAutoApprove));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "\n{question} Only `yes` is accepted: ");
    let _ = err.flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() == "yes" {
        Ok(())
    } else {
        errln!("Not applied.");
        Err(exit::ERROR)
    }
}
