//! `drplan apply` against the sim provider: ordering, parallelism, failure policies, manual
//! gates, retries, timeouts, interruption, crash recovery and locking.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use common::{SimLab, report, step, transcript};
use drplan::providers::sim::world::{Fault, FaultKind};
use drplan::state::{JournalEvent, StateStore};
use serde_json::Value;

fn apply(lab: &SimLab, extra: &[&str]) -> Output {
    let mut args = vec!["apply", "shop.yaml", "--auto-approve", "--format", "json"];
    args.extend_from_slice(extra);
    lab.run(&args)
}

fn resume(lab: &SimLab) -> Output {
    lab.run(&["resume", "shop.yaml", "--format", "json"])
}

fn time_of(v: &Value) -> SystemTime {
    drplan::spec::time_format::parse_rfc3339(v.as_str().unwrap()).unwrap()
}

fn fault(op: &str, machine: &str, kind: FaultKind, times: Option<u32>) -> Fault {
    let op = drplan::contract::OpKind::ALL.into_iter().find(|k| k.as_str() == op).unwrap();
    Fault { op: Some(op), machine: Some(machine.into()), site: None, kind, times, triggered: 0, message: None }
}

/// A protected lab whose operations take long enough (tens of ms) to overlap.
fn slow_lab() -> SimLab {
    let lab = SimLab::new(true);
    lab.edit_world(|w| w.time_scale = 0.002);
    lab
}

fn approve_all(lab: &SimLab, report: &Value) {
    for step in report["awaiting"].as_array().into_iter().flatten() {
        let out = lab.run(&["approve", "shop.yaml", step.as_str().unwrap(), "--by", "oncall"]);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    }
}

