//! The plugin protocol's cost: the same planned failover of a generated sim estate, applied
//! with the sim provider in-process and with the same sim behind the protocol
//! (`plugin: [drplan, provider, serve, sim]`, a second process on stdin/stdout). Each run is a
//! fresh child process (so its peak memory is its own), the two variants interleaved, the
//! median of each reported with their ratio. Then the round trip of one call (`sites`, which
//! costs the sim nothing) through the plugin, sequentially: median and p99.
//!
//! Run: `cargo bench --bench plugin` (a few minutes). Prints Markdown tables for README.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drplan::exec::engine::{Engine, EngineOptions, Prior, RunStatus};
use drplan::planner::Dag;
use drplan::state::{FileStore, StateStore};

#[path = "support/mod.rs"]
mod support;

use drplan::validate::Model;
use support::{Estate, build_plan, failover_estate, median, validate};

const RUNS: usize = 3;
const ROUND_TRIPS: usize = 5_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], args[i + 2].parse().unwrap(), args[i + 3].parse().unwrap());
        return;
    }
    println!(
        "| estate | time scale | in-process wall | plugin wall | wall ratio | in-process peak RSS | plugin peak RSS (drplan) | RSS ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (machines, time_scale) in [(10_000, 0.002), (10_000, 0.0)] {
        let mut results: [Vec<(Duration, u64)>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..RUNS {
            for (slot, variant) in ["in-process", "plugin"].iter().enumerate() {
                results[slot].push(run_child(variant, machines, time_scale));
            }
        }
        let wall = |slot: usize| median(results[slot].iter().map(|r| r.0).collect());
        let rss = |slot: usize| {
            let mut v: Vec<u64> = results[slot].iter().map(|r| r.1).collect();
            v.sort();
            v[v.len() / 2]
        };
        println!(
            "| {machines} machines | {time_scale} | {:.2} s | {:.2} s | {:.3} | {} MiB | {} MiB | {:.2} |",
            wall(0).as_secs_f64(),
            wall(1).as_secs_f64(),
            wall(1).as_secs_f64() / wall(0).as_secs_f64(),
            rss(0) / 1024,
            rss(1) / 1024,
            rss(1) as f64 / rss(0) as f64
        );
    }
    round_trips();
}

/// One measured apply in a fresh process: (wall, peak RSS in KiB).
fn run_child(variant: &str, machines: usize, time_scale: f64) -> (Duration, u64) {
    let me = std::env::current_exe().unwrap();
    let out =
        Command::new(me).args(["--child", variant, &machines.to_string(), &time_scale.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
    (Duration::from_micros(fields.next().unwrap()), fields.next().unwrap())
}

/// Apply the planned failover once and print `wall_us peak_rss_kib`.
fn child(variant: &str, machines: usize, time_scale: f64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (estate, model) = estate_for(variant, machines, machines / 100, time_scale);
    let start = Instant::now();
    let (provider, plan) = build_plan(&runtime, &estate.path, &model, 200);
    let plan = Arc::new(plan);
    let dag = Arc::new(Dag::new(&plan).unwrap());
    let store: Arc<dyn StateStore> = Arc::new(FileStore::for_plan(&estate.path, &model.name));
    let engine = Engine {
        plan,
        dag,
        provider: provider.clone(),
        store,
        run_id: "bench".into(),
        options: EngineOptions { parallelism: 200, ..EngineOptions::default() },
        events: None,
        stop: Default::default(),
        abort: Default::default(),
    };
    let outcome = runtime.block_on(engine.run(Prior::default()));
    runtime.block_on(provider.flush()).unwrap();
    let wall = start.elapsed();
    assert_eq!(outcome.status, RunStatus::Succeeded);
    println!("{} {}", wall.as_micros(), peak_rss_kib());
}

/// Sequential round trips of one cheap call, in-process and through the plugin.
fn round_trips() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!();
    println!("| call | median | p99 |");
    println!("|---|---|---|");
    for variant in ["in-process", "plugin"] {
        let (_estate, model) = estate_for(variant, 100, 2, 0.0);
        let provider = drplan::providers::open(&model).unwrap();
        runtime.block_on(provider.inventory()).unwrap();
        let mut samples: Vec<Duration> = (0..ROUND_TRIPS)
            .map(|_| {
                let start = Instant::now();
                runtime.block_on(provider.sites()).unwrap();
                start.elapsed()
            })
            .collect();
        samples.sort();
        let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        println!(
            "| `sites`, {variant} | {:.1} µs | {:.1} µs |",
            p(0.5).as_secs_f64() * 1e6,
            p(0.99).as_secs_f64() * 1e6
        );
    }
}

/// The generated failover estate, its sites driven in-process (`in-process`) or by the sim
/// served over the protocol (`plugin`), and its validated model.
fn estate_for(variant: &str, machines: usize, groups: usize, time_scale: f64) -> (Estate, Model) {
    let mut estate = failover_estate(machines, groups, time_scale);
    if variant == "plugin" {
        let plugin = format!("provider: served, plugin: [{}, provider, serve, sim],", env!("CARGO_BIN_EXE_drplan"));
        estate.text = estate.text.replace("provider: sim,", &plugin);
        std::fs::write(&estate.path, &estate.text).unwrap();
    }
    let model = validate(&estate.path, &estate.text);
    (estate, model)
}

/// This process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
