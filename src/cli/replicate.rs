//! `drplan replicate PLAN [--every 30s]`: take a recovery point of every protected machine
//! now (moving only what changed), or keep doing so.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::session::{Session, report};
use super::{Format, Ui, exit};
use crate::contract::ProviderOp;
use crate::spec::time_format::{human_bytes, human_duration};
use crate::state::StateStore;

#[derive(Debug, clap::Args)]
pub struct Args {
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
    let session = match Session::open(&args.plan, ui) {
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

async fn round(session: &Session, parallelism: usize, format: Format, ui: Ui) -> u8 {
    // Points are not taken while a plan or a run holds the plan.
    let _lock = match session.store.lock("drplan replicate") {
        Ok(lock) => lock,
        Err(e) => return report(ui, &e),
    };
    let provider = match session.provider() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut state = match session.store.load_or_init() {
        Ok(s) => s,
        Err(e) => return report(ui, &e),
    };
    if let Err(code) = super::drill::expire_old_drill(session, provider.as_ref(), &mut state).await {
        return code;
    }
    let inventory = match session.inventory(provider.as_ref()).await {
        Ok(i) => i,
        Err(code) => return code,
    };
    let ops: Vec<ProviderOp> = inventory
        .machines
        .iter()
        .filter_map(|(name, m)| {
            let r = m.replication.as_ref()?;
            (m.active_site.as_deref() == Some(r.from.as_str())).then(|| ProviderOp::TakePoint {
                machine: name.clone(),
                from: r.from.clone(),
                to: r.to.clone(),
            })
        })
        .collect();
    if ops.is_empty() {
        if format == Format::Json {
            outln!("{}", serde_json::json!({ "points": [] }));
        } else {
            outln!("No machine of `{}` is protected yet: `drplan apply` protects them.", session.model.name);
        }
        return exit::OK;
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
    let mut tasks = JoinSet::new();
    for op in ops {
        let (provider, limit) = (provider.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let result = provider.execute(&op, CancellationToken::new()).await;
            (op, result)
        });
    }
    let mut failed = 0;
    let mut moved = 0;
    let mut records = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (machine, result) = match joined {
            Ok((op, result)) => (op.machine().to_string(), result.map_err(|e| e.to_string())),
            Err(e) => (String::new(), Err(format!("the replication task failed: {e}"))),
        };
        match result {
            Ok(outcome) => {
                moved += outcome.bytes_transferred.unwrap_or(0);
                if format == Format::Human {
                    outln!("✓ {}", outcome.summary);
                }
                records.push(serde_json::json!({
                    "machine": machine,
                    "point": outcome.point,
                    "bytes_transferred": outcome.bytes_transferred,
                    "summary": outcome.summary,
                }));
            }
            Err(error) => {
                failed += 1;
                if format == Format::Human {
                    outln!("✗ {machine}: {error}");
                }
                records.push(serde_json::json!({ "machine": machine, "error": error }));
            }
        }
    }
    let _ = provider.flush().await;
    records.sort_by(|a, b| a["machine"].as_str().cmp(&b["machine"].as_str()));
    match format {
        Format::Json => outln!("{}", serde_json::json!({ "points": records })),
        Format::Human => outln!("{} moved.", human_bytes(moved)),
    }
    if failed > 0 { exit::ERROR } else { exit::OK }
}
