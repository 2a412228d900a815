//! Every operation as the reference semantics say, each behaviour reproduced through the CLI
//! on the sim provider (and the local one where it matters).

mod common;

use std::process::Output;

use common::{SimLab, report, step, transcript};

fn apply(lab: &SimLab, extra: &[&str]) -> Output {
    let mut args = vec!["apply", "shop.yaml", "--auto-approve", "--format", "json"];
    args.extend_from_slice(extra);
    lab.run(&args)
}

/// The `db` group's check fails; nothing says what a failure does.
fn failing_check(lab: &SimLab) {
    lab.edit_plan(r#"run: ["true"], timeout: 1m"#, r#"run: ["false"], timeout: 1m"#);
}

#[test]
fn a_failing_script_without_on_failure_does_not_stop_an_unplanned_failover() {
    let lab = SimLab::new(true);
    failing_check(&lab);
    lab.target("active: dc2\nvia: unplanned");
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["status"], "completed-with-errors");
    assert_eq!(step(&r, "db/after/check-db")["status"], "failed");
    for later in ["start/app1", "start/web1", "notify/after/page"] {
        assert_eq!(step(&r, later)["status"], "succeeded", "{later} runs after the failed check");
    }
}

#[test]
fn a_failing_script_without_on_failure_stops_a_planned_failover() {
    let lab = SimLab::new(true);
    failing_check(&lab);
    lab.target("active: dc2");
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["status"], "failed");
    assert_eq!(step(&r, "db/after/check-db")["status"], "failed");
    assert_eq!(step(&r, "start/app1")["status"], "not-run");
}

