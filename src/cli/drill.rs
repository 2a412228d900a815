//! `drplan drill PLAN` and `drplan drill complete PLAN`: test failovers into isolated
//! networks that never touch production, and their guaranteed cleanup.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Subcommand;
use miette::Diagnostic;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use super::apply::{in_progress, show_plan};
use super::run::{RunArgs, execute_with_notes};
use super::session::{Session, report, report_all};
use super::{Ui, exit};
use crate::contract::Provider;
use crate::contract::ProviderOp;
use crate::planner::{ActionKind, DrillScope, build_drill, build_drill_cleanup};
use crate::spec::suggest;
use crate::spec::time_format::human_duration;
use crate::state::{HistoryEntry, OpenDrill, State, StateStore, new_id};
use crate::validate::RecoveryPointSel;

#[derive(Debug, Error, Diagnostic)]
pub enum DrillError {
    #[error("drill {id} of `{plan}` is still open (started {started})")]
    #[diagnostic(
        code(drplan::drill_in_progress),
        help("one drill per plan at a time: finish it with `drplan drill complete {path}`")
    )]
    InProgress { id: String, plan: String, started: String, path: String },

    #[error("`{name}` is not a group of `{plan}`")]
    #[diagnostic(code(drplan::unknown_group))]
    UnknownGroup {
        name: String,
        plan: String,
        #[help]
        help: String,
    },

    #[error("`{name}` is not a machine of `{plan}`")]
    #[diagnostic(code(drplan::unknown_machine))]
    UnknownMachine {
        name: String,
        plan: String,
        #[help]
        help: String,
    },

    #[error("`{plan}` has no open drill")]
    #[diagnostic(code(drplan::no_open_drill), help("start one with `drplan drill {path}`"))]
    NoneOpen { plan: String, path: String },
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<DrillCommand>,
    #[command(flatten)]
    start: StartArgs,
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// The plan document.
    #[arg(value_name = "PLAN", required = true)]
    plan: Option<PathBuf>,
    /// Drill only these groups (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Drill only these machines (repeatable).
    #[arg(long = "machine", value_name = "MACHINE")]
    machines: Vec<String>,
    /// Recovery point to test: latest, latest-app-consistent, latest-processed or an RFC 3339
    /// time (default: the plan's `target.recovery_point`).
    #[arg(long, value_parser = super::parse_point)]
    point: Option<RecoveryPointSel>,
    /// Clean up right after the test copies are up and the drill's checks ran.
    #[arg(long)]
    auto_complete: bool,
    /// A drill left open longer than this is force-cleaned by the next drplan command.
    #[arg(long, default_value = "14days", value_parser = humantime::parse_duration)]
    max_age: Duration,
    /// Observations for the report (with --auto-complete).
    #[arg(long)]
    notes: Option<String>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum DrillCommand {
    /// Remove everything the open drill created, and record it.
    Complete {
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// What was checked and found, for the drill's report.
        #[arg(long)]
        notes: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
}

pub async fn run(args: Args, ui: Ui) -> u8 {
    let result = match args.command {
        Some(DrillCommand::Complete { plan, notes, run }) => complete(&plan, notes, &run, ui).await,
        None => start(args.start, ui).await,
    };
    match result {
        Ok(code) | Err(code) => code,
    }
}

async fn start(args: StartArgs, ui: Ui) -> Result<u8, u8> {
    let path = args.plan.clone().unwrap_or_default();
    let session = Session::open(&path, ui)?;
    check_scope(&session, &args, ui)?;
    let _lock = session.lock("drplan drill")?;
    let mut state = session.store.load_or_init().map_err(|e| report(ui, &e))?;
    let provider = session.provider()?;
    expire_old_drill(&session, provider.as_ref(), &mut state).await?;
    if let Some(active) = &state.run {
        return Err(report(ui, &in_progress(&session, active)));
    }
    if let Some(open) = &state.drill {
        return Err(report(
            ui,
            &DrillError::InProgress {
                id: open.id.clone(),
                plan: session.model.name.clone(),
                started: humantime::format_rfc3339_seconds(open.started_at).to_string(),
                path: path.display().to_string(),
            },
        ));
    }
    let observed = session.observe(provider.as_ref()).await?;
    let input = observed.input(&session, &state, provider.as_ref(), args.run.parallelism.unwrap_or(10) as usize);
    let id = format!("drill-{}", &new_id()[..12]);
    let scope = DrillScope { groups: args.groups.clone(), machines: args.machines.clone() };
    let plan = build_drill(&input, &scope, args.point, &id).map_err(|problems| report_all(ui, &problems))?;
    show_plan(&plan, args.run.format, ui);
    // Recorded before anything is created, so even a crash leaves a drill to clean up.
    let copies: BTreeMap<String, String> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Provider { op: ProviderOp::CreateTestCopy { machine, site, .. } } => {
                Some((machine.clone(), site.clone()))
            }
            _ => None,
        })
        .collect();
    state.drill = Some(OpenDrill {
        id: id.clone(),
        run: String::new(),
        started_at: SystemTime::now(),
        max_age: args.max_age,
        copies,
        notes: args.notes.clone(),
    });
    session.store.save(&mut state).map_err(|e| report(ui, &e))?;
    let code = execute_with_notes(&session, provider.clone(), plan, &mut state, &args.run, args.notes.clone()).await;
    tag_last_run(&session, &mut state, &id);
    if args.auto_complete {
        // The cleanup's evidence goes beside the drill's, not over it.
        let mut run = args.run.clone();
        run.report = run.report.map(|d| d.join("cleanup"));
        // stdout carries one JSON document: the drill's report.
        run.quiet = run.format == super::Format::Json;
        let cleanup = cleanup(&session, provider, &mut state, &run, args.notes).await?;
        return Ok(if code == exit::OK { cleanup } else { code });
    }
    if code == exit::OK {
        errln!("\nThe test copies are up in the isolated networks. When the checks are done:");
        errln!("  drplan drill complete {} --notes \"what was verified\"", path.display());
    }
    Ok(code)
}

