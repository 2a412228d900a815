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

/// Run the `drplan` binary this bench was built with on `args`; its wall time and peak
/// resident memory. Measured from a fresh copy of the bench (see `measure_child`): a child's
/// peak as the kernel counts it includes the memory of the process that spawned it.
pub fn drplan_process(args: &[&std::ffi::OsStr]) -> (Duration, u64) {
    let joined: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(MEASURE_ENV, joined.join("\n"))
        .output()
        .expect("the bench runs itself");
    let text = String::from_utf8_lossy(&out.stdout);
    let (wall, peak) = text.trim().split_once(' ').unwrap_or_else(|| panic!("measuring drplan {args:?}: {text}"));
    (Duration::from_nanos(wall.parse().unwrap()), peak.parse().unwrap())
}

const MEASURE_ENV: &str = "DRPLAN_BENCH_MEASURE";

/// In a bench's own child (first thing in `main`): run drplan as `DRPLAN_BENCH_MEASURE`
/// says, print its wall time (ns) and peak RSS (bytes), and say so.
// The child is reaped by wait4, which also gives its peak; Child::wait would not.
#[allow(clippy::zombie_processes)]
pub fn measure_child() -> bool {
    use std::process::{Command, Stdio};
    let Ok(args) = std::env::var(MEASURE_ENV) else { return false };
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_drplan"))
        .args(args.split('\n'))
        .env("NO_COLOR", "1")
        .env_remove(MEASURE_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("drplan starts");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child's, not yet reaped (Child::wait is never called for it).
    let reaped = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert!(reaped > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "drplan {args} failed ({status})");
    println!("{} {}", wall.as_nanos(), usage.ru_maxrss as u64 * 1024);
    true
}

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

// The allocator the drplan binary uses (src/main.rs), so in-process figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