#[test]
fn no_machine_starts_before_its_groups_dependencies_are_done() {
    let lab = slow_lab();
    lab.target("active: dc2");
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(3), "pauses at the manual step: {}", transcript(&out));
    approve_all(&lab, &report(&out));
    let out = resume(&lab);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["status"], "succeeded");
    let steps = r["steps"].as_array().unwrap();
    let group_done = |g: &str| {
        steps
            .iter()
            .filter(|s| s["group"] == g && s["id"].as_str().unwrap().starts_with(['s', 'd', 'a', 'n']))
            .filter_map(|s| s["finished_at"].as_str())
            .map(|t| time_of(&Value::from(t)))
            .max()
            .unwrap()
    };
    let started = |id: &str| time_of(&step(&r, id)["started_at"]);
    // app waits for db and cache; web for app; notify for web.
    assert!(started("start/app1") >= group_done("db"));
    assert!(started("start/app1") >= group_done("cache"));
    assert!(started("start/web1") >= time_of(&step(&r, "app/after/smoke")["finished_at"]));
    assert!(started("notify/after/page") >= time_of(&step(&r, "start/web1")["finished_at"]));
    // Shutdown in reverse order: db stops only after app has.
    assert!(started("shutdown/db1") >= time_of(&step(&r, "shutdown/app1")["finished_at"]));
    // Every machine went through shutdown, sync, failover, start in that order.
    for m in ["db1", "db2", "cache1", "app1", "web1"] {
        let order = ["shutdown", "sync", "failover", "start", "commit", "reprotect"];
        for pair in order.windows(2) {
            let a = time_of(&step(&r, &format!("{}/{m}", pair[0]))["finished_at"]);
            let b = time_of(&step(&r, &format!("{}/{m}", pair[1]))["started_at"]);
            assert!(a <= b, "{m}: {} must finish before {} starts", pair[0], pair[1]);
        }
    }
    assert_eq!(r["rto"]["groups"].as_array().unwrap().len(), 5);
    assert_eq!(r["approvals"][0]["by"], "oncall");
    // Afterwards the world matches the plan.
    let out = lab.run(&["plan", "shop.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn parallelism_is_never_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::drplan(dir.path())
        .args(["sim", "generate", "--machines", "40", "--groups", "2", "--out", "estate", "--clock", common::CLOCK])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let world = dir.path().join("estate/world.json");
    let mut store = drplan::providers::sim::WorldStore::new(&world);
    let mut w = store.load().unwrap();
    w.time_scale = 0.0005;
    store.save(&w).unwrap();
    let plan = dir.path().join("estate/plan.yaml");
    let text = std::fs::read_to_string(&plan).unwrap().replace("  active: dc1\n", "  active: dc2\n");
    std::fs::write(&plan, text).unwrap();
    let out = common::drplan(dir.path())
        .args(["apply", "estate/plan.yaml", "--auto-approve", "--format", "json", "--parallelism", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    let mut edges: Vec<(SystemTime, i32)> = Vec::new();
    for s in r["steps"].as_array().unwrap() {
        if s["kind"] == "approval" {
            continue;
        }
        edges.push((time_of(&s["started_at"]), 1));
        edges.push((time_of(&s["finished_at"]), -1));
    }
    // Ends sort before starts at the same instant.
    edges.sort_by_key(|&(t, d)| (t, d));
    let (mut now, mut peak) = (0, 0);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    assert!(peak <= 3, "{peak} operations ran at once with --parallelism 3");
    assert!(peak >= 2, "the test should exercise parallelism (peak {peak})");
}

#[test]
fn planned_failover_stops_at_the_first_error_and_resume_continues() {
    let lab = slow_lab();
    lab.edit_world(|w| w.faults.push(fault("start", "db2", FaultKind::Error, Some(1))));
    lab.target("active: dc2");
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["status"], "failed");
    assert_eq!(step(&r, "start/db2")["status"], "failed");
    assert_eq!(step(&r, "start/app1")["status"], "not-run", "nothing new starts after the failure");
    assert_eq!(step(&r, "db/after/check-db")["status"], "not-run");
    // Re-running continues from there and completes.
    let out = resume(&lab);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    approve_all(&lab, &report(&out));
    let out = resume(&lab);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(step(&r, "start/db2")["attempts"], 2, "the failed attempt is evidence too");
    assert_eq!(step(&r, "start/db2")["attempt_log"][0]["result"], "failed");
    // Every provider step succeeded exactly once across the three invocations.
    let store = drplan::state::FileStore::for_plan(&lab.path().join("shop.yaml"), "shop");
    let journal = store.read_journal(r["run"].as_str().unwrap()).unwrap();
    let mut successes: HashMap<String, usize> = HashMap::new();
    for record in &journal {
        if let JournalEvent::Succeeded { .. } = record.event {
            *successes.entry(record.step.clone()).or_default() += 1;
        }
    }
    assert!(successes.values().all(|&n| n == 1), "{successes:?}");
    assert_eq!(successes.get("shutdown/db1"), Some(&1));
}

#[test]
fn unplanned_failover_continues_past_errors_and_reports_them_all() {
    let lab = slow_lab();
    lab.edit_world(|w| {
        w.faults.push(fault("failover", "db1", FaultKind::Error, None));
        w.faults.push(fault("start", "web1", FaultKind::Error, None));
    });
    lab.target("active: dc2\nvia: unplanned");
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["status"], "completed-with-errors");
    assert_eq!(step(&r, "failover/db1")["status"], "failed");
    assert_eq!(step(&r, "start/db1")["status"], "skipped", "needs the failover");
    assert_eq!(step(&r, "start/web1")["status"], "failed");
    for m in ["db2", "cache1", "app1"] {
        assert_eq!(step(&r, &format!("start/{m}"))["status"], "succeeded", "{m} recovers regardless");
    }
    assert_eq!(step(&r, "notify/after/page")["status"], "succeeded", "later groups still run");
    assert!(r["data_loss"]["machines"].as_array().unwrap().len() >= 4);
}

#[test]
fn a_failed_source_shutdown_does_not_block_the_failover() {
    let lab = slow_lab();
    assert_eq!(lab.run(&["sim", "advance", "shop.yaml", "3m"]).status.code(), Some(0));
    lab.edit_world(|w| w.faults.push(fault("shutdown", "db1", FaultKind::Error, None)));
    lab.target("active: dc2\nvia: unplanned\ntry_shutdown: true");
    let out = apply(&lab, &[]);
    let r = report(&out);
    assert_eq!(step(&r, "shutdown/db1")["status"], "failed");
    assert_eq!(step(&r, "failover/db1")["status"], "succeeded");
    assert_eq!(step(&r, "start/db1")["status"], "succeeded");
    // db1's sync could not run (source still up): it lost data; db2 synced: it lost none.
    let loss: BTreeMap<String, u64> = r["data_loss"]["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["machine"].as_str().unwrap().to_string(), m["bytes"].as_u64().unwrap()))
        .collect();
    assert!(loss["db1"] > 0, "{loss:?}");
    assert_eq!(loss["db2"], 0, "{loss:?}");
}

#[test]
fn manual_steps_pause_with_exit_3_then_approve_and_resume() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["status"], "paused");
    assert_eq!(r["awaiting"], serde_json::json!(["app/before/dns"]));
    // Only a named approver may approve.
    let out = lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "intern"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drplan::not_an_approver"));
    let out = lab.run(&["approve", "shop.yaml", "app/before/dsn", "--by", "oncall"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `app/before/dns`?"), "{}", transcript(&out));
    // A fresh apply of the same document continues the paused run rather than starting anew.
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(3));
    let out = lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = resume(&lab);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["approvals"][0]["step"], "app/before/dns");
    assert_eq!(r["approvals"][0]["by"], "oncall");
    assert_eq!(step(&r, "app/before/dns")["status"], "succeeded");
}