/// Mark the drill's run in history with the drill id, and remember the run in the drill.
fn tag_last_run(session: &Session, state: &mut State, id: &str) {
    let Ok(mut fresh) = session.store.load() else { return };
    let run = fresh.history.last().map(|h| h.run.clone()).or_else(|| fresh.run.as_ref().map(|r| r.id.clone()));
    if let Some(entry) = fresh.history.last_mut().filter(|h| h.kind == "drill" && h.drill.is_none()) {
        entry.drill = Some(id.to_string());
    }
    if let (Some(drill), Some(run)) = (fresh.drill.as_mut(), run) {
        drill.run = run;
    }
    if session.store.save(&mut fresh).is_ok() {
        *state = fresh;
    }
}

/// `--group` and `--machine` must name parts of the plan: a typo would otherwise drill nothing.
fn check_scope(session: &Session, args: &StartArgs, ui: Ui) -> Result<(), u8> {
    let model = &session.model;
    let plan = model.name.clone();
    for name in &args.groups {
        if !model.groups.iter().any(|g| &g.name == name) {
            let help = suggest::help_for("group", name, model.groups.iter().map(|g| g.name.as_str()));
            return Err(report(ui, &DrillError::UnknownGroup { name: name.clone(), plan, help }));
        }
    }
    for name in &args.machines {
        if !model.machines.iter().any(|m| &m.name == name) {
            let help = suggest::help_for("machine", name, model.machines.iter().map(|m| m.name.as_str()));
            return Err(report(ui, &DrillError::UnknownMachine { name: name.clone(), plan, help }));
        }
    }
    Ok(())
}

async fn complete(path: &std::path::Path, notes: Option<String>, run: &RunArgs, ui: Ui) -> Result<u8, u8> {
    let session = Session::open(path, ui)?;
    let _lock = session.lock("drplan drill complete")?;
    let mut state = session.store.load_or_init().map_err(|e| report(ui, &e))?;
    if state.drill.is_none() {
        return Err(report(
            ui,
            &DrillError::NoneOpen { plan: session.model.name.clone(), path: path.display().to_string() },
        ));
    }
    let provider = session.provider()?;
    cleanup(&session, provider, &mut state, run, notes).await
}

