//! The state backend's cost: the same planned failover of a generated 10,000-machine sim
//! estate, executed with the journal in files beside the plan (the baseline) and in
//! PostgreSQL, interleaved, three runs each; the median walls, their ratio, and the journal
//! rows per second PostgreSQL took.
//!
//! Needs a server: `DRPLAN_BENCH_PG_URL` (or `DRPLAN_TEST_PG_URL`, which `.ci/run` sets).
//! Run: `cargo bench --bench state` (about two minutes). Prints a Markdown table for README.

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
        "| estate | time scale | journal rows | file state | PostgreSQL state | wall ratio (target ≤ 1.10) | PostgreSQL journal rows/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for time_scale in [0.002, 0.0] {
        let (mut file, mut pg) = (Vec::new(), Vec::new());
        let mut rows = 0;
        for round in 0..RUNS {
            for postgres in [false, true] {
                let (wall, n) = run(&runtime, postgres, url_env, time_scale, round);
                rows = n;
                if postgres { pg.push(wall) } else { file.push(wall) }
            }
        }
        let (f, p) = (median(file), median(pg));
        println!(
            "| 10,000 machines / 100 groups, parallelism 200 | {time_scale} | {rows} | {:.2} s | {:.2} s | {:.3} | {:.0} |",
            f.as_secs_f64(),
            p.as_secs_f64(),
            p.as_secs_f64() / f.as_secs_f64(),
            rows as f64 / p.as_secs_f64(),
        );
    }
}

/// One apply of a fresh estate; returns the wall time and the journal rows it wrote.
fn run(
    runtime: &tokio::runtime::Runtime,
    postgres: bool,
    url_env: &str,
    time_scale: f64,
    round: usize,
) -> (Duration, usize) {
    let estate = failover_estate(10_000, 100, time_scale);
    let path = estate.path.clone();
    let model = validate(&path, &estate.text);
    let (provider, plan) = build_plan(runtime, &path, &model, 200);
    let store: Arc<dyn StateStore> = if postgres {
        Arc::new(PgStore::for_plan(&path, &model.name, url_env).unwrap())
    } else {
        Arc::new(FileStore::for_plan(&path, &model.name))
    };
    // Connected (and migrated) before the clock starts, as a run's lock would have.
    store.load().unwrap();
    let run_id = format!("bench-{time_scale}-{round}-{}", std::process::id());
    let wall = execute(runtime, Arc::new(plan), provider, store.clone(), &run_id, 200);
    (wall, store.read_journal(&run_id).unwrap().len())
}
