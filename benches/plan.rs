//! `drplan plan` of generated estates (validate, sim inventory, diff, action DAG, RTO estimate,
//! rendering) against a same-run baseline: validate alone on the same document.
//!
//! Run: `cargo bench --bench plan` (about three minutes: the 100,000-machine estate's sim
//! world is 480 MB). Prints a Markdown table; numbers in README come from it.

use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use support::{build_plan, failover_estate, time, validate};

const RUNS: usize = 5;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("| plan | actions | baseline: validate | drplan plan (planned failover) | ratio | of which rendering |");
    println!("|---|---|---|---|---|---|");
    for (machines, groups) in [(1_000, 10), (10_000, 100), (100_000, 1_000)] {
        let runs = if machines >= 100_000 { 3 } else { RUNS };
        let estate = failover_estate(machines, groups, 0.001);
        let (path, flipped) = (estate.path.clone(), estate.text.clone());
        let baseline = time(runs, || {
            validate(&path, &flipped);
        });
        let mut actions = 0;
        let mut render_time = Duration::ZERO;
        let plan_time = time(runs, || {
            let model = validate(&path, &flipped);
            let (_, plan) = build_plan(&runtime, &path, &model, 10);
            let start = Instant::now();
            let text = drplan::report::plan::render(&plan, drplan::report::style::Painter { enabled: false });
            let json = drplan::planner::file::to_bytes(&plan).unwrap();
            render_time = start.elapsed();
            assert!(!text.is_empty() && !json.is_empty());
            actions = plan.actions.len();
        });
        println!(
            "| {machines} machines / {groups} groups | {actions} | {:.0} ms | {:.0} ms | {:.2} | {:.0} ms |",
            baseline.as_secs_f64() * 1e3,
            plan_time.as_secs_f64() * 1e3,
            plan_time.as_secs_f64() / baseline.as_secs_f64(),
            render_time.as_secs_f64() * 1e3,
        );
    }
}
