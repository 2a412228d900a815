//! `drplan plan` of generated estates (validate, sim inventory, diff, action DAG, RTO estimate,
//! rendering) against a same-run baseline: validate alone on the same document.
//!
//! Run: `cargo bench --bench plan`. Prints a Markdown table; numbers in README come from it.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use drplan::providers::sim::WorldStore;
use drplan::providers::sim::generate::{EstateShape, WorldOptions, generate_plan, world_for};

const RUNS: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(mut f: impl FnMut()) -> Duration {
    f();
    median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn validate(path: &Path, text: &str) -> drplan::validate::Model {
    let loaded = drplan::spec::load_str(path, text.to_string()).expect("generated plans load");
    drplan::validate::validate(loaded).model.expect("generated plans are valid")
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("| plan | actions | baseline: validate | drplan plan (planned failover) | ratio | of which rendering |");
    println!("|---|---|---|---|---|---|");
    for (machines, groups) in [(1_000, 10), (10_000, 100)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.yaml");
        let text = generate_plan(&EstateShape::new(machines, groups));
        std::fs::write(&path, &text).unwrap();
        let model = validate(&path, &text);
        let options = WorldOptions {
            protected: true,
            clock: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
            ..WorldOptions::default()
        };
        WorldStore::new(&dir.path().join("world.json")).save(&world_for(&model, &options)).unwrap();
        let flipped = text.replace("  active: dc1\n", "  active: dc2\n");
        std::fs::write(&path, &flipped).unwrap();
        let state = drplan::state::State::new(&model.name);

        let baseline = time(|| {
            validate(&path, &flipped);
        });
        let mut actions = 0;
        let mut render_time = Duration::ZERO;
        let plan_time = time(|| {
            let model = validate(&path, &flipped);
            let provider = drplan::providers::open(&model).unwrap();
            let inventory = runtime.block_on(provider.inventory()).unwrap();
            let changes = drplan::diff::diff(&model, &inventory);
            let input = drplan::planner::PlanInput {
                model: &model,
                plan_path: &path,
                changes: &changes,
                inventory: &inventory,
                state: &state,
                platform: provider.as_ref(),
                parallelism: 10,
                now: SystemTime::now(),
            };
            let plan = drplan::planner::build(&input).unwrap_or_else(|e| panic!("{e:?}"));
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
