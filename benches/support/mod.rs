//! What the benchmarks share: robust timing and generated estates.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use drplan::providers::sim::WorldStore;
use drplan::providers::sim::generate::{EstateShape, WorldOptions, generate_plan, world_for};

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The median of `runs` timed runs after one warm-up.
pub fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

pub fn validate(path: &Path, text: &str) -> drplan::validate::Model {
    let loaded = drplan::spec::load_str(path, text.to_string()).expect("generated plans load");
    drplan::validate::validate(loaded).model.expect("generated plans are valid")
}

/// What `drplan plan` does for a validated document: open its provider, take the inventory,
/// diff, and build the action plan from a fresh state.
pub fn build_plan(
    runtime: &tokio::runtime::Runtime,
    path: &Path,
    model: &drplan::validate::Model,
    parallelism: usize,
) -> (std::sync::Arc<dyn drplan::contract::Provider>, drplan::planner::ActionPlan) {
    let provider = drplan::providers::open(model).unwrap();
    let inventory = runtime.block_on(provider.inventory()).unwrap();
    let changes = drplan::diff::diff(model, &inventory);
    let state = drplan::state::State::new(&model.name);
    let input = drplan::planner::PlanInput {
        model,
        plan_path: path,
        changes: &changes,
        inventory: &inventory,
        state: &state,
        platform: provider.as_ref(),
        parallelism,
        now: SystemTime::now(),
        secret_key: [0; 32],
    };
    let plan = drplan::planner::build(&input).unwrap_or_else(|e| panic!("{e:?}"));
    (provider, plan)
}

/// Execute `plan` with the engine (as `drplan apply` does after planning) and return its
/// wall time; the run must succeed.
pub fn execute(
    runtime: &tokio::runtime::Runtime,
    plan: std::sync::Arc<drplan::planner::ActionPlan>,
    provider: std::sync::Arc<dyn drplan::contract::Provider>,
    store: std::sync::Arc<dyn drplan::state::StateStore>,
    run_id: &str,
    parallelism: usize,
) -> Duration {
    use drplan::exec::engine::{Engine, EngineOptions, Prior, RunStatus};
    let dag = std::sync::Arc::new(drplan::planner::Dag::new(&plan).unwrap());
    let engine = Engine {
        plan,
        dag,
        provider,
        store,
        run_id: run_id.into(),
        options: EngineOptions { parallelism, ..EngineOptions::default() },
        events: None,
        stop: Default::default(),
        abort: Default::default(),
    };
    let start = Instant::now();
    let outcome = runtime.block_on(engine.run(Prior::default()));
    let wall = start.elapsed();
    assert_eq!(outcome.status, RunStatus::Succeeded);
    wall
}

/// A generated estate on disk: the plan (target already flipped to dc2, a planned failover)
/// and its protected sim world at a fixed clock.
pub struct Estate {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub text: String,
}

pub fn failover_estate(machines: usize, groups: usize, time_scale: f64) -> Estate {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    let text = generate_plan(&EstateShape::new(machines, groups));
    let model = validate(&path, &text);
    let clock = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let options = WorldOptions { protected: true, clock, time_scale, ..WorldOptions::default() };
    WorldStore::new(&dir.path().join("world.json")).save(&world_for(&model, &options)).unwrap();
    let text = text.replace("  active: dc1\n", "  active: dc2\n");
    std::fs::write(&path, &text).unwrap();
    Estate { dir, path, text }
}
