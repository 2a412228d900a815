//! Provider plugins, end to end with real processes: drplan's sim served over the plugin
//! protocol passes the conformance kit and runs plans; a plugin that crashes, hangs, prints
//! garbage or speaks another version gets a clear diagnostic, and resume completes the run.

mod common;

use std::path::Path;

use common::{drplan, have_tools, transcript};

const DRPLAN: &str = env!("CARGO_BIN_EXE_drplan");

/// A two-machine plan on the world `world.json`, its sites driven by `plugin` (argv).
fn lab(plugin: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let plan = |provider: &str| {
        format!(
            "version: 1\nname: p\nsites:\n  dc1: {{ provider: {provider}, path: world.json{0} }}\n  dc2: {{ provider: {provider}, path: world.json{0} }}\n\
             protection: {{ primary: dc1, recovery: dc2, rpo: 5m, rto: 30m }}\nmachines: [ {{ name: m1, boot_timeout: 3s }}, {{ name: m2, boot_timeout: 3s }} ]\n\
             groups: [ {{ name: one, machines: [m1] }}, {{ name: two, machines: [m2] }} ]\ntarget:\n  active: dc1\n",
            if provider == "sim" {
                String::new()
            } else {
                format!(", plugin: {}", serde_json::to_string(plugin).unwrap())
            }
        )
    };
    std::fs::write(dir.path().join("sim.yaml"), plan("sim")).unwrap();
    std::fs::write(dir.path().join("p.yaml"), plan("served")).unwrap();
    std::fs::copy(common::fixtures().join("plugins/faulty.py"), dir.path().join("faulty.py")).unwrap();
    let out =
        drplan(dir.path()).args(["sim", "init", "sim.yaml", "--protected", "--clock", common::CLOCK]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    dir
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    drplan(dir).env("DRPLAN_BIN", DRPLAN).args(args).timeout(std::time::Duration::from_secs(120)).output().unwrap()
}

fn target(dir: &Path, site: &str) {
    let text = std::fs::read_to_string(dir.join("p.yaml")).unwrap();
    let head = &text[..text.find("target:").unwrap()];
    std::fs::write(dir.join("p.yaml"), format!("{head}target:\n  active: {site}\n")).unwrap();
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_sim_served_over_the_protocol_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().unwrap();
    let out = drplan(dir.path()).args(["provider", "test", "--", DRPLAN, "provider", "serve", "sim"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("13 of 13 scenarios passed"), "{}", transcript(&out));
}

#[test]
fn a_plugin_that_breaks_a_rule_fails_the_conformance_kit() {
    if !have_tools(&["python3"]) {
        return;
    }
    // The faulty plugin dies at its first operation: every scenario that operates fails.
    let dir = lab(&["python3", "faulty.py"]);
    std::fs::write(dir.path().join("fault"), "crash-at-execute 1").unwrap();
    let out = run(dir.path(), &["provider", "test", "--only", "protect", "--", "python3", "faulty.py"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL  protect"), "{}", transcript(&out));
}

#[test]
fn a_plan_on_a_plugin_fails_over_and_back() {
    let dir = lab(&[DRPLAN, "provider", "serve", "sim"]);
    for site in ["dc2", "dc1"] {
        target(dir.path(), site);
        let mut out = run(dir.path(), &["apply", "p.yaml", "--auto-approve"]);
        if out.status.code() == Some(3) {
            // A delta failback waits at its gate.
            let approved = run(dir.path(), &["approve", "p.yaml", "gate/complete-failover", "--by", "oncall"]);
            assert_eq!(approved.status.code(), Some(0), "{}", transcript(&approved));
            out = run(dir.path(), &["resume", "p.yaml"]);
        }
        assert_eq!(out.status.code(), Some(0), "{site}: {}", transcript(&out));
        let out = run(dir.path(), &["plan", "p.yaml", "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(0), "{site}: converged: {}", transcript(&out));
    }
    let world = drplan::providers::sim::WorldStore::new(&dir.path().join("world.json")).load().unwrap();
    assert!(world.machines.values().all(|m| m.active == "dc1"));
}

/// How often each step of the run was started, from its journal.
fn starts(dir: &Path) -> std::collections::BTreeMap<String, usize> {
    let runs = dir.join(".drplan/p/runs");
    let mut counts = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(runs).unwrap().flatten() {
        if !entry.file_name().to_string_lossy().ends_with(".jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            if record["event"] == "succeeded" {
                *counts.entry(record["step"].as_str().unwrap().to_string()).or_default() += 1;
            }
        }
    }
    counts
}

#[test]
fn a_plugin_that_dies_mid_apply_is_named_and_resume_completes_without_repeating() {
    if !have_tools(&["python3"]) {
        return;
    }
    let dir = lab(&["python3", "faulty.py"]);
    target(dir.path(), "dc2");
    std::fs::write(dir.path().join("fault"), "crash-at-execute 4").unwrap();
    let out = run(dir.path(), &["apply", "p.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let err = stderr(&out);
    assert!(err.contains("plugin `served` exited") && err.contains("last call: `execute`"), "{}", transcript(&out));
    assert!(err.contains("crashing at execute 4"), "its stderr is shown: {}", transcript(&out));
    std::fs::remove_file(dir.path().join("fault")).unwrap();
    let out = run(dir.path(), &["resume", "p.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(starts(dir.path()).values().all(|&n| n == 1), "no step succeeded twice: {:?}", starts(dir.path()));
    let out = run(dir.path(), &["plan", "p.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn a_plugin_that_hangs_times_out_and_resume_completes() {
    if !have_tools(&["python3"]) {
        return;
    }
    let dir = lab(&["python3", "faulty.py"]);
    target(dir.path(), "dc2");
    std::fs::write(dir.path().join("fault"), "hang-at-execute 2").unwrap();
    let out = run(dir.path(), &["apply", "p.yaml", "--auto-approve", "--op-timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("timed out"), "{}", transcript(&out));
    std::fs::remove_file(dir.path().join("fault")).unwrap();
    let out = run(dir.path(), &["resume", "p.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn a_plugin_that_prints_garbage_or_speaks_another_version_is_refused_clearly() {
    if !have_tools(&["python3"]) {
        return;
    }
    for (fault, expected) in [
        ("garbage", "printed something that is not JSON-RPC on stdout: `Hello! I am definitely not"),
        ("version", "speaks protocol version 9.0; this drplan speaks 1.0"),
    ] {
        let dir = lab(&["python3", "faulty.py"]);
        std::fs::write(dir.path().join("fault"), fault).unwrap();
        let out = run(dir.path(), &["plan", "p.yaml"]);
        assert_eq!(out.status.code(), Some(1), "{fault}: {}", transcript(&out));
        assert!(stderr(&out).contains(expected), "{fault}: {}", transcript(&out));
        assert!(stderr(&out).contains("plugin"), "{fault}: {}", transcript(&out));
    }
}
