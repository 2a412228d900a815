//! `drplan plan` of generated estates (validate, sim inventory, diff, action DAG, RTO estimate,
//! rendering) against a same-run baseline: an untyped parse of the same inputs (the plan's
//! YAML and the sim world's JSON into untyped trees), the floor of reading them.
//!
//! Run: `cargo bench --bench plan` (about three minutes: the 100,000-machine estate's sim
//! world is 260 MB). Prints a Markdown table; numbers in README come from it. The last two
//! columns are the `drplan plan` process itself (release binary), median wall and peak RSS.

use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use support::{build_plan, drplan_process, failover_estate, median, mib, time, validate};

const RUNS: usize = 5;

fn untyped_parse(plan: &str, world: &std::path::Path) {
    let yaml: serde_json::Value =
        serde_saphyr::from_str_with_options(plan, drplan::spec::load::yaml_options()).expect("generated YAML parses");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(world).unwrap()).expect("the world parses");
    assert!(yaml.is_object() && json.is_object());
}

fn main() {
    if support::measure_child() {
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "| plan | actions | baseline: untyped parse of plan + world | drplan plan (planned failover) | ratio | of which rendering | `drplan plan` process | its peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (machines, groups) in [(1_000, 10), (10_000, 100), (100_000, 1_000)] {
        let runs = if machines >= 100_000 { 3 } else { RUNS };
        let estate = failover_estate(machines, groups, 0.001);
        let (path, flipped) = (estate.path.clone(), estate.text.clone());
        let world = estate.dir.path().join("world.json");
        let baseline = time(runs, || untyped_parse(&flipped, &world));
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
        let process: Vec<(Duration, u64)> =
            (0..runs).map(|_| drplan_process(&["plan".as_ref(), path.as_os_str()])).collect();
        let wall = median(process.iter().map(|p| p.0).collect());
        let peak = process.iter().map(|p| p.1).max().unwrap_or(0);
        println!(
            "| {machines} machines / {groups} groups | {actions} | {:.0} ms | {:.0} ms | {:.2} | {:.0} ms | {:.0} ms | {} |",
            baseline.as_secs_f64() * 1e3,
            plan_time.as_secs_f64() * 1e3,
            plan_time.as_secs_f64() / baseline.as_secs_f64(),
            render_time.as_secs_f64() * 1e3,
            wall.as_secs_f64() * 1e3,
            mib(peak),
        );
    }
}
