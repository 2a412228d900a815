//! The state backend's cost: the same planned failover of a generated 10,000-machine sim
//! estate, executed with the journal in files beside the plan (the baseline), in PostgreSQL,
//! and in PostgreSQL with both sites limited (`max_parallel` 200, the run's parallelism, so
//! the limit never binds: what is measured is the cost of the slots shared across runners),
//! interleaved, three runs each; the median walls, their ratios, and the journal rows per
//! second PostgreSQL took.
//!
//! Needs a server: `DRPLAN_BENCH_PG_URL` (or `DRPLAN_TEST_PG_URL`, which `.ci/run` sets).
//! Run: `cargo bench --bench state` (about eight minutes; `-- 0` for the time scale 0 row
//! alone). Prints a Markdown table for README.

use std::sync::Arc;
use std::time::Duration;

use drplan::state::{FileStore, PgStore, StateStore};

#[path = "support/mod.rs"]
mod support;

use support::{build_plan, execute, failover_estate, median, validate};

const RUNS: usize = 3;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(url_env) =
        ["DRPLAN_BENCH_PG_URL", "DRPLAN_TEST_PG_URL"].into_iter().find(|v| std::env::var_os(v).is_some())
    else {
        eprintln!("set DRPLAN_BENCH_PG_URL to a PostgreSQL server to run this benchmark");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "| time scale | journal rows | file state | PostgreSQL state | wall ratio (target ≤ 1.10) | PostgreSQL journal rows/s | PostgreSQL + site slots | ratio to file |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // `cargo bench --bench state -- 0` runs only the time scales given.
    let chosen: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let scales = if chosen.is_empty() { vec![0.002, 0.0] } else { chosen };
    for time_scale in scales {
        let mut walls = [Vec::new(), Vec::new(), Vec::new()];
        let mut rows = 0;
        for round in 0..RUNS {
            for (backend, walls) in
                [Backend::File, Backend::Postgres, Backend::PostgresSlots].into_iter().zip(&mut walls)
            {
                let (wall, n) = run(&runtime, backend, url_env, time_scale, round);
                rows = n;
                walls.push(wall);
            }
        }
        let [f, p, s] = walls.map(|w| median(w).as_secs_f64());
        println!(
            "| {time_scale} | {rows} | {f:.2} s | {p:.2} s | {:.3} | {:.0} | {s:.2} s | {:.3} |",
            p / f,
            rows as f64 / p,
            s / f,
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    File,
    Postgres,
    /// PostgreSQL, with `max_parallel` on both sites: every operation takes a shared slot.
    PostgresSlots,
}

/// One apply of a fresh estate; returns the wall time and the journal rows it wrote.
fn run(
    runtime: &tokio::runtime::Runtime,
    backend: Backend,
    url_env: &str,
    time_scale: f64,
    round: usize,
) -> (Duration, usize) {
    let estate = failover_estate(10_000, 100, time_scale);
    let path = estate.path.clone();
    let model = validate(&path, &estate.text);
    let (provider, mut plan) = build_plan(runtime, &path, &model, 200);
    let store: Arc<dyn StateStore> = match backend {
        Backend::File => Arc::new(FileStore::for_plan(&path, &model.name)),
        Backend::Postgres | Backend::PostgresSlots => Arc::new(PgStore::for_plan(&path, &model.name, url_env).unwrap()),
    };
    if let Backend::PostgresSlots = backend {
        plan.site_limits = ["dc1", "dc2"].into_iter().map(|s| (s.to_string(), 200)).collect();
    }
    // Connected (and migrated) before the clock starts, as a run's lock would have.
    store.load().unwrap();
    let run_id = format!("bench-{time_scale}-{round}-{backend:?}-{}", std::process::id());
    let wall = execute(runtime, Arc::new(plan), provider, store.clone(), &run_id, 200);
    (wall, store.read_journal(&run_id).unwrap().len())
}
