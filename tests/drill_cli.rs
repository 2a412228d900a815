//! Drills and run evidence: test copies never touch production and are always cleaned up;
//! reports in JSON, Markdown, JUnit and SVG; history.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{SimLab, transcript};
use drplan::providers::sim::world::{Fault, FaultKind};
use serde_json::Value;

/// Everything about the machines except drill copies: what a drill must leave alone.
fn production(lab: &SimLab) -> String {
    let mut w = lab.world();
    // Settle the simulated clock first: time passing is not a change the drill made.
    let now = w.now();
    let ids: Vec<String> = w.machines.keys().cloned().collect();
    for id in ids {
        w.catch_up(&id, now, 12);
    }
    let mut out = String::new();
    for (id, m) in &w.machines {
        let mut m = m.clone();
        m.test_copies.clear();
        out.push_str(&format!("{id}: {}\n", serde_json::to_string(&m).unwrap()));
    }
    out
}

fn test_copies(lab: &SimLab) -> usize {
    lab.world().machines.values().map(|m| m.test_copies.len()).sum()
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", transcript(out)))
}

fn step<'a>(report: &'a Value, id: &str) -> Option<&'a Value> {
    report["steps"].as_array().unwrap().iter().find(|s| s["id"] == id)
}

#[test]
fn a_drill_never_touches_production_and_complete_removes_everything() {
    let lab = SimLab::new(true);
    assert_eq!(lab.run(&["sim", "advance", "shop.yaml", "6m"]).status.code(), Some(0));
    let before = production(&lab);
    let out = lab.run(&["drill", "shop.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report = json(&out);
    assert_eq!(report["kind"], "drill");
    assert_eq!(test_copies(&lab), 5);
    assert_eq!(production(&lab), before, "production and replication untouched");
    // Copies sit only on the isolated networks.
    let world = lab.world();
    for m in world.machines.values() {
        for copy in &m.test_copies {
            assert!(copy.nics.iter().all(|n| n.network == "drill" || n.network == "drill-edge"), "{copy:?}");
        }
    }
    // Steps meant for drills run; steps for failovers do not.
    assert!(step(&report, "app/after/drill-only").is_some());
    assert!(step(&report, "app/before/dns").is_none());
    // One drill at a time.
    let again = lab.run(&["drill", "shop.yaml"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("drplan::drill_in_progress"));

    let out = lab.run(&["drill", "complete", "shop.yaml", "--notes", "logins work"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(test_copies(&lab), 0);
    assert_eq!(production(&lab), before);
    let history = json(&lab.run(&["history", "shop.yaml", "--format", "json"]));
    let entries = history["history"].as_array().unwrap();
    assert_eq!(entries[0]["kind"], "drill-cleanup", "newest first");
    assert_eq!(entries[1]["kind"], "drill");
    assert_eq!(entries[1]["notes"], "logins work");
    assert!(entries[1]["rto_ms"].as_u64().is_some());
}

#[test]
fn a_failing_drill_step_still_cleans_up_everything_it_created() {
    let lab = SimLab::new(true);
    lab.edit_world(|w| {
        w.faults.push(Fault {
            op: Some(drplan::contract::OpKind::CreateTestCopy),
            machine: Some("app1".into()),
            site: None,
            kind: FaultKind::Error,
            times: None,
            triggered: 0,
            message: Some("no capacity for app1 in the drill network".into()),
        })
    });
    let before = production(&lab);
    let out = lab.run(&["drill", "shop.yaml", "--auto-complete", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert_eq!(test_copies(&lab), 0, "everything the drill created is gone");
    assert_eq!(production(&lab), before);
    let store = drplan::state::FileStore::for_plan(&lab.path().join("shop.yaml"), "shop");
    assert!(drplan::state::StateStore::load(&store).unwrap().drill.is_none());
}

#[test]
fn kill_9_during_a_drill_then_complete_removes_the_copies() {
    let lab = SimLab::new(true);
    lab.edit_world(|w| w.time_scale = 0.01);
    let before = production(&lab);
    let mut child = Command::new(env!("CARGO_BIN_EXE_drplan"))
        .current_dir(lab.path())
        .args(["drill", "shop.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until at least one copy exists, then kill -9.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while test_copies(&lab) == 0 {
        assert!(std::time::Instant::now() < deadline, "no copy was ever created");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = lab.run(&["drill", "complete", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(test_copies(&lab), 0);
    assert_eq!(production(&lab), before);
}

#[test]
fn an_old_drill_is_force_cleaned_by_the_next_command() {
    let lab = SimLab::new(true);
    assert_eq!(lab.run(&["drill", "shop.yaml", "--max-age", "1day"]).status.code(), Some(0));
    assert_eq!(test_copies(&lab), 5);
    // Two days later...
    let state_path = lab.path().join(".drplan/shop/state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    state["drill"]["started_at"] = humantime::format_rfc3339_millis(old).to_string().into();
    std::fs::write(&state_path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("its test copies were removed"), "{}", transcript(&out));
    assert_eq!(test_copies(&lab), 0);
    let history = json(&lab.run(&["history", "shop.yaml", "--format", "json"]));
    assert_eq!(history["history"][0]["status"], "force-cleaned");
}

#[test]
fn drills_follow_the_support_matrix() {
    let lab = SimLab::new(true);
    lab.edit_world(|w| w.support.test_failover.forward = false);
    let out = lab.run(&["drill", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drplan::unsupported_operation"), "{}", transcript(&out));
    assert_eq!(test_copies(&lab), 0);
}

#[test]
fn a_drill_of_one_group_or_machine() {
    let lab = SimLab::new(true);
    let out =
        lab.run(&["drill", "shop.yaml", "--group", "db", "--machine", "web1", "--auto-complete", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report = json(&out);
    let copies: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "create-test-copy")
        .map(|s| s["machine"].as_str().unwrap())
        .collect();
    assert_eq!(copies, ["db1", "db2", "web1"]);
}

#[test]
fn reports_are_written_in_every_format() {
    let lab = SimLab::new(true);
    lab.target("active: dc2\nvia: unplanned");
    let out = lab.run(&["apply", "shop.yaml", "--auto-approve", "--report", "evidence"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let dir = lab.path().join("evidence");
    let report: Value = serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    for key in ["run", "steps", "rto", "data_loss", "document_hash", "objectives", "started_at", "finished_at"] {
        assert!(!report[key].is_null(), "report.json lacks {key}");
    }
    let groups: Vec<&str> =
        report["rto"]["groups"].as_array().unwrap().iter().map(|g| g["group"].as_str().unwrap()).collect();
    assert_eq!(groups, ["db", "cache", "app", "web", "notify"]);
    assert!(
        report["data_loss"]["machines"].as_array().unwrap().iter().all(|m| m["point"].as_u64().is_some()),
        "points used"
    );

    let markdown = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(markdown.starts_with("## drplan: Unplanned failover of `shop` (dc1 → dc2) — ✅ succeeded"), "{markdown}");
    assert!(markdown.contains("| Measured RTO |") && markdown.contains("| Data loss |"), "{markdown}");

    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).expect("junit.xml is well-formed");
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), report["steps"].as_array().unwrap().len(), "one test case per step");

    let svg = std::fs::read_to_string(dir.join("timeline.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("timeline.svg is well-formed");
    let labelled: Vec<&str> = doc.descendants().filter_map(|n| n.attribute("data-group")).collect();
    for g in ["db", "cache", "app", "web", "notify"] {
        assert!(labelled.contains(&g), "the timeline shows group {g}");
    }
    assert!(svg.contains("RTO objective 30m"));
    assert!(!svg.contains("href"), "no external assets");
}

#[test]
fn a_failed_run_reports_its_failures_in_junit() {
    let lab = SimLab::new(true);
    lab.edit_world(|w| {
        w.faults.push(Fault {
            op: Some(drplan::contract::OpKind::Start),
            machine: Some("db1".into()),
            site: None,
            kind: FaultKind::Error,
            times: None,
            triggered: 0,
            message: Some("hypervisor <full> & \"busy\"".into()),
        })
    });
    lab.target("active: dc2\nvia: unplanned");
    let out = lab.run(&["apply", "shop.yaml", "--auto-approve", "--report", "evidence"]);
    assert_eq!(out.status.code(), Some(1));
    let junit = std::fs::read_to_string(lab.path().join("evidence/junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).expect("escaped properly");
    let failure = doc.descendants().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(failure.attribute("message"), Some("hypervisor <full> & \"busy\""));
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
    assert_eq!(suite.attribute("failures"), Some("1"));
}

#[test]
fn a_past_runs_reports_can_be_written_again() {
    let lab = SimLab::new(true);
    assert_eq!(lab.run(&["drill", "shop.yaml", "--auto-complete"]).status.code(), Some(0));
    let history = json(&lab.run(&["history", "shop.yaml", "--format", "json"]));
    let drill_run = history["history"][1]["run"].as_str().unwrap().to_string();
    let out = lab.run(&["report", "shop.yaml", &drill_run[..8], "--out", "again"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(lab.path().join("again/report.json")).unwrap()).unwrap();
    assert_eq!(report["run"], drill_run.as_str());
    let human = lab.run(&["history", "shop.yaml"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("drill"), "{}", transcript(&human));
}

#[test]
fn a_local_drill_makes_real_copies_and_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::drplan(dir.path()).args(["lab", "init", "lab", "--disk-size", "4MiB"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let lab = dir.path().join("lab");
    let run = |args: &[&str]| common::drplan(&lab).args(args).output().unwrap();
    assert_eq!(run(&["apply", "lab.yaml", "--auto-approve"]).status.code(), Some(0));
    let before: Vec<Vec<u8>> = ["db1", "app1", "web1"]
        .iter()
        .map(|m| std::fs::read(lab.join("dc2/.drplan/replicas").join(m).join("current/data.img")).unwrap())
        .collect();
    let out = run(&["drill", "lab.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let drills = lab.join("dc2/.drplan/drills");
    let id = std::fs::read_dir(&drills).unwrap().next().unwrap().unwrap().file_name();
    for m in ["db1", "app1", "web1"] {
        assert!(drills.join(&id).join(m).join("disks/os.img").is_file(), "{m} has a real test copy");
    }
    // Give the copies' programs a moment to write, then complete.
    std::thread::sleep(Duration::from_millis(200));
    let out = run(&["drill", "complete", "lab.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(!drills.join(&id).exists(), "the drill area is gone");
    let after: Vec<Vec<u8>> = ["db1", "app1", "web1"]
        .iter()
        .map(|m| std::fs::read(lab.join("dc2/.drplan/replicas").join(m).join("current/data.img")).unwrap())
        .collect();
    assert!(before == after, "the replicas were not touched by the drill");
    let _ = run(&["lab", "stop", "."]);
}

/// Renders the SVG timeline in headless Chromium (Debian's `chromium` package). `.ci/run`
/// installs Chromium and runs this with `cargo test -- --ignored`.
#[test]
#[ignore = "needs Chromium; run by .ci/run"]
fn the_timeline_renders_in_a_headless_browser() {
    let lab = SimLab::new(true);
    lab.target("active: dc2\nvia: unplanned");
    assert_eq!(lab.run(&["apply", "shop.yaml", "--auto-approve", "--report", "evidence"]).status.code(), Some(0));
    let svg = lab.path().join("evidence/timeline.svg");
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let png = lab.path().join("timeline.png");
    let out = Command::new("chromium")
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,900")
        .arg(format!("file://{}", svg.display()))
        .output()
        .expect("chromium is installed (apt-get install chromium)");
    assert!(out.status.success(), "{}", transcript(&out));
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "a real picture ({} bytes)", bytes.len());
    let dom = Command::new("chromium")
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", svg.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    for g in ["db", "cache", "app", "web", "notify"] {
        assert!(dom.contains(&format!("group {g}")), "the browser's DOM shows group {g}");
    }
}

/// A misspelled `--group` or `--machine` is an error with a suggestion, not an empty drill;
/// nothing is opened.
#[test]
fn drill_scope_names_must_exist() {
    let lab = SimLab::new(true);
    for (args, code, hint) in [
        (["--group", "dbb"], "drplan::unknown_group", "did you mean `db`?"),
        (["--machine", "web2"], "drplan::unknown_machine", "did you mean `web1`?"),
    ] {
        let out = lab.run(&[&["drill", "shop.yaml"][..], &args[..]].concat());
        let text = transcript(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains(code) && text.contains(hint), "{text}");
    }
    let out = lab.run(&["drill", "complete", "shop.yaml"]);
    assert!(transcript(&out).contains("drplan::no_open_drill"), "{}", transcript(&out));
    // And a report of a run that does not exist names the problem the same way.
    let out = lab.run(&["report", "shop.yaml", "nope", "--out", "r"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(transcript(&out).contains("drplan::unknown_run"), "{}", transcript(&out));
}