#[test]
fn human_output_of_a_pause_says_what_to_do() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    let out = lab.run(&["apply", "shop.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("drplan approve shop.yaml app/before/dns --by NAME"), "{stdout}");
    assert!(stdout.contains("drplan resume shop.yaml"), "{stdout}");
}

#[test]
fn throttling_is_retried_with_backoff() {
    let lab = SimLab::new(true);
    lab.edit_world(|w| w.faults.push(fault("failover", "db1", FaultKind::Throttle, Some(2))));
    lab.target("active: dc2\nvia: unplanned");
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(step(&r, "failover/db1")["attempts"], 3);
    assert_eq!(step(&r, "failover/db1")["status"], "succeeded");
}

#[test]
fn a_hanging_sync_times_out_and_leaves_the_replica_inconsistent_until_redone() {
    let lab = SimLab::new(true);
    lab.edit_world(|w| {
        // Something was written since the last point, so the final sync has data to move.
        let db1 = w.machines.get_mut("db1").unwrap();
        db1.written += 1 << 20;
        db1.copies.get_mut("dc1").unwrap().generation = db1.written;
        w.faults.push(fault("sync", "db1", FaultKind::Hang, Some(1)));
    });
    lab.target("active: dc2");
    let out = apply(&lab, &["--op-timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(step(&r, "sync/db1")["status"], "interrupted");
    assert!(step(&r, "sync/db1")["error"].as_str().unwrap().contains("did not finish"));
    assert!(!lab.world().machines["db1"].copies.get("dc2").unwrap().consistent, "the replica is marked inconsistent");
    // Resuming redoes the sync and completes the failover.
    let out = resume(&lab);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    approve_all(&lab, &report(&out));
    assert_eq!(resume(&lab).status.code(), Some(0));
    let w = lab.world();
    assert_eq!(w.machines["db1"].active, "dc2");
    assert!(w.machines["db1"].copies.get("dc2").unwrap().consistent);
}

#[test]
fn a_second_concurrent_apply_is_refused_with_the_holder() {
    let lab = SimLab::new(true);
    lab.edit_world(|w| w.time_scale = 0.02);
    lab.target("active: dc2\nvia: unplanned");
    let mut first = Command::new(env!("CARGO_BIN_EXE_drplan"))
        .current_dir(lab.path())
        .args(["apply", "shop.yaml", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first one holds the lock.
    let store = drplan::state::FileStore::for_plan(&lab.path().join("shop.yaml"), "shop");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.lock_holder().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the first apply never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = apply(&lab, &[]);
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("drplan::state_locked") && stderr.contains(&format!("pid {}", first.id())), "{stderr}");
    assert!(stderr.contains("drplan apply"), "{stderr}");
    assert!(first.wait().unwrap().success());
    let out = lab.run(&["plan", "shop.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "nothing corrupted: {}", transcript(&out));
}

#[test]
fn a_stale_saved_plan_is_refused_by_apply() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    assert_eq!(lab.run(&["plan", "shop.yaml", "--out", "run.plan"]).status.code(), Some(0));
    lab.edit_world(|w| {
        w.machines.get_mut("web1").unwrap().copies.get_mut("dc1").unwrap().power = drplan::contract::Power::Off
    });
    let out = lab.run(&["apply", "run.plan"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("drplan::stale_plan") && stderr.contains("`web1`"), "{stderr}");
}

#[test]
fn a_saved_plan_is_applied_exactly() {
    let lab = SimLab::new(true);
    lab.target("active: dc2\nvia: unplanned");
    assert_eq!(lab.run(&["plan", "shop.yaml", "--out", "run.plan"]).status.code(), Some(0));
    let saved = drplan::planner::file::load(&lab.path().join("run.plan")).unwrap().plan;
    let out = lab.run(&["apply", "run.plan", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    let ran: Vec<&str> = r["steps"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    let planned: Vec<&str> = saved
        .actions
        .iter()
        .filter(|a| !matches!(a.kind, drplan::planner::ActionKind::Barrier))
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(ran, planned);
    // The recovery points chosen at plan time were the ones used.
    for action in &saved.actions {
        if let drplan::planner::ActionKind::Provider { op: drplan::contract::ProviderOp::Failover { point, .. } } =
            &action.kind
        {
            assert_eq!(step(&r, &action.id)["outcome"]["point"].as_u64(), *point);
        }
    }
}

#[test]
fn manual_commit_then_drplan_commit() {
    let lab = SimLab::new(true);
    lab.target("active: dc2\nvia: unplanned\ncommit: manual");
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert!(!r["steps"].as_array().unwrap().iter().any(|s| s["kind"] == "commit" || s["kind"] == "reprotect"));
    assert!(lab.world().machines["db1"].commit_pending);
    let out = lab.run(&["plan", "shop.yaml"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("awaits `drplan commit`"), "a manual commit is pending");
    let out = lab.run(&["commit", "shop.yaml", "--auto-approve", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let w = lab.world();
    assert!(!w.machines["db1"].commit_pending);
    assert_eq!(w.machines["db1"].replication.as_ref().unwrap().from, "dc2", "reprotected after commit");
}

#[test]
fn rollback_before_commit_returns_to_the_source() {
    let lab = SimLab::new(true);
    lab.target("active: dc2\nvia: unplanned\ncommit: manual");
    assert_eq!(apply(&lab, &[]).status.code(), Some(0));
    let out = lab.run(&["rollback", "shop.yaml", "--auto-approve", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["kind"], "rollback");
    let ids: Vec<&str> = r["steps"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"revert/db1") && ids.contains(&"start/db1"), "{ids:?}");
    let w = lab.world();
    assert_eq!(w.machines["db1"].active, "dc1");
    assert!(!w.machines["db1"].commit_pending);
}

#[test]
fn rollback_to_another_recovery_point() {
    let lab = SimLab::new(true);
    assert_eq!(lab.run(&["sim", "advance", "shop.yaml", "12m"]).status.code(), Some(0));
    lab.target("active: dc2\nvia: unplanned\ncommit: manual");
    let first = report(&apply(&lab, &[]));
    let used = step(&first, "failover/db1")["outcome"]["point"].as_u64().unwrap();
    let earlier = lab.world().machines["db1"].points.iter().map(|p| p.id).find(|&p| p < used).unwrap();
    let at = humantime::format_rfc3339_seconds(
        lab.world().machines["db1"].points.iter().find(|p| p.id == earlier).unwrap().time,
    )
    .to_string();
    let out = lab.run(&["rollback", "shop.yaml", "--point", &at, "--auto-approve", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(step(&r, "repoint/db1")["outcome"]["point"].as_u64(), Some(earlier));
    assert_eq!(lab.world().machines["db1"].active, "dc2");
}

#[test]
fn interrupting_lets_running_steps_finish_and_resume_completes() {
    let lab = SimLab::new(true);
    lab.edit_world(|w| w.time_scale = 0.01);
    lab.target("active: dc2\nvia: unplanned");
    let child = Command::new(env!("CARGO_BIN_EXE_drplan"))
        .current_dir(lab.path())
        .args(["apply", "shop.yaml", "--auto-approve", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["status"], "interrupted");
    assert!(
        r["steps"].as_array().unwrap().iter().all(|s| s["status"] != "running" && s["status"] != "interrupted"),
        "in-flight steps finished: {r:#}"
    );
    assert!(r["steps"].as_array().unwrap().iter().any(|s| s["status"] == "not-run"));
    let out = resume(&lab);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

/// A view of the world that a clean run and a crash-interrupted run must agree on.
fn world_view(lab: &SimLab) -> String {
    let w = lab.world();
    let mut out = String::new();
    for (id, m) in &w.machines {
        let copies: Vec<String> =
            m.copies.iter().map(|(s, c)| format!("{s}:{}:{}:{}", c.power, c.consistent, c.generation)).collect();
        let rep = m.replication.as_ref().map(|r| format!("{}->{}", r.from, r.to)).unwrap_or_default();
        let points: Vec<u64> = m.points.iter().map(|p| p.generation).collect();
        out.push_str(&format!(
            "{id} active={} written={} commit_pending={} rep={rep} copies={copies:?} points={points:?}\n",
            m.active, m.written, m.commit_pending
        ));
    }
    out
}

#[test]
fn kill_9_at_random_moments_never_repeats_a_completed_step() {
    let clean = SimLab::new(true);
    clean.target("active: dc2\nvia: unplanned");
    assert_eq!(apply(&clean, &[]).status.code(), Some(0));
    let expected = world_view(&clean);

    let mut seed: u64 = 0x5eed;
    let mut kills = 0;
    while kills < 50 {
        let lab = SimLab::new(true);
        lab.edit_world(|w| w.time_scale = 0.002);
        lab.target("active: dc2\nvia: unplanned");
        let mut finished = None;
        for attempt in 0.. {
            assert!(attempt < 40, "the run never completed");
            let started = lab.path().join(".drplan/shop/state.json").exists()
                && drplan::state::FileStore::for_plan(&lab.path().join("shop.yaml"), "shop")
                    .load()
                    .unwrap()
                    .run
                    .is_some();
            let args: Vec<&str> = if started {
                vec!["resume", "shop.yaml", "--format", "json"]
            } else {
                vec!["apply", "shop.yaml", "--auto-approve", "--format", "json"]
            };
            let mut child = Command::new(env!("CARGO_BIN_EXE_drplan"))
                .current_dir(lab.path())
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // xorshift: a reproducible "random" moment within a run (~250 ms long).
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let wait = Duration::from_millis(seed % 300);
            std::thread::sleep(wait);
            if child.try_wait().unwrap().is_none() && attempt < 3 {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                continue;
            }
            let out = child.wait_with_output().unwrap();
            if out.status.code() == Some(0) {
                finished = Some(report(&out));
                break;
            }
        }
        assert_eq!(world_view(&lab), expected, "after kills the world equals a clean run's");
        // Every destructive step succeeded exactly once in the journal.
        let store = drplan::state::FileStore::for_plan(&lab.path().join("shop.yaml"), "shop");
        let r = finished.unwrap();
        let journal = store.read_journal(r["run"].as_str().unwrap()).unwrap();
        common::assert_each_step_succeeded_once(&journal, &r);
    }
}

#[test]
fn log_format_json_emits_one_json_event_per_line() {
    let lab = SimLab::new(true);
    lab.target("active: dc2\nvia: unplanned");
    let out = common::drplan(lab.path())
        .env_remove("DRPLAN_LOG")
        .args(["apply", "shop.yaml", "--auto-approve", "--log-format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let finished: Vec<&Value> = events.iter().filter(|e| e["message"] == "step finished").collect();
    assert!(finished.iter().any(|e| e["step"] == "failover/db1"), "{events:#?}");
    assert!(events.iter().all(|e| e["level"].is_string() && e["timestamp"].is_string()));
}

#[test]
fn applying_a_document_in_a_pipeline_needs_auto_approve() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    let out = lab.run(&["apply", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drplan::confirmation_required"), "{}", transcript(&out));
    assert_eq!(lab.world().machines["db1"].active, "dc1", "nothing happened");
}

#[test]
fn reports_name_the_git_commit_of_the_plan() {
    let lab = SimLab::new(true);
    let git = |args: &[&str]| {
        let ok = Command::new("git").current_dir(lab.path()).args(args).output().unwrap().status.success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "add", "shop.yaml"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "plan"]);
    let head = String::from_utf8(
        Command::new("git").current_dir(lab.path()).args(["rev-parse", "HEAD"]).output().unwrap().stdout,
    )
    .unwrap();
    lab.target("active: dc2\nvia: unplanned");
    let r = report(&apply(&lab, &[]));
    assert_eq!(r["git_commit"], format!("{}-dirty", head.trim()), "the plan was changed after the commit");
}

/// In a terminal (a pty from util-linux `script`, part of every Debian system): the plan, the
/// confirmation, a live per-group block that redraws in place, the approval prompt (never
/// drawn over or erased by a redraw), and the summary.
#[test]
fn a_terminal_gets_a_live_display_confirmation_and_approval_prompts() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    let bin = assert_cmd::cargo::cargo_bin("drplan");
    let mut child = Command::new("script")
        .args(["-qec", &format!("'{}' apply shop.yaml", bin.display()), "/dev/null"])
        .current_dir(lab.path())
        .env("USER", "oncall")
        .env("DRPLAN_LOG", "off")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs the command in a pseudo-terminal");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"yes\ny\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert_eq!(out.status.code(), Some(0), "{text}");
    for expected in [
        "Apply this plan? Only `yes` is accepted",
        "? app/before/dns: Lower the DNS TTL (approvers: oncall)",
        "Approve as oncall? [y/N/later]",
        "34 steps: 34 succeeded",
        "Approved app/before/dns by oncall",
        "group notify",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("\x1b[1m"), "a terminal gets colour");
    // The live block: per-group bars, redrawn in place (cursor up, clear to the end).
    let redraws: Vec<(usize, usize)> = text
        .match_indices("\x1b[")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            rest[digits..].starts_with("A\x1b[J").then(|| (at, rest[..digits].parse().unwrap()))
        })
        .collect();
    assert!(redraws.len() >= 2, "the live block redraws: {text}");
    assert!(text.contains("  db               █"), "a bar per group: {text}");
    // Every erase moves up over lines drawn since the previous one: nothing else is erased,
    // the prompt included.
    let mut from = text.find("Apply this plan?").unwrap();
    for (at, lines) in redraws {
        let drawn = text[from..at].matches('\n').count();
        assert!(drawn >= lines, "erasing {lines} lines where {drawn} were drawn:\n{}", &text[from..at]);
        from = at;
    }
}

/// Intervals and timeouts of zero are refused up front: `--every 0s` would spin.
#[test]
fn zero_intervals_and_timeouts_are_refused() {
    let lab = SimLab::new(true);
    for (args, expected) in [
        (&["replicate", "shop.yaml", "--every", "0s"][..], "must be at least 100ms"),
        (&["replicate", "shop.yaml", "--every", "10ms"][..], "must be at least 100ms"),
        (&["apply", "shop.yaml", "--auto-approve", "--op-timeout", "0s"][..], "must be at least 1ms"),
    ] {
        let out = lab.run(args);
        let text = transcript(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert!(text.contains(expected), "{args:?}: {text}");
    }
}
