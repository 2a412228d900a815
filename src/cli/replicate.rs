//! `drplan replicate PLAN [--every 30s]`: take a recovery point of every protected machine
//! now (moving only what changed), or keep doing so.

use std::path::PathBuf;
use std::time::Duration;

use super::run::announce;
use super::session::{fail, open};
use super::{Format, Ui, exit};
use crate::runs::Workspace;
use crate::spec::time_format::{human_bytes, human_duration};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan document whose protected machines to replicate.
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
    /// Keep taking points at this interval until interrupted (continuous protection).
    #[arg(long, value_parser = super::duration_at_least(Duration::from_millis(100)))]
    every: Option<Duration>,
    /// Machines replicated at once.
    #[arg(long, default_value_t = 4)]
    parallelism: usize,
    /// `human` or `json` (`{"points":[{"machine","point","bytes_transferred","summary"}]}` per round).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub async fn run(args: Args, ui: Ui) -> u8 {
    let session = match open(&args.plan, ui) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(every) = args.every
        && every > session.model.protection.rpo
    {
        errln!(
            "warning: points every {} cannot meet the plan's RPO of {}",
            human_duration(every),
            human_duration(session.model.protection.rpo)
        );
    }
    // Listen from the start: a Ctrl-C during a round is kept and ends the loop after it.
    let mut interrupt = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: cannot listen for Ctrl-C: {e}");
            return exit::ERROR;
        }
    };
    loop {
        let code = round(&session, args.parallelism, args.format, ui).await;
        let Some(every) = args.every else { return code };
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = interrupt.recv() => return exit::OK,
        }
    }
}

async fn round(session: &Workspace, parallelism: usize, format: Format, ui: Ui) -> u8 {
    // Points are not taken while a plan or a run holds the plan.
    let held = match session.hold("drplan replicate").await {
        Ok(held) => held,
        Err(failure) => return fail(ui, failure),
    };
    announce(&held);
    let taken = match held.replicate(parallelism).await {
        Ok(taken) => taken,
        Err(failure) => return fail(ui, failure),
    };
    if format == Format::Json {
        outln!("{}", serde_json::json!({ "points": taken }));
    } else if taken.is_empty() {
        outln!("No machine of `{}` is protected yet: `drplan apply` protects them.", session.model.name);
    } else {
        for point in &taken {
            match (&point.summary, &point.error) {
                (Some(summary), _) => outln!("✓ {summary}"),
                (None, error) => outln!("✗ {}: {}", point.machine, error.as_deref().unwrap_or_default()),
            }
        }
        outln!("{} moved.", human_bytes(taken.iter().filter_map(|p| p.bytes_transferred).sum()));
    }
    if taken.iter().any(|p| p.error.is_some()) { exit::ERROR } else { exit::OK }
}
