//! Helpers shared by the CLI tests: run the real binary, normalise its output.
#![allow(dead_code)]

pub mod local;

use std::path::{Path, PathBuf};
use std::process::Output;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Whether the programs a test needs from outside Rust are installed. `.ci/run` installs them
/// and sets `DRPLAN_REQUIRE_TOOLS`, where a missing one fails the test; elsewhere (a fresh
/// machine running `cargo test`) the test says it is skipped and why.
pub fn have_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|tool| !on_path(tool)).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("DRPLAN_REQUIRE_TOOLS").is_some() {
        panic!("{} not installed (DRPLAN_REQUIRE_TOOLS is set)", missing.join(", "));
    }
    eprintln!("skipped: {} not installed here (`.ci/run` installs it)", missing.join(", "));
    false
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The QEMU provider's binary, built by the cargo that runs the tests (it is another package
/// of the workspace, so cargo does not hand its path to this one), next to drplan's, where a
/// plan's `provider: qemu` finds it.
pub fn qemu_provider() -> PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "drplan-provider-qemu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building drplan-provider-qemu failed");
    PathBuf::from(env!("CARGO_BIN_EXE_drplan")).with_file_name("drplan-provider-qemu")
}

/// Every step of the finished run `report` succeeded exactly once in `journal` (a crash and
/// a resume must never repeat one).
pub fn assert_each_step_succeeded_once(journal: &[drplan::state::JournalRecord], report: &serde_json::Value) {
    let mut successes: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for record in journal {
        if matches!(record.event, drplan::state::JournalEvent::Succeeded { .. }) {
            *successes.entry(record.step.as_str()).or_default() += 1;
        }
    }
    assert!(successes.values().all(|&n| n == 1), "no step twice: {successes:?}");
    assert_eq!(successes.len(), report["steps"].as_array().unwrap().len(), "every step once: {successes:?}");
}

/// `drplan` with a clean, deterministic environment.
pub fn drplan(cwd: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("drplan").expect("the drplan binary is built by cargo test");
    cmd.current_dir(cwd).env("NO_COLOR", "1").env_remove("COLUMNS").env("DRPLAN_LOG", "off");
    cmd
}

/// The run report an `--format json` command printed.
pub fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON report ({e}): {}", transcript(out)))
}

/// A step of a run report, by id.
pub fn step<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["steps"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("no step {id}"))
}

/// Exit code, stdout and stderr in one snapshot-friendly text.
pub fn transcript(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output.status.code().map_or("signal".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A temporary copy of the `shop` sim plan with its world, at a fixed simulated clock.
pub struct SimLab {
    pub dir: tempfile::TempDir,
}

pub const CLOCK: &str = "2026-11-01T00:00:00Z";

impl SimLab {
    pub fn new(protected: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fixtures().join("sim/shop.yaml"), dir.path().join("shop.yaml")).unwrap();
        let lab = SimLab { dir };
        let mut args = vec!["sim", "init", "shop.yaml", "--clock", CLOCK];
        if protected {
            args.push("--protected");
        }
        let out = lab.run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        lab
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        drplan(self.path()).args(args).output().unwrap()
    }

    /// Replace the plan's `target:` block (everything after `target:`).
    pub fn target(&self, lines: &str) {
        let plan = self.path().join("shop.yaml");
        let text = std::fs::read_to_string(&plan).unwrap();
        let head = &text[..text.find("\ntarget:\n").unwrap()];
        let body: String = lines.lines().map(|l| format!("  {}\n", l.trim())).collect();
        std::fs::write(&plan, format!("{head}\ntarget:\n{body}")).unwrap();
    }

    /// Replace `old` (which must occur) with `new` in the plan document.
    pub fn edit_plan(&self, old: &str, new: &str) {
        let plan = self.path().join("shop.yaml");
        let text = std::fs::read_to_string(&plan).unwrap();
        assert!(text.contains(old), "the plan has no `{old}`");
        std::fs::write(&plan, text.replacen(old, new, 1)).unwrap();
    }

    pub fn world(&self) -> drplan::providers::sim::World {
        drplan::providers::sim::WorldStore::new(&self.path().join("world.json")).load().unwrap()
    }

    pub fn edit_world(&self, change: impl FnOnce(&mut drplan::providers::sim::World)) {
        let mut store = drplan::providers::sim::WorldStore::new(&self.path().join("world.json"));
        let mut world = store.load().unwrap();
        change(&mut world);
        store.save(&world).unwrap();
    }

    /// Put every machine at `to` as after a committed, reprotected failover from `from`.
    pub fn fail_over_in_world(&self, from: &str, to: &str) {
        use drplan::contract::Power;
        use drplan::providers::sim::world::{SimPoint, SimReplication};
        self.edit_world(|w| {
            let now = w.clock.unwrap();
            for m in w.machines.values_mut() {
                m.active = to.to_string();
                let mut live = m.copies.get(from).unwrap().clone();
                live.generation = m.written;
                m.copies.get_mut(from).unwrap().power = Power::Off;
                m.copies.insert(to.to_string(), drplan::providers::sim::world::SimCopy { power: Power::On, ..live });
                m.replication = Some(SimReplication { from: to.into(), to: from.into(), since: now, last_point: now });
                m.next_point += 1;
                m.points = vec![SimPoint { id: m.next_point, time: now, generation: m.written, app: false }];
                m.commit_pending = false;
            }
        });
    }
}

/// Replace what changes from run to run (times, absolute paths, ids, hashes) in a plan's JSON;
/// paths under `base` (the lab) read `[lab]`.
pub fn normalize_plan_json(value: &mut serde_json::Value, base: &Path) {
    replace_paths(value, &base.display().to_string());
    if let Some(map) = value.as_object_mut() {
        for key in ["created_at", "plan_path", "drplan_version"] {
            if map.contains_key(key) {
                map.insert(key.into(), format!("[{key}]").into());
            }
        }
        if let Some(f) = map.get_mut("fingerprint").and_then(|f| f.as_object_mut()) {
            for (_, v) in f.iter_mut() {
                if !v.is_object() {
                    *v = "[redacted]".into();
                }
            }
            if let Some(machines) = f.get_mut("machines").and_then(|m| m.as_object_mut()) {
                for (_, v) in machines.iter_mut() {
                    *v = "[hash]".into();
                }
            }
        }
    }
}

fn replace_paths(value: &mut serde_json::Value, base: &str) {
    match value {
        serde_json::Value::String(s) if s.contains(base) => *s = s.replace(base, "[lab]"),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| replace_paths(v, base)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| replace_paths(v, base)),
        _ => {}
    }
}
