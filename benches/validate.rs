//! validate (load + semantic checks) of generated plans, against a same-run baseline:
//! parsing the same text into an untyped YAML tree, the floor any YAML tool pays.
//!
//! Run: `cargo bench --bench validate`. Prints a Markdown table; numbers in README come from it.

use std::path::Path;

use drplan::providers::sim::generate::{EstateShape, generate_plan};

#[path = "support/mod.rs"]
mod support;

use support::time;

const RUNS: usize = 7;

fn validate_once(text: &str) {
    let loaded = drplan::spec::load_str(Path::new("bench.yaml"), text.to_string()).expect("generated plans load");
    let validation = drplan::validate::validate(loaded);
    assert!(validation.model.is_some(), "generated plans are valid: {:?}", validation.diagnostics);
}

/// Peak resident memory of a fresh process that validates the plan once.
fn peak_rss_kib(machines: usize, groups: usize) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let out =
        std::process::Command::new(exe).env("DRPLAN_BENCH_CHILD", format!("{machines}:{groups}")).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn child(spec: &str) {
    let (m, g) = spec.split_once(':').expect("machines:groups");
    let text = generate_plan(&EstateShape::new(m.parse().unwrap(), g.parse().unwrap()));
    validate_once(&text);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("{hwm}");
}

fn main() {
    if let Ok(spec) = std::env::var("DRPLAN_BENCH_CHILD") {
        return child(&spec);
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; there are no libtest benches here.
    }
    println!("| plan | size | baseline: untyped YAML parse | drplan validate | ratio | peak RSS |");
    println!("|---|---|---|---|---|---|");
    for (machines, groups) in [(1_000, 10), (10_000, 100), (50_000, 500)] {
        let text = generate_plan(&EstateShape::new(machines, groups));
        let baseline = time(RUNS, || {
            let _: serde_json::Value = serde_saphyr::from_str_with_options(&text, drplan::spec::load::yaml_options())
                .expect("generated YAML parses");
        });
        let validate = time(RUNS, || validate_once(&text));
        let rss = peak_rss_kib(machines, groups).map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        println!(
            "| {machines} machines / {groups} groups | {:.2} MiB | {:.1} ms | {:.1} ms | {:.2} | {rss} |",
            text.len() as f64 / (1024.0 * 1024.0),
            baseline.as_secs_f64() * 1e3,
            validate.as_secs_f64() * 1e3,
            validate.as_secs_f64() / baseline.as_secs_f64(),
        );
    }
}
