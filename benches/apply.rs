//! Executor overhead: apply a planned failover of a generated estate on the sim provider and
//! compare the wall time with the lower bound the provider's latencies and the parallelism
//! limit allow, computed for the same plan in the same run:
//! max(longest dependency chain, total work / parallelism), and the zero-overhead greedy
//! schedule of the same DAG.
//!
//! Then the memory of the `drplan apply` process itself (release binary, no simulated
//! latency, so the run is all engine): its peak RSS.
//!
//! Run: `cargo bench --bench apply` (about a minute). Prints Markdown tables for README.

use std::sync::Arc;
use std::time::Duration;

use drplan::planner::schedule::{lower_bound, simulate_with};
use drplan::planner::{ActionKind, Dag};
use drplan::state::{FileStore, StateStore};

#[path = "support/mod.rs"]
mod support;

use support::{build_plan, drplan_process, execute, failover_estate, mib, validate};

fn main() {
    if support::measure_child() {
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "| estate | actions | parallelism | lower bound | greedy schedule | wall time | wall / lower bound | wall / greedy |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (machines, groups, parallelism, time_scale) in [(1_000, 10, 50, 0.002), (10_000, 100, 200, 0.002)] {
        let estate = failover_estate(machines, groups, time_scale);
        let path = estate.path.clone();
        let model = validate(&path, &estate.text);
        let (provider, plan) = build_plan(&runtime, &path, &model, parallelism);
        let plan = Arc::new(plan);
        let dag = Arc::new(Dag::new(&plan).unwrap());
        // The real sleeps: the provider's latency for each operation, scaled.
        let real: Vec<Duration> = plan
            .actions
            .iter()
            .map(|a| match &a.kind {
                ActionKind::Provider { op } => provider.estimate(op).mul_f64(time_scale),
                _ => Duration::ZERO,
            })
            .collect();
        let bound = lower_bound(&plan, &dag, |i| real[i]);
        let greedy = simulate_with(&plan, &dag, |i| real[i]).makespan;

        let store: Arc<dyn StateStore> = Arc::new(FileStore::for_plan(&path, &model.name));
        let wall = execute(&runtime, plan.clone(), provider.clone(), store, "bench", parallelism);
        println!(
            "| {machines} machines / {groups} groups | {} | {parallelism} | {:.2} s | {:.2} s | {:.2} s | {:.3} | {:.3} |",
            plan.actions.len(),
            bound.as_secs_f64(),
            greedy.as_secs_f64(),
            wall.as_secs_f64(),
            wall.as_secs_f64() / bound.as_secs_f64(),
            wall.as_secs_f64() / greedy.as_secs_f64(),
        );
    }
    println!();
    println!("| estate | `drplan apply` (time scale 0, parallelism 200) | its peak RSS |");
    println!("|---|---|---|");
    for (machines, groups) in [(1_000, 10), (10_000, 100)] {
        let estate = failover_estate(machines, groups, 0.0);
        let args = [
            "apply".as_ref(),
            estate.path.as_os_str(),
            "--auto-approve".as_ref(),
            "--parallelism".as_ref(),
            "200".as_ref(),
        ];
        let (wall, peak) = drplan_process(&args);
        println!("| {machines} machines / {groups} groups | {:.2} s | {} |", wall.as_secs_f64(), mib(peak));
    }
}
