//! Executor overhead: apply a planned failover of a generated estate on the sim provider and
//! compare the wall time with the lower bound the provider's latencies and the parallelism
//! limit allow, computed for the same plan in the same run:
//! max(longest dependency chain, total work / parallelism), and the zero-overhead greedy
//! schedule of the same DAG.
//!
//! Run: `cargo bench --bench apply` (about a minute). Prints a Markdown table for README.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use drplan::exec::engine::{Engine, EngineOptions, Prior, RunStatus};
use drplan::planner::schedule::{lower_bound, simulate_with};
use drplan::planner::{ActionKind, Dag, PlanInput};
use drplan::providers::sim::WorldStore;
use drplan::providers::sim::generate::{EstateShape, WorldOptions, generate_plan, world_for};
use drplan::state::{FileStore, State, StateStore};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "| estate | actions | parallelism | lower bound | greedy schedule | wall time | wall / lower bound | wall / greedy |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (machines, groups, parallelism, time_scale) in [(1_000, 10, 50, 0.002), (10_000, 100, 200, 0.002)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.yaml");
        let text = generate_plan(&EstateShape::new(machines, groups));
        std::fs::write(&path, &text).unwrap();
        let load = |text: &str| {
            drplan::validate::validate(drplan::spec::load_str(&path, text.to_string()).unwrap()).model.unwrap()
        };
        let model = load(&text);
        let clock = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let options = WorldOptions { protected: true, clock, time_scale, ..WorldOptions::default() };
        WorldStore::new(&dir.path().join("world.json")).save(&world_for(&model, &options)).unwrap();
        let flipped = text.replace("  active: dc1\n", "  active: dc2\n");
        std::fs::write(&path, &flipped).unwrap();
        let model = load(&flipped);
        let provider = drplan::providers::open(&model).unwrap();
        let inventory = runtime.block_on(provider.inventory()).unwrap();
        let changes = drplan::diff::diff(&model, &inventory);
        let state = State::new(&model.name);
        let input = PlanInput {
            model: &model,
            plan_path: &path,
            changes: &changes,
            inventory: &inventory,
            state: &state,
            platform: provider.as_ref(),
            parallelism,
            now: SystemTime::now(),
        };
        let plan = Arc::new(drplan::planner::build(&input).unwrap());
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
        let engine = Engine {
            plan: plan.clone(),
            dag: dag.clone(),
            provider: provider.clone(),
            store,
            run_id: "bench".into(),
            options: EngineOptions { parallelism, ..EngineOptions::default() },
            events: None,
            stop: Default::default(),
            abort: Default::default(),
        };
        let start = Instant::now();
        let outcome = runtime.block_on(engine.run(Prior::default()));
        let wall = start.elapsed();
        assert_eq!(outcome.status, RunStatus::Succeeded);
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
}
