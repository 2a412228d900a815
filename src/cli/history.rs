//! `drplan history PLAN`: past runs and drills, newest first, with measured RTO and data loss
//! against the objectives; `drplan report PLAN RUN --out DIR` writes a past run's evidence.

use std::path::PathBuf;
use std::time::Duration;

use super::session::{fail, open, report};
use super::{Format, Ui, exit};
use crate::planner::PlanError;
use crate::runs::Workspace;
use crate::spec::time_format::human_duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan document whose past runs to list.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// At most this many entries.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// `human` or `json` (`{"history":[...]}`, newest first).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The plan document the run belongs to.
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
fn open_state(plan: &std::path::Path, ui: Ui) -> Result<(Workspace, crate::state::State), u8> {
    let workspace = open(plan, ui)?;
    let state = workspace.load_state().map_err(|f| fail(ui, f))?;
    Ok((workspace, state))
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
    let parsed = match session.run_report(&state, &args.run) {
        Ok(r) => r,
        Err(failure) => return fail(ui, failure),
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