#[test]
fn an_explicit_on_failure_stop_stops_an_unplanned_failover_too() {
    let lab = SimLab::new(true);
    lab.edit_plan(r#"run: ["true"], timeout: 1m"#, r#"run: ["false"], timeout: 1m, on_failure: stop"#);
    lab.target("active: dc2\nvia: unplanned");
    let r = report(&apply(&lab, &[]));
    assert_eq!(r["status"], "failed");
    assert_eq!(step(&r, "start/app1")["status"], "not-run");
}

#[test]
fn a_failing_script_without_on_failure_does_not_stop_a_drill() {
    let lab = SimLab::new(true);
    lab.edit_plan(r#"name: drill-only, run: ["true"]"#, r#"name: drill-only, run: ["false"]"#);
    let out = lab.run(&["drill", "shop.yaml", "--format", "json"]);
    let r = report(&out);
    assert_eq!(step(&r, "app/after/drill-only")["status"], "failed");
    assert_eq!(step(&r, "test-copy/web1")["status"], "succeeded", "later groups still get their copies");
}

/// Machines live at dc2 and replicating back to dc1, points taken for ten minutes, then dc2
/// goes dark.
fn recovery_site_lost() -> SimLab {
    let lab = SimLab::new(true);
    lab.fail_over_in_world("dc1", "dc2");
    assert_eq!(lab.run(&["sim", "advance", "shop.yaml", "12m"]).status.code(), Some(0));
    assert_eq!(lab.run(&["sim", "site", "shop.yaml", "dc2", "--down"]).status.code(), Some(0));
    assert_eq!(lab.run(&["sim", "advance", "shop.yaml", "1m"]).status.code(), Some(0));
    lab
}

#[test]
fn unplanned_failback_comes_home_from_the_latest_point_with_the_loss_shown_exactly() {
    let lab = recovery_site_lost();
    lab.target("active: dc1\nvia: unplanned");
    let out = lab.run(&["plan", "shop.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["run"], "unplanned-failback");
    assert_eq!(plan["direction"], "back");
    assert_eq!(plan["policy"], "continue");
    // The newest point reached dc1 at minute 10; dc2 went dark at minute 12, the plan is at 13.
    for m in plan["machines"].as_array().unwrap() {
        assert_eq!(m["expected_loss"]["time"], 3 * 60 * 1000, "{m}");
    }
    // What the world itself says came after the newest point (the clock is fixed).
    let mut world = lab.world();
    let now = world.now();
    let ids: Vec<String> = world.machines.keys().cloned().collect();
    for id in &ids {
        world.catch_up(id, now, 12);
    }
    let expected: std::collections::BTreeMap<String, u64> = world
        .machines
        .iter()
        .map(|(name, m)| (name.clone(), m.written - m.points.last().unwrap().generation))
        .collect();
    assert!(expected.values().all(|&b| b > 0), "the machines wrote after the point: {expected:?}");
    for m in plan["machines"].as_array().unwrap() {
        assert_eq!(m["expected_loss"]["bytes"].as_u64(), Some(expected[m["name"].as_str().unwrap()]), "{m}");
    }

    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["kind"], "unplanned-failback");
    let losses = r["data_loss"]["machines"].as_array().unwrap();
    assert_eq!(losses.len(), 5);
    for loss in losses {
        let machine = loss["machine"].as_str().unwrap();
        assert_eq!(loss["bytes"].as_u64(), Some(expected[machine]), "{machine}: exactly what came after the point");
        assert_eq!(loss["time_ms"], 3 * 60 * 1000);
    }
    assert!(
        r["notes"].to_string().contains("reprotection waits")
            || lab.world().machines.values().all(|m| m.replication.is_none())
    );
    for m in lab.world().machines.values() {
        assert_eq!(m.active, "dc1");
    }
    let history = lab.run(&["history", "shop.yaml", "--format", "json"]);
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(history["history"][0]["kind"], "unplanned-failback");
    assert_eq!(history["history"][0]["data_loss_ms"], 3 * 60 * 1000);
}

#[test]
fn a_planned_failback_to_a_dark_recovery_site_still_says_to_go_unplanned() {
    let lab = recovery_site_lost();
    lab.target("active: dc1");
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drplan::site_unreachable"), "{}", transcript(&out));
}

#[test]
fn unplanned_failback_honours_the_recovery_point() {
    let lab = recovery_site_lost();
    // Points were taken at minutes 5 and 10 after the clock's start; ask for the one at 5.
    lab.target("active: dc1\nvia: unplanned\nrecovery_point: 2026-11-01T00:07:00Z");
    let out = lab.run(&["plan", "shop.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for m in plan["machines"].as_array().unwrap() {
        assert_eq!(m["expected_loss"]["time"], 8 * 60 * 1000, "{m}");
    }
    let r = report(&apply(&lab, &[]));
    assert_eq!(r["data_loss"]["max_time_ms"], 8 * 60 * 1000);
}

#[test]
fn a_planned_failback_refuses_a_recovery_point_at_its_line() {
    let lab = SimLab::new(true);
    lab.fail_over_in_world("dc1", "dc2");
    lab.target("active: dc1\nrecovery_point: latest-app-consistent");
    let out = lab.run(&["plan", "shop.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("drplan::recovery_point_not_used"), "{stderr}");
    let line = std::fs::read_to_string(lab.path().join("shop.yaml"))
        .unwrap()
        .lines()
        .position(|l| l.contains("recovery_point"))
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("shop.yaml:{line}:")), "points at line {line}: {stderr}");
}

/// The `db` group's check is a script next to the plan: `scripts/check.sh`, which leaves a mark.
fn script_next_to_the_plan(lab: &SimLab) {
    use std::os::unix::fs::PermissionsExt;
    let scripts = lab.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let script = scripts.join("check.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"checked $DRPLAN_GROUP\" >> \"$(dirname \"$0\")/../checked.txt\"\n")
        .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.edit_plan(r#"run: ["true"], timeout: 1m"#, r#"run: [scripts/check.sh], timeout: 1m"#);
}

#[test]
fn a_saved_plan_runs_its_scripts_from_any_directory() {
    let lab = SimLab::new(true);
    script_next_to_the_plan(&lab);
    lab.target("active: dc2\nvia: unplanned");
    let out = lab.run(&["plan", "shop.yaml", "--out", "f.plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let elsewhere = tempfile::tempdir().unwrap();
    let saved = lab.path().join("f.plan");
    let out =
        common::drplan(elsewhere.path()).args(["apply", saved.to_str().unwrap(), "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(step(&report(&out), "db/after/check-db")["status"], "succeeded");
    assert_eq!(std::fs::read_to_string(lab.path().join("checked.txt")).unwrap(), "checked db\n");
}

#[test]
fn preflight_refuses_a_run_whose_script_is_missing_before_anything_starts() {
    let lab = SimLab::new(true);
    script_next_to_the_plan(&lab);
    lab.target("active: dc2\nvia: unplanned");
    assert_eq!(lab.run(&["plan", "shop.yaml", "--out", "f.plan"]).status.code(), Some(0));
    std::fs::remove_file(lab.path().join("scripts/check.sh")).unwrap();
    let before = serde_json::to_string(&lab.world().machines).unwrap();
    let out = lab.run(&["apply", "f.plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("drplan::preflight_failed"), "{stderr}");
    assert!(stderr.contains("scripts/check.sh` does not exist"), "{stderr}");
    assert_eq!(serde_json::to_string(&lab.world().machines).unwrap(), before, "nothing was touched");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.path().join(".drplan/shop/state.json")).unwrap()).unwrap();
    assert!(state.get("run").is_none(), "no run was recorded: {state}");
}

#[test]
fn preflight_refuses_to_continue_into_a_site_that_went_dark() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    // The planned failover pauses at the DNS approval, before any group boots at dc2.
    assert_eq!(apply(&lab, &[]).status.code(), Some(3));
    assert_eq!(lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]).status.code(), Some(0));
    assert_eq!(lab.run(&["sim", "site", "shop.yaml", "dc2", "--down"]).status.code(), Some(0));
    let out = lab.run(&["resume", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("drplan::preflight_failed") && stderr.contains("site `dc2` is unreachable"), "{stderr}");
    assert_eq!(lab.run(&["sim", "site", "shop.yaml", "dc2", "--up"]).status.code(), Some(0));
    let out = lab.run(&["resume", "shop.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

fn plan_json(lab: &SimLab) -> (Option<i32>, serde_json::Value) {
    let out = lab.run(&["plan", "shop.yaml", "--format", "json", "--detailed-exitcode"]);
    let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", transcript(&out)));
    (out.status.code(), value)
}

#[test]
fn plan_shows_the_unfinished_run_that_apply_would_continue() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    assert_eq!(apply(&lab, &[]).status.code(), Some(3), "paused at the DNS approval");
    let (code, plan) = plan_json(&lab);
    assert_eq!(code, Some(2), "an unfinished run is a change");
    assert_eq!(plan["run"], "planned-failover");
    assert_eq!(plan["pending"]["run"]["awaiting"], serde_json::json!(["app/before/dns"]));
    assert_eq!(plan["pending"]["run"]["same_document"], true);
    assert!(plan["pending"]["run"]["steps_done"].as_u64().unwrap() > 0);
    let out = lab.run(&["plan", "shop.yaml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Unfinished: planned failover run") && text.contains("waiting for approval of app/before/dns"),
        "{text}"
    );
    // A saved plan would cross the run.
    let out = lab.run(&["plan", "shop.yaml", "--out", "f.plan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drplan::run_in_progress"), "{}", transcript(&out));
}

#[test]
fn plan_counts_pending_commits_and_unprotected_machines_as_changes() {
    let lab = SimLab::new(true);
    lab.edit_plan("approvers: [oncall], only: [planned, failback]", "approvers: [oncall], only: [drill]");
    lab.target("active: dc2\ncommit: manual");
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let (code, plan) = plan_json(&lab);
    assert_eq!(code, Some(2), "failovers await commit and nothing replicates: {plan}");
    assert_eq!(plan["pending"]["commits"].as_array().unwrap().len(), 5);
    let unprotected = plan["pending"]["unprotected"].as_array().unwrap();
    assert_eq!(unprotected.len(), 5);
    assert!(unprotected[0]["reason"].as_str().unwrap().contains("after `drplan commit`"), "{unprotected:?}");
    let text = String::from_utf8_lossy(&lab.run(&["plan", "shop.yaml"]).stdout).into_owned();
    assert!(text.contains("awaits `drplan commit`") && text.contains("not protected"), "{text}");

    assert_eq!(lab.run(&["commit", "shop.yaml", "--auto-approve"]).status.code(), Some(0));
    let (code, _) = plan_json(&lab);
    assert_eq!(code, Some(0), "committed and reprotected: nothing left");
}

#[test]
fn reprotect_toward_a_dark_site_waits_and_the_next_apply_does_it() {
    let lab = SimLab::new(true);
    assert_eq!(lab.run(&["sim", "advance", "shop.yaml", "6m"]).status.code(), Some(0));
    assert_eq!(lab.run(&["sim", "site", "shop.yaml", "dc1", "--down"]).status.code(), Some(0));
    lab.target("active: dc2\nvia: unplanned\ncommit: manual");
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    // Committing while dc1 is dark: the commit works, reprotection waits.
    let out = lab.run(&["commit", "shop.yaml", "--auto-approve", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert!(r["steps"].as_array().unwrap().iter().all(|s| s["status"] == "succeeded"), "{r}");
    let (code, plan) = plan_json(&lab);
    assert_eq!(code, Some(2));
    let reasons: Vec<&str> =
        plan["pending"]["unprotected"].as_array().unwrap().iter().map(|u| u["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 5);
    assert!(reasons.iter().all(|r| r.contains("waits for dc1 to be reachable")), "{reasons:?}");
    assert_eq!(apply(&lab, &[]).status.code(), Some(0), "nothing fails while dc1 is dark");
    assert_eq!(lab.run(&["sim", "site", "shop.yaml", "dc1", "--up"]).status.code(), Some(0));
    let out = apply(&lab, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(lab.world().machines.values().all(|m| m.replication.as_ref().is_some_and(|r| r.from == "dc2")));
    assert_eq!(plan_json(&lab).0, Some(0));
}

#[test]
fn changing_the_recovery_point_records_the_new_data_loss() {
    let lab = SimLab::new(true);
    assert_eq!(lab.run(&["sim", "advance", "shop.yaml", "12m"]).status.code(), Some(0));
    lab.target("active: dc2\nvia: unplanned\ncommit: manual");
    let r = report(&apply(&lab, &[]));
    assert_eq!(r["data_loss"]["max_time_ms"], 2 * 60 * 1000, "from the point at minute 10");
    let out =
        lab.run(&["rollback", "shop.yaml", "--point", "2026-11-01T00:07:00Z", "--auto-approve", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert_eq!(r["data_loss"]["max_time_ms"], 7 * 60 * 1000, "from the point at minute 5, counted from the failover");
    assert_eq!(r["data_loss"]["within_rpo"], false, "the RPO is 5m");
    assert!(r["data_loss"]["machines"].as_array().unwrap().iter().all(|m| m["bytes"].as_u64().unwrap() > 0));
    let history = lab.run(&["history", "shop.yaml", "--format", "json"]);
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(history["history"][0]["kind"], "rollback");
    assert_eq!(history["history"][0]["data_loss_ms"], 7 * 60 * 1000);
    let text = String::from_utf8_lossy(&lab.run(&["history", "shop.yaml"]).stdout).into_owned();
    assert!(text.contains("data loss 7m (> 5m!)"), "{text}");
}

#[test]
fn a_missing_site_directory_is_one_diagnostic_at_its_path_and_plan_leaves_no_state() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sites/west")).unwrap();
    let plan = "version: 1\nname: typo\nsites:\n  dc1: { provider: local, path: sitez/east }\n  dc2: { provider: local, path: sites/west }\n\
                protection: { primary: dc1, recovery: dc2, rpo: 5m, rto: 30m }\n\
                networks: [ { source: prod, target: dr, test: drill } ]\n\
                machines: [ { name: m1 }, { name: m2 }, { name: m3 } ]\n\
                groups: [ { name: all, machines: [m1, m2, m3] } ]\ntarget: { active: dc1 }\n";
    std::fs::write(dir.path().join("typo.yaml"), plan).unwrap();
    let out = common::drplan(dir.path()).args(["plan", "typo.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("drplan::site_unreachable").count(), 1, "{stderr}");
    assert!(!stderr.contains("machine_not_found"), "{stderr}");
    assert!(stderr.contains("typo.yaml:4:33"), "points at sites.dc1.path: {stderr}");
    assert!(!dir.path().join(".drplan").exists(), "a failed plan leaves no state behind");
}

fn history(lab: &SimLab) -> Vec<serde_json::Value> {
    let out = lab.run(&["history", "shop.yaml", "--format", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    value["history"].as_array().unwrap().clone()
}

#[test]
fn a_step_that_failed_then_succeeded_on_resume_keeps_both_attempts() {
    let lab = SimLab::new(true);
    lab.edit_plan("approvers: [oncall], only: [planned, failback]", "approvers: [oncall], only: [drill]");
    lab.edit_world(|w| {
        let op = drplan::contract::OpKind::Start;
        w.faults.push(drplan::providers::sim::world::Fault {
            op: Some(op),
            machine: Some("app1".into()),
            site: None,
            kind: drplan::providers::sim::world::FaultKind::Error,
            times: Some(1),
            triggered: 0,
            message: Some("no capacity".into()),
        });
    });
    lab.target("active: dc2");
    assert_eq!(apply(&lab, &[]).status.code(), Some(1));
    let out = lab.run(&["resume", "shop.yaml", "--format", "json", "--report", "evidence"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    let start = step(&r, "start/app1");
    assert_eq!(start["status"], "succeeded");
    assert_eq!(start["attempts"], 2, "{start}");
    assert_eq!(start["attempt_log"][0]["result"], "failed");
    assert!(start["attempt_log"][0]["error"].as_str().unwrap().contains("no capacity"));
    assert_eq!(start["attempt_log"][1]["result"], "succeeded");
    let md = std::fs::read_to_string(lab.path().join("evidence/report.md")).unwrap();
    assert!(md.contains("succeeded after 2 attempts") && md.contains("no capacity"), "{md}");
    let junit = std::fs::read_to_string(lab.path().join("evidence/junit.xml")).unwrap();
    assert!(junit.contains("earlier attempt failed: no capacity"), "{junit}");
}

#[test]
fn a_cancelled_run_and_a_partial_drill_are_history_too() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    assert_eq!(apply(&lab, &[]).status.code(), Some(3));
    assert_eq!(lab.run(&["cancel", "shop.yaml"]).status.code(), Some(0));
    let entries = history(&lab);
    assert_eq!(entries[0]["status"], "cancelled");
    assert_eq!(entries[0]["kind"], "planned-failover");

    // A drill that pauses at an approval, then is completed without it.
    let lab = SimLab::new(true);
    lab.edit_plan("approvers: [oncall], only: [planned, failback]", "approvers: [oncall], only: [drill]");
    assert_eq!(lab.run(&["drill", "shop.yaml"]).status.code(), Some(3));
    assert_eq!(lab.run(&["drill", "complete", "shop.yaml"]).status.code(), Some(0));
    let entries = history(&lab);
    assert_eq!(entries[0]["kind"], "drill-cleanup");
    assert_eq!(entries[1]["kind"], "drill");
    assert_eq!(entries[1]["status"], "paused");
    assert_eq!(entries[1]["drill"], entries[0]["drill"]);
}

#[test]
fn approving_twice_records_one_approval() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    assert_eq!(apply(&lab, &[]).status.code(), Some(3));
    for _ in 0..2 {
        let out = lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    }
    let out = lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already approved by oncall"), "{}", transcript(&out));
    let r = report(&lab.run(&["resume", "shop.yaml", "--format", "json"]));
    assert_eq!(r["approvals"].as_array().unwrap().len(), 1, "{}", r["approvals"]);
}

#[test]
fn resume_updates_the_evidence_folder_the_run_started_with() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    assert_eq!(apply(&lab, &["--report", "evidence"]).status.code(), Some(3));
    let paused: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.path().join("evidence/report.json")).unwrap()).unwrap();
    assert_eq!(paused["status"], "paused");
    assert_eq!(lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]).status.code(), Some(0));
    let elsewhere = tempfile::tempdir().unwrap();
    let out = common::drplan(elsewhere.path())
        .args(["resume", lab.path().join("shop.yaml").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let done: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.path().join("evidence/report.json")).unwrap()).unwrap();
    assert_eq!(done["status"], "succeeded");
    assert!(!elsewhere.path().join("evidence").exists());
}

/// Every line on stderr is one JSON object; returns them.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}\n{}", transcript(out)))
        })
        .collect()
}

fn json_logged(lab: &SimLab, args: &[&str]) -> Output {
    let mut full = args.to_vec();
    full.extend(["--log-format", "json"]);
    common::drplan(lab.path()).env_remove("DRPLAN_LOG").args(&full).output().unwrap()
}

#[test]
fn json_logs_mean_json_lines_only_on_stderr() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    // A pause, an approval, a continued run, and evidence written.
    let out = json_logged(&lab, &["apply", "shop.yaml", "--auto-approve", "--report", "evidence"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(json_lines(&out).iter().any(|e| e["message"] == "waiting for approval"));
    let out = json_logged(&lab, &["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]);
    json_lines(&out);
    let out = json_logged(&lab, &["resume", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let events = json_lines(&out);
    assert!(
        events.iter().any(|e| e["message"].as_str().is_some_and(|m| m.starts_with("Continuing run"))),
        "{events:?}"
    );
    // A drill with its cleanup, and a replication round.
    let out = json_logged(&lab, &["drill", "shop.yaml", "--auto-complete", "--notes", "json | check"]);
    json_lines(&out);
    let out = json_logged(&lab, &["replicate", "shop.yaml"]);
    let events = json_lines(&out);
    assert_eq!(events.iter().filter(|e| e["message"] == "recovery point taken").count(), 5, "{events:?}");
    // Errors: a diagnostic with its code and position, and a bad command line.
    lab.edit_plan("rpo: 5m", "rpo: soon");
    let out = json_logged(&lab, &["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let events = json_lines(&out);
    assert_eq!(events[0]["code"], "drplan::invalid_duration", "{events:?}");
    assert!(events[0]["line"].as_u64().is_some());
    let out = json_logged(&lab, &["plan", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out)[0]["code"], "drplan::usage");
}

#[test]
fn an_auto_completed_drill_that_waits_for_an_approval_stays_open_until_resumed() {
    let lab = SimLab::new(true);
    lab.edit_plan("approvers: [oncall], only: [planned, failback]", "approvers: [oncall], only: [drill]");
    let out = lab.run(&["drill", "shop.yaml", "--auto-complete"]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`drplan resume` finishes it"), "{}", transcript(&out));
    let copies = |lab: &SimLab| lab.world().machines.values().map(|m| m.test_copies.len()).sum::<usize>();
    assert!(copies(&lab) > 0, "the drill is still open");
    // The approval the output asked for works, and resuming finishes the drill and cleans up.
    let out = lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = lab.run(&["resume", "shop.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(report(&out)["kind"], "drill", "stdout holds the drill's report");
    assert_eq!(copies(&lab), 0);
    let entries = history(&lab);
    assert_eq!(entries[0]["kind"], "drill-cleanup");
    assert_eq!(entries[1]["kind"], "drill");
    assert_eq!(entries[1]["status"], "succeeded");
}

#[test]
fn sim_bytes_moved_match_the_plan_estimate() {
    let lab = SimLab::new(true);
    assert_eq!(lab.run(&["sim", "advance", "shop.yaml", "37m"]).status.code(), Some(0));
    lab.edit_plan("approvers: [oncall], only: [planned, failback]", "approvers: [oncall], only: [drill]");
    lab.target("active: dc2");
    let (_, plan) = plan_json(&lab);
    let planned: u64 = plan["machines"].as_array().unwrap().iter().filter_map(|m| m["transfer_bytes"].as_u64()).sum();
    let r = report(&apply(&lab, &[]));
    let moved: u64 = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "sync")
        .filter_map(|s| s["outcome"]["bytes_transferred"].as_u64())
        .sum();
    assert!(planned > 0);
    assert_eq!(moved, planned, "the final syncs move what the plan said");
}

#[test]
fn a_group_with_a_machine_that_did_not_start_is_not_up() {
    let lab = SimLab::new(true);
    lab.edit_world(|w| {
        w.faults.push(drplan::providers::sim::world::Fault {
            op: Some(drplan::contract::OpKind::Start),
            machine: Some("db2".into()),
            site: None,
            kind: drplan::providers::sim::world::FaultKind::Error,
            times: None,
            triggered: 0,
            message: None,
        });
    });
    lab.target("active: dc2\nvia: unplanned");
    let out = apply(&lab, &[]);
    let r = report(&out);
    let db = r["rto"]["groups"].as_array().unwrap().iter().find(|g| g["group"] == "db").unwrap();
    assert_eq!(db["up"], false, "{db}");
    assert_eq!(db["failed"], serde_json::json!(["start/db2"]));
    assert_eq!(r["rto"]["met"], false, "a recovery with a group down meets no objective");
    let human = lab.run(&["report", "shop.yaml", r["run"].as_str().unwrap(), "--out", "ev"]);
    assert_eq!(human.status.code(), Some(0));
    let md = std::fs::read_to_string(lab.path().join("ev/report.md")).unwrap();
    assert!(md.contains("| db | ❌ not up: start/db2 |"), "{md}");
}

#[test]
fn counts_are_singular_when_there_is_one() {
    let lab = SimLab::new(true);
    lab.edit_plan(r#"run: ["true"], timeout: 1m"#, r#"run: ["true"], timeout: 1m, retries: 1"#);
    lab.target("active: dc2");
    let text = String::from_utf8_lossy(&lab.run(&["plan", "shop.yaml"]).stdout).into_owned();
    assert!(text.contains("1 retry") && !text.contains("1 retries"), "{text}");
}
