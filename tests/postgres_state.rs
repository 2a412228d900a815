//! State in PostgreSQL against a real server: `.ci/run` starts a throwaway cluster under
//! `target/` and sets `DRPLAN_TEST_PG_URL`; without it these tests say they are skipped (and
//! fail where `DRPLAN_REQUIRE_TOOLS` is set). Each test uses plans of its own name, so they
//! share the database without seeing each other.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{SimLab, assert_each_step_succeeded_once, report, transcript};
use drplan::state::{PgStore, StateStore};

const URL_ENV: &str = "DRPLAN_TEST_PG_URL";

fn server() -> bool {
    if std::env::var_os(URL_ENV).is_some() {
        return true;
    }
    assert!(std::env::var_os("DRPLAN_REQUIRE_TOOLS").is_none(), "{URL_ENV} is not set (DRPLAN_REQUIRE_TOOLS is set)");
    eprintln!("skipped: no PostgreSQL here ({URL_ENV} unset; `.ci/run` starts one)");
    false
}

/// A sim lab whose plan keeps its state in PostgreSQL under a name no other test uses.
fn pg_lab(protected: bool, name: &str) -> SimLab {
    let lab = SimLab::new(protected);
    let unique = format!(
        "{name}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000
    );
    lab.edit_plan("name: shop", &format!("name: {unique}"));
    lab.edit_plan("\ntarget:\n", &format!("\nstate: {{ backend: postgres, url_env: {URL_ENV} }}\ntarget:\n"));
    lab
}

fn plan_name(lab: &SimLab) -> String {
    let text = std::fs::read_to_string(lab.path().join("shop.yaml")).unwrap();
    text.lines().find_map(|l| l.strip_prefix("name: ")).unwrap().trim().to_string()
}

fn store(lab: &SimLab) -> PgStore {
    PgStore::for_plan(&lab.path().join("shop.yaml"), &plan_name(lab), URL_ENV).unwrap()
}