/// Remove the open drill's copies; on success the drill is closed and its notes recorded.
async fn cleanup(
    session: &Session,
    provider: Arc<dyn Provider>,
    state: &mut State,
    run: &RunArgs,
    notes: Option<String>,
) -> Result<u8, u8> {
    let ui = session.ui;
    let Some(open) = state.drill.clone() else { return Ok(exit::OK) };
    if let Some(active) = &state.run {
        // The drill's own run was interrupted or paused: abandon it, cleanup takes over.
        if active.kind == "drill" {
            state.run = None;
            session.store.save(state).map_err(|e| report(ui, &e))?;
        } else {
            return Err(report(ui, &in_progress(session, active)));
        }
    }
    let observed = session.observe(provider.as_ref()).await?;
    let input = observed.input(session, state, provider.as_ref(), run.parallelism.unwrap_or(10) as usize);
    let plan = build_drill_cleanup(&input, &open.id, &open.copies);
    let notes = notes.or(open.notes.clone());
    let code = execute_with_notes(session, provider, plan, state, run, notes.clone()).await;
    if code == exit::OK {
        let mut fresh = session.store.load().map_err(|e| report(ui, &e))?;
        fresh.drill = None;
        if let Some(entry) = fresh.history.iter_mut().rev().find(|h| h.drill.as_deref() == Some(open.id.as_str()))
            && let Some(n) = &notes
        {
            entry.notes = Some(n.clone());
        }
        if let Some(entry) = fresh.history.last_mut().filter(|h| h.kind == "drill cleanup") {
            entry.drill = Some(open.id.clone());
        }
        session.store.save(&mut fresh).map_err(|e| report(ui, &e))?;
        *state = fresh;
        errln!("Drill {} is complete: its test copies are gone.", open.id);
    }
    Ok(code)
}

/// A drill left open past its maximum age is cleaned up by the next command that touches the
/// plan (with the plan's lock held).
pub async fn expire_old_drill(session: &Session, provider: &dyn Provider, state: &mut State) -> Result<(), u8> {
    let ui = session.ui;
    let Some(open) = state.drill.clone() else { return Ok(()) };
    let age = SystemTime::now().duration_since(open.started_at).unwrap_or_default();
    if age <= open.max_age {
        return Ok(());
    }
    errln!(
        "Drill {} has been open for {} (more than its maximum {}): removing its test copies.",
        open.id,
        human_duration(age),
        human_duration(open.max_age)
    );
    let inventory = session.inventory(provider).await?;
    let mut copies = open.copies.clone();
    for (name, m) in &inventory.machines {
        for copy in m.test_copies.iter().filter(|c| c.drill == open.id) {
            copies.entry(name.clone()).or_insert_with(|| copy.site.clone());
        }
    }
    let mut failed = Vec::new();
    for (machine, site) in copies {
        let op = ProviderOp::RemoveTestCopy { machine: machine.clone(), site, drill: open.id.clone() };
        if let Err(e) = provider.execute(&op, CancellationToken::new()).await {
            failed.push(format!("{machine}: {e}"));
        }
    }
    let _ = provider.flush().await;
    if !failed.is_empty() {
        errln!("warning: could not remove every copy of drill {}: {}", open.id, failed.join("; "));
        return Ok(());
    }
    if state.run.as_ref().is_some_and(|r| r.kind == "drill") {
        state.run = None;
    }
    state.drill = None;
    let now = SystemTime::now();
    state.history.push(HistoryEntry {
        run: open.run.clone(),
        kind: "drill cleanup".into(),
        status: "force-cleaned".into(),
        started_at: now,
        finished_at: now,
        rto_ms: None,
        rto_objective_ms: session.model.protection.rto.as_millis() as u64,
        data_loss_ms: None,
        rpo_objective_ms: session.model.protection.rpo.as_millis() as u64,
        drill: Some(open.id.clone()),
        notes: Some(format!("force-cleaned after {}", human_duration(age))),
    });
    session.store.save(state).map_err(|e| report(ui, &e))
}
