//! `drplan history PLAN`: past runs and drills, newest first, with measured RTO and data loss
//! against the objectives; `drplan report PLAN RUN --out DIR` writes a past run's evidence.

use std::path::PathBuf;
use std::time::Duration;

use super::errors::RunError;
use super::session::{Session, report};
use super::{Format, Ui, exit};
use crate::exec::run_report::RunReport;
use crate::planner::PlanError;
use crate::spec::suggest;
use crate::spec::time_format::human_duration;
use crate::state::StateStore;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// At most this many entries.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// A run id (or a prefix of one) from `drplan history`.
    #[arg(value_name = "RUN")]
    run: String,
    /// Directory for report.json, report.md, junit.xml and timeline.svg.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn verdict(value: Option<u64>, objective: u64) -> String {
    match value {
        Some(v) if v <= objective => format!(
            "{} (≤ {})",
            human_duration(Duration::from_millis(v)),
            human_duration(Duration::from_millis(objective))
        ),
        Some(v) => format!(
            "{} (> {}!)",
            human_duration(Duration::from_millis(v)),
            human_duration(Duration::from_millis(objective))
        ),
        None => "-".into(),
    }
}

/// The plan and its state, read without taking the lock (state files are replaced atomically).
fn open_state(plan: &std::path::Path, ui: Ui) -> Result<(Session, crate::state::State), u8> {
    let session = Session::open(plan, ui)?;
    let state = session.store.load().map_err(|e| report(ui, &e))?;
    Ok((session, state))
}

pub fn run(args: Args, ui: Ui) -> u8 {
    let (session, state) = match open_state(&args.plan, ui) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let entries: Vec<_> = state.history.iter().rev().take(args.limit).collect();
    match args.format {
        Format::Json => super::output::json(&serde_json::json!({ "history": entries })),
        Format::Human => {
            if entries.is_empty() {
                outln!("No runs of `{}` yet.", session.model.name);
            }
            for e in entries {
                let took = e.finished_at.duration_since(e.started_at).unwrap_or_default();
                let drill = e.drill.as_ref().map(|d| format!(" [{d}]")).unwrap_or_default();
                outln!(
                    "{}  {:<18} {:<22} took {:<8} RTO {:<22} data loss {}{drill}",
                    humantime::format_rfc3339_seconds(e.started_at),
                    e.kind,
                    e.status,
                    human_duration(took),
                    verdict(e.rto_ms, e.rto_objective_ms),
                    verdict(e.data_loss_ms, e.rpo_objective_ms),
                );
                outln!("    run {}", e.run);
                if let Some(n) = &e.notes {
                    outln!("    notes: {n}");
                }
            }
            if let Some(d) = &state.drill {
                outln!(
                    "\nOpen drill {} since {}: `drplan drill complete` removes its copies.",
                    d.id,
                    humantime::format_rfc3339_seconds(d.started_at)
                );
            }
        }
    }
    exit::OK
}

pub fn write_report(args: ReportArgs, ui: Ui) -> u8 {
    let (session, state) = match open_state(&args.plan, ui) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let known: Vec<&str> =
        state.history.iter().map(|h| h.run.as_str()).chain(state.run.as_ref().map(|r| r.id.as_str())).collect();
    let Some(run) = known.iter().find(|r| r.starts_with(&args.run)).map(|r| r.to_string()) else {
        let help = suggest::help_for("run", &args.run, known.iter().copied());
        return report(ui, &RunError::UnknownRun { run: args.run.clone(), plan: session.model.name.clone(), help });
    };
    let bytes = match session.store.read_artifact(&format!("{run}.report.json")) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return report(
                ui,
                &PlanError::Unreadable {
                    path: format!("{run}.report.json").into(),
                    reason: "the run's report was not kept".into(),
                },
            );
        }
        Err(e) => return report(ui, &e),
    };
    let parsed: RunReport = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return report(
                ui,
                &PlanError::CorruptFile { path: format!("{run}.report.json").into(), reason: e.to_string() },
            );
        }
    };
    match crate::report::evidence::write_all(&parsed, &args.out) {
        Ok(files) => {
            for f in files {
                outln!("{}", f.display());
            }
            exit::OK
        }
        Err(e) => report(ui, &PlanError::Unwritable { path: args.out.clone(), reason: e.to_string() }),
    }
}