#[test]
fn a_run_keeps_its_state_and_journal_in_postgres_and_the_url_nowhere() {
    if !server() {
        return;
    }
    let lab = pg_lab(true, "roundtrip");
    lab.target("active: dc2\nvia: unplanned");
    let out = lab.run(&["apply", "shop.yaml", "--auto-approve", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let run = report(&out)["run"].as_str().unwrap().to_string();
    let store = store(&lab);
    let state = store.load().unwrap();
    assert_eq!(state.history.len(), 1, "the run is in the state's history");
    assert!(!store.read_journal(&run).unwrap().is_empty());
    // Nothing of the state is a file beside the plan.
    assert!(!lab.path().join(format!(".drplan/{}/state.json", plan_name(&lab))).exists());
    let history = lab.run(&["history", "shop.yaml"]);
    assert_eq!(history.status.code(), Some(0), "{}", transcript(&history));
    // The connection string is in no output.
    let url = std::env::var(URL_ENV).unwrap();
    for text in [transcript(&out), transcript(&history)] {
        assert!(!text.contains(&url), "the connection string leaked: {text}");
    }
}

#[test]
fn of_two_applies_at_once_exactly_one_runs_and_the_other_names_the_holder() {
    if !server() {
        return;
    }
    for trial in 0..20 {
        let lab = pg_lab(true, "race");
        lab.edit_world(|w| w.time_scale = 0.001);
        lab.target("active: dc2\nvia: unplanned");
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_drplan"))
                .current_dir(lab.path())
                .args(["apply", "shop.yaml", "--auto-approve", "--format", "json"])
                .env("NO_COLOR", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        // A run prints its report; one that waited for the lock and found nothing to do
        // prints none.
        let ran: Vec<&std::process::Output> = outs
            .iter()
            .filter(|o| {
                let report: Option<serde_json::Value> = serde_json::from_slice(&o.stdout).ok();
                o.status.code() == Some(0)
                    && report.is_some_and(|r| r["steps"].as_array().is_some_and(|s| !s.is_empty()))
            })
            .collect();
        assert_eq!(ran.len(), 1, "trial {trial}: exactly one ran: {}\n{}", transcript(&outs[0]), transcript(&outs[1]));
        for out in &outs {
            if out.status.code() == Some(0) {
                continue; // ran, or waited and found nothing to do
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("is locked by") && err.contains("pid"),
                "trial {trial}: refused naming the holder: {err}"
            );
        }
        assert_eq!(store(&lab).load().unwrap().history.len(), 1, "trial {trial}: one run in history");
    }
}

#[test]
fn kill_9_of_the_holder_frees_the_lock_and_resume_completes_without_repeating_a_step() {
    if !server() {
        return;
    }
    let lab = pg_lab(true, "kill");
    lab.edit_world(|w| w.time_scale = 0.002);
    lab.target("active: dc2\nvia: unplanned");
    let mut child = Command::new(env!("CARGO_BIN_EXE_drplan"))
        .current_dir(lab.path())
        .args(["apply", "shop.yaml", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the run is recorded and under way.
    let store = store(&lab);
    for _ in 0..200 {
        if store.load().is_ok_and(|s| s.run.is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(80));
    child.kill().unwrap();
    child.wait().unwrap();
    let state = store.load().unwrap();
    assert!(state.run.is_some(), "the run was killed midway");
    // The state does not move while a run is open.
    let out = lab.run(&["state", "migrate", "shop.yaml", "--to", "file"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is open"), "{}", transcript(&out));
    // The server ended the dead holder's session, and with it the lock.
    let out = lab.run(&["resume", "shop.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    let journal = store.read_journal(r["run"].as_str().unwrap()).unwrap();
    assert_each_step_succeeded_once(&journal, &r);
}

#[test]
fn unlock_force_ends_a_live_holders_session() {
    if !server() {
        return;
    }
    let lab = pg_lab(true, "unlock");
    let store = store(&lab);
    let held = store.lock("drplan apply (test)").unwrap();
    let out = lab.run(&["apply", "shop.yaml", "--auto-approve"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drplan apply (test)"), "{}", transcript(&out));
    let out = lab.run(&["unlock", "shop.yaml", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    std::thread::sleep(Duration::from_millis(200));
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    drop(held);
}

#[test]
fn lock_timeout_waits_for_the_holder_to_finish() {
    if !server() {
        return;
    }
    let lab = pg_lab(true, "wait");
    lab.target("active: dc2\nvia: unplanned");
    let store = store(&lab);
    let held = store.lock("drplan apply (test)").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_drplan"))
        .current_dir(lab.path())
        .args(["apply", "shop.yaml", "--auto-approve", "--lock-timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "waited, then ran: {}", transcript(&out));
    assert_eq!(store.load().unwrap().history.len(), 1);
}

#[test]
fn state_migrates_to_postgres_and_back_losslessly() {
    if !server() {
        return;
    }
    let lab = pg_lab(true, "migrate");
    // Start on file state: the lab without its state block.
    lab.edit_plan(&format!("\nstate: {{ backend: postgres, url_env: {URL_ENV} }}\n"), "\n");
    lab.target("active: dc2\nvia: unplanned");
    let out = lab.run(&["apply", "shop.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let history_before = lab.run(&["history", "shop.yaml", "--format", "json"]);

    let out = lab.run(&["state", "migrate", "shop.yaml", "--to", "postgres", "--url-env", URL_ENV]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("read it back equal"), "{}", transcript(&out));
    lab.edit_plan("\ntarget:\n", &format!("\nstate: {{ backend: postgres, url_env: {URL_ENV} }}\ntarget:\n"));
    let history_pg = lab.run(&["history", "shop.yaml", "--format", "json"]);
    assert_eq!(history_pg.stdout, history_before.stdout, "the history reads the same from PostgreSQL");
    let out = lab.run(&["plan", "shop.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "nothing left to do: {}", transcript(&out));
    // A second migration into state that exists is refused.
    let out = lab.run(&["state", "migrate", "shop.yaml", "--to", "file"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds state"), "{}", transcript(&out));

    // Back to files, into a fresh folder.
    std::fs::rename(lab.path().join(".drplan"), lab.path().join(".drplan-before")).unwrap();
    let out = lab.run(&["state", "migrate", "shop.yaml", "--to", "file"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    lab.edit_plan(&format!("\nstate: {{ backend: postgres, url_env: {URL_ENV} }}\n"), "\n");
    let history_file = lab.run(&["history", "shop.yaml", "--format", "json"]);
    assert_eq!(history_file.stdout, history_before.stdout, "and the same again from files");
}

/// Each provider step of `lab`'s next run at `site`, by id (from the plan drplan shows).
fn steps_at(lab: &SimLab, site: &str) -> std::collections::BTreeSet<String> {
    let out = lab.run(&["plan", "shop.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let plan: drplan::planner::ActionPlan = serde_json::from_slice(&out.stdout).unwrap();
    plan.actions
        .iter()
        .filter(|a| matches!(&a.kind, drplan::planner::ActionKind::Provider { op } if op.site() == site))
        .map(|a| a.id.clone())
        .collect()
}

#[test]
fn two_plans_sharing_a_limited_site_never_have_more_than_its_limit_in_flight_there() {
    if !server() {
        return;
    }
    let labs = [pg_lab(true, "share_a"), pg_lab(true, "share_b")];
    let mut at_dc2 = Vec::new();
    for lab in &labs {
        lab.edit_plan(
            "dc2: { provider: sim, path: world.json }",
            "dc2: { provider: sim, path: world.json, max_parallel: 3 }",
        );
        lab.edit_world(|w| w.time_scale = 0.01);
        lab.target("active: dc2\nvia: unplanned");
        at_dc2.push(steps_at(lab, "dc2"));
    }
    assert!(at_dc2.iter().all(|steps| steps.len() >= 10), "each plan has work at dc2: {at_dc2:?}");
    let children: Vec<_> = labs
        .iter()
        .map(|lab| {
            Command::new(env!("CARGO_BIN_EXE_drplan"))
                .current_dir(lab.path())
                .args(["apply", "shop.yaml", "--auto-approve", "--format", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    // Every operation at dc2 as an interval from the journals: (start, end, plan).
    let mut intervals = Vec::new();
    for ((lab, out), steps) in labs.iter().zip(&outs).zip(&at_dc2) {
        assert_eq!(out.status.code(), Some(0), "{}", transcript(out));
        let journal = store(lab).read_journal(report(out)["run"].as_str().unwrap()).unwrap();
        let mut started = std::collections::BTreeMap::new();
        for record in journal.iter().filter(|r| steps.contains(&r.step)) {
            match &record.event {
                drplan::state::JournalEvent::Started { .. } => drop(started.insert(record.step.clone(), record.at)),
                drplan::state::JournalEvent::Succeeded { .. } | drplan::state::JournalEvent::Failed { .. } => {
                    intervals.push((started.remove(&record.step).unwrap(), record.at, plan_name(lab)));
                }
                _ => {}
            }
        }
        assert_eq!(intervals.iter().filter(|i| i.2 == plan_name(lab)).count(), steps.len());
    }
    // Sweep the starts and ends in time order (an end before a start at the same instant).
    let mut edges: Vec<(std::time::SystemTime, i32, &str)> = Vec::new();
    for (start, end, plan) in &intervals {
        edges.push((*start, 1, plan));
        edges.push((*end, -1, plan));
    }
    edges.sort();
    let (mut in_flight, mut most, mut by_plan) = (0, 0, std::collections::BTreeMap::<&str, i32>::new());
    let mut together = false;
    for (_, change, plan) in edges {
        in_flight += change;
        *by_plan.entry(plan).or_default() += change;
        most = most.max(in_flight);
        together |= by_plan.values().filter(|n| **n > 0).count() == 2;
    }
    assert!(together, "the two runs had operations at dc2 in flight at the same time");
    assert!(most <= 3, "at most 3 operations in flight at dc2, found {most}");
    assert_eq!(most, 3, "the limit was reached (so it was what held them back)");
    // Who waited said so.
    let said = outs.iter().any(|o| String::from_utf8_lossy(&o.stderr).contains("waits for a slot at dc2"));
    assert!(said, "{}\n{}", transcript(&outs[0]), transcript(&outs[1]));
}
