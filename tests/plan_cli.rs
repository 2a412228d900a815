//! `drplan plan`, `show` and `graph` against the sim provider: the plan for every transition,
//! stale plan detection, and clear diagnostics for every bad input.

mod common;

use common::{SimLab, normalize_plan_json, transcript};
use drplan::contract::Power;
use serde_json::Value;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn plan_json(lab: &SimLab) -> Value {
    let out = lab.run(&["plan", "shop.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn action_ids(plan: &Value) -> Vec<String> {
    plan["actions"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
}

fn position(ids: &[String], id: &str) -> usize {
    ids.iter().position(|i| i == id).unwrap_or_else(|| panic!("no action {id} in {ids:?}"))
}

fn snapshot_plan(name: &str, lab: &SimLab) {
    let human = lab.run(&["plan", "shop.yaml"]);
    insta::assert_snapshot!(format!("{name}_human"), transcript(&human));
    let mut json = plan_json(lab);
    normalize_plan_json(&mut json, lab.path());
    insta::assert_json_snapshot!(format!("{name}_json"), json);
}

#[test]
fn unprotected_estate_plans_protection_only() {
    let lab = SimLab::new(false);
    snapshot_plan("protect", &lab);
    let plan = plan_json(&lab);
    assert_eq!(plan["run"], "converge");
    let kinds: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"]["type"] == "provider")
        .map(|a| a["kind"]["op"]["op"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["enable-protection"; 5]);
}

#[test]
fn protected_steady_state_has_no_changes() {
    let lab = SimLab::new(true);
    let out = lab.run(&["plan", "shop.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    insta::assert_snapshot!(stdout(&out));
}

/// A machine that runs but whose guest never came up (a start that timed out) is not "no
/// changes": the plan starts it (the provider waits for the guest), and a planned failover
/// still shuts it down before its final sync.
#[test]
fn a_booting_machine_is_started_and_still_shut_down_before_a_move() {
    let lab = SimLab::new(true);
    lab.edit_world(|w| w.machines.get_mut("app1").unwrap().copies.get_mut("dc1").unwrap().power = Power::Booting);
    let out = lab.run(&["plan", "shop.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let text = stdout(&out);
    assert!(text.contains("app1 at dc1 (already running: waits for its guest to come up)"), "{text}");
    assert_eq!(action_ids(&plan_json(&lab)).iter().filter(|id| id.starts_with("start/")).count(), 1, "{text}");

    let out = lab.run(&["apply", "shop.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = lab.run(&["plan", "shop.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "the guest is up now: {}", transcript(&out));

    lab.edit_world(|w| w.machines.get_mut("app1").unwrap().copies.get_mut("dc1").unwrap().power = Power::Booting);
    lab.target("active: dc2");
    let ids = action_ids(&plan_json(&lab));
    assert!(position(&ids, "shutdown/app1") < position(&ids, "sync/app1"), "{ids:?}");
}

#[test]
fn planned_failover_follows_the_documented_order() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    let out = lab.run(&["plan", "shop.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "changes exit 2: {}", transcript(&out));
    snapshot_plan("planned_failover", &lab);

    let plan = plan_json(&lab);
    assert_eq!(plan["run"], "planned-failover");
    assert_eq!(plan["policy"], "stop");
    let ids = action_ids(&plan);
    // Shutdown in reverse group order: web (waits for app) before app, app before db and cache.
    assert!(position(&ids, "shutdown/web1") < position(&ids, "shutdown/app1"));
    assert!(position(&ids, "shutdown/app1") < position(&ids, "shutdown/db1"));
    assert!(position(&ids, "shutdown/app1") < position(&ids, "shutdown/cache1"));
    let app_shutdown = &plan["actions"][position(&ids, "shutdown/db1")];
    assert!(app_shutdown["after"].as_array().unwrap().iter().any(|a| a == "stopped/app"));
    // Final sync after shutdown, failover after sync, start after failover, in group order.
    for m in ["db1", "db2", "cache1", "app1", "web1"] {
        let (s, y, f, b) = (
            position(&ids, &format!("shutdown/{m}")),
            position(&ids, &format!("sync/{m}")),
            position(&ids, &format!("failover/{m}")),
            position(&ids, &format!("start/{m}")),
        );
        assert!(s < y && y < f && f < b, "{m}: {s} {y} {f} {b}");
        assert!(position(&ids, &format!("commit/{m}")) > position(&ids, "booted"));
        assert!(position(&ids, &format!("reprotect/{m}")) > position(&ids, &format!("commit/{m}")));
    }
    assert!(position(&ids, "start/app1") > position(&ids, "done/db"));
    assert!(position(&ids, "start/app1") > position(&ids, "done/cache"));
    assert!(position(&ids, "app/before/dns") < position(&ids, "start/app1"));
    assert!(position(&ids, "app/after/smoke") > position(&ids, "start/app1"));
    assert!(!ids.contains(&"app/after/drill-only".to_string()), "drill-only steps do not run in a failover");
    assert!(ids.contains(&"notify/after/page".to_string()), "script-only groups run");
    // Zero data loss, addresses mapped.
    assert_eq!(plan["summary"]["expected_data_loss"]["max_time_ms"], 0);
    let failover = &plan["actions"][position(&ids, "failover/db1")]["kind"]["op"];
    assert_eq!(failover["nics"][0]["ip"], "10.9.0.10");
    assert_eq!(failover["point"], Value::Null);
}

#[test]
fn unplanned_failover_has_no_required_shutdown_and_shows_data_loss() {
    let lab = SimLab::new(true);
    assert_eq!(lab.run(&["sim", "advance", "shop.yaml", "7m"]).status.code(), Some(0));
    lab.target("active: dc2\nvia: unplanned");
    snapshot_plan("unplanned_failover", &lab);
    let plan = plan_json(&lab);
    assert_eq!(plan["run"], "unplanned-failover");
    assert_eq!(plan["policy"], "continue");
    let ids = action_ids(&plan);
    assert!(!ids.iter().any(|i| i.starts_with("shutdown/") || i.starts_with("sync/")), "{ids:?}");
    let loss = &plan["summary"]["expected_data_loss"];
    assert_eq!(loss["max_time_ms"], 120_000, "points every 5m; the last is 2m old");
    assert!(loss["total_bytes"].as_u64().unwrap() > 0);
    let failover = &plan["actions"][position(&ids, "failover/db1")]["kind"]["op"];
    assert!(failover["point"].as_u64().is_some());
}

#[test]
fn unplanned_failover_may_try_a_shutdown_first() {
    let lab = SimLab::new(true);
    lab.target("active: dc2\nvia: unplanned\ntry_shutdown: true");
    let plan = plan_json(&lab);
    let ids = action_ids(&plan);
    let shutdown = &plan["actions"][position(&ids, "shutdown/db1")];
    assert_eq!(shutdown["on_failure"], "continue");
    let failover = &plan["actions"][position(&ids, "failover/db1")];
    assert_eq!(failover["after"][0], "sync/db1", "waits for the sync but does not need it");
    assert!(failover.get("needs").is_none());
    assert_eq!(failover["kind"]["op"]["prefer_synced"], true);
}

#[test]
fn failback_with_delta_sync_has_the_complete_failover_gate() {
    let lab = SimLab::new(true);
    lab.fail_over_in_world("dc1", "dc2");
    lab.edit_world(|w| {
        // Drift while running at dc2: more memory for db1.
        let db1 = w.machines.get_mut("db1").unwrap();
        db1.copies.get_mut("dc2").unwrap().settings.insert("memory_mib".into(), "65536".into());
    });
    lab.target("active: dc1\nsync: delta");
    snapshot_plan("failback_delta", &lab);
    let plan = plan_json(&lab);
    assert_eq!(plan["run"], "failback");
    let ids = action_ids(&plan);
    for m in ["db1", "web1"] {
        assert!(position(&ids, &format!("presync/{m}")) < position(&ids, "gate/complete-failover"));
        assert!(position(&ids, "gate/complete-failover") < position(&ids, &format!("shutdown/{m}")));
    }
    let sync = &plan["actions"][position(&ids, "sync/db1")]["kind"]["op"];
    assert_eq!((sync["mode"].as_str(), sync["final_sync"].as_bool()), (Some("delta"), Some(true)));
    assert!(plan["drift"][0]["diff"].as_str().unwrap().contains("+  memory_mib: 65536"));
    assert!(!ids.contains(&"notify/after/page".to_string()), "`direction: [forward]` steps skip failbacks");
}

#[test]
fn failback_with_full_sync_copies_everything_after_shutdown() {
    let lab = SimLab::new(true);
    lab.fail_over_in_world("dc1", "dc2");
    lab.target("active: dc1\nsync: full");
    snapshot_plan("failback_full", &lab);
    let plan = plan_json(&lab);
    let ids = action_ids(&plan);
    assert!(!ids.iter().any(|i| i.starts_with("presync/") || i.starts_with("gate/")));
    let sync = &plan["actions"][position(&ids, "sync/db1")]["kind"]["op"];
    assert_eq!(sync["mode"], "full");
}

#[test]
fn failback_to_an_alternate_location() {
    let lab = SimLab::new(true);
    lab.fail_over_in_world("dc1", "dc2");
    lab.target("active: dc1\nlocation: { alternate: dc3 }\nsync: full");
    let plan = plan_json(&lab);
    assert_eq!(plan["to"], "dc3");
    let ids = action_ids(&plan);
    let reprotect = &plan["actions"][position(&ids, "reprotect/db1")]["kind"]["op"];
    assert_eq!((reprotect["from"].as_str(), reprotect["to"].as_str()), (Some("dc3"), Some("dc2")));
}

#[test]
fn failback_without_reprotection_is_refused() {
    let lab = SimLab::new(true);
    lab.fail_over_in_world("dc1", "dc2");
    lab.edit_world(|w| w.machines.get_mut("db1").unwrap().replication = None);
    lab.target("active: dc1");
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&out));
}

#[test]
fn unsupported_combinations_are_refused_at_plan_time() {
    let lab = SimLab::new(true);
    lab.fail_over_in_world("dc1", "dc2");
    lab.edit_world(|w| w.support.failback_delta = false);
    lab.target("active: dc1\nsync: delta");
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drplan::unsupported_operation"), "{}", transcript(&out));
}

#[test]
fn freeze_and_thaw_programs_need_a_provider_that_takes_app_consistent_points() {
    let lab = SimLab::new(true);
    lab.edit_plan(
        "  - name: app1\n    nics: [ { network: prod, ip: 10.0.0.30 } ]",
        "  - name: app1\n    nics: [ { network: prod, ip: 10.0.0.30 } ]\n    consistency: { freeze: [sync], thaw: [true] }",
    );
    assert_eq!(lab.run(&["plan", "shop.yaml"]).status.code(), Some(0));
    lab.edit_world(|w| w.support.app_consistent_points = false);
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("drplan::unsupported_operation") && stderr.contains("`app1` gives freeze and thaw"),
        "{stderr}"
    );
}

#[test]
fn planned_failover_needs_the_source_site() {
    let lab = SimLab::new(true);
    assert_eq!(lab.run(&["sim", "site", "shop.yaml", "dc1", "--down"]).status.code(), Some(0));
    lab.target("active: dc2");
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&out));
    // Unplanned works without it.
    lab.target("active: dc2\nvia: unplanned");
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn saved_plans_detect_every_kind_of_staleness() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    let out = lab.run(&["plan", "shop.yaml", "--out", "run.plan", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let planned: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fresh = lab.run(&["show", "run.plan", "--format", "json"]);
    let mut fresh: Value = serde_json::from_slice(&fresh.stdout).unwrap();
    assert_eq!(fresh["stale"], serde_json::json!([]));
    // `show` prints exactly what `plan` printed, plus `stale`.
    fresh.as_object_mut().unwrap().remove("stale");
    assert_eq!(fresh, planned);

    // Inventory: a machine was switched off behind the plan's back.
    lab.edit_world(|w| w.machines.get_mut("app1").unwrap().copies.get_mut("dc1").unwrap().power = Power::Off);
    let out = lab.run(&["show", "run.plan"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("drplan::stale_plan") && stderr.contains("`app1`"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "a stale plan exits 1, as apply would refuse it");

    // State serial.
    lab.edit_world(|w| w.machines.get_mut("app1").unwrap().copies.get_mut("dc1").unwrap().power = Power::On);
    let store = drplan::state::FileStore::for_plan(&lab.path().join("shop.yaml"), "shop");
    let mut state = drplan::state::StateStore::load(&store).unwrap();
    drplan::state::StateStore::save(&store, &mut state).unwrap();
    let out = lab.run(&["show", "run.plan", "--format", "json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["stale"][0], "the state changed (serial 1 → 2)");

    // The document.
    lab.target("active: dc2\nvia: unplanned");
    let out = lab.run(&["show", "run.plan", "--format", "json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["stale"][0], "the plan document changed");
}

#[test]
fn show_renders_a_saved_plan_like_plan_does() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    let planned = lab.run(&["plan", "shop.yaml", "--out", "run.plan"]);
    let shown = lab.run(&["show", "run.plan"]);
    assert_eq!(shown.status.code(), Some(0), "{}", transcript(&shown));
    let (planned, shown) = (stdout(&planned), stdout(&shown));
    let rendered = &shown[..shown.find("\nThe saved plan is current").expect("says it is current")];
    assert!(planned.starts_with(rendered), "{planned}\n---\n{shown}");
    assert!(shown.contains("`drplan apply run.plan` executes exactly this"), "{shown}");
}

#[test]
fn corrupt_and_foreign_plan_files_are_diagnosed() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    assert_eq!(lab.run(&["plan", "shop.yaml", "--out", "run.plan"]).status.code(), Some(0));
    let text = std::fs::read_to_string(lab.path().join("run.plan")).unwrap();

    std::fs::write(lab.path().join("edited.plan"), text.replacen("\"shutdown/db1\"", "\"shutdown/db9\"", 1)).unwrap();
    let out = lab.run(&["show", "edited.plan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"), "{}", transcript(&out));

    std::fs::write(lab.path().join("torn.plan"), &text[..text.len() / 2]).unwrap();
    let out = lab.run(&["show", "torn.plan"]);
    assert_eq!(out.status.code(), Some(1));
    // Where the file is torn depends on the length of the paths it holds.
    let shown = transcript(&out).replace(lab.path().to_str().unwrap(), "[lab]");
    let torn_at = shown.find("column ").map(|i| i + "column ".len()).unwrap();
    let digits = shown[torn_at..].chars().take_while(char::is_ascii_digit).count();
    insta::assert_snapshot!("torn_plan_file", format!("{}[n]{}", &shown[..torn_at], &shown[torn_at + digits..]));

    std::fs::write(lab.path().join("future.plan"), text.replacen("\"drplan_plan\":1", "\"drplan_plan\":7", 1)).unwrap();
    let out = lab.run(&["show", "future.plan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drplan::plan_file_version"), "{}", transcript(&out));

    std::fs::write(lab.path().join("garbage.plan"), [0xffu8, 0xfe, 0x00, 0x13]).unwrap();
    let out = lab.run(&["show", "garbage.plan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drplan::corrupt_plan_file"));
}

#[test]
fn corrupt_state_is_diagnosed_with_its_position() {
    let lab = SimLab::new(true);
    assert_eq!(lab.run(&["plan", "shop.yaml"]).status.code(), Some(0));
    let state = lab.path().join(".drplan/shop/state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, text.replacen("\"serial\": 1", "\"serial\": one", 1)).unwrap();
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("drplan::corrupt_state") && stderr.contains("state.json:"), "{stderr}");
}

#[test]
fn a_missing_world_says_how_to_create_it() {
    let lab = SimLab::new(true);
    std::fs::remove_file(lab.path().join("world.json")).unwrap();
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(transcript(&out).replace(lab.path().to_str().unwrap(), "[lab]"));
}

#[test]
fn a_second_run_is_refused_while_the_lock_is_held() {
    let lab = SimLab::new(true);
    let store = drplan::state::FileStore::for_plan(&lab.path().join("shop.yaml"), "shop");
    let held = drplan::state::StateStore::lock(&store, "drplan apply run.plan").unwrap();
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("drplan::state_locked") && stderr.contains("drplan apply run.plan"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", std::process::id())), "{stderr}");
    let out = lab.run(&["unlock", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1), "a live holder is not unlocked without --force");
    drop(held);
    let out = lab.run(&["unlock", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(lab.run(&["plan", "shop.yaml"]).status.code(), Some(0));
}

#[test]
fn graph_draws_groups_and_steps() {
    let lab = SimLab::new(true);
    let dot = lab.run(&["graph", "shop.yaml", "--format", "dot"]);
    assert_eq!(dot.status.code(), Some(0));
    insta::assert_snapshot!("graph_dot", stdout(&dot));
    let mermaid = lab.run(&["graph", "shop.yaml", "--format", "mermaid"]);
    insta::assert_snapshot!("graph_mermaid", stdout(&mermaid));
}

/// A reader that goes away (`drplan plan | head`) ends nothing badly: no panic, the exit code
/// the command would have had, for stdout and stderr alike.
#[test]
fn closed_output_pipes_never_panic() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let out = common::drplan(dir.path())
        .args(["sim", "generate", "--machines", "400", "--groups", "8", "--protected", "--out", "estate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let plan = dir.path().join("estate/plan.yaml");
    let text = std::fs::read_to_string(&plan).unwrap().replace("  active: dc1\n", "  active: dc2\n");
    std::fs::write(&plan, text).unwrap();
    let bad = common::fixtures().join("invalid/multiple_errors.yaml");
    let bad = bad.to_str().unwrap();
    for (args, code) in [
        (vec!["plan", "estate/plan.yaml", "--format", "json"], 0),
        (vec!["plan", "estate/plan.yaml", "--detailed-exitcode"], 2),
        (vec!["graph", "estate/plan.yaml", "--format", "mermaid"], 0),
        (vec!["validate", bad], 1),
        (vec!["validate", bad, "--format", "json"], 1),
        (vec!["schema"], 0),
    ] {
        let bin = assert_cmd::cargo::cargo_bin("drplan");
        let mut child = std::process::Command::new(bin)
            .args(&args)
            .current_dir(dir.path())
            .env("DRPLAN_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Both read ends close before the command writes: every write fails with EPIPE.
        drop(child.stdout.take());
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{args:?} ended by {status}");
    }
}

/// An output that cannot be written (a full disk under `> plan.json`) is not a lost reader:
/// the command fails and says why.
#[test]
fn an_unwritable_output_fails_the_command() {
    let lab = SimLab::new(true);
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").expect("Linux has /dev/full");
    for args in [&["plan", "shop.yaml", "--format", "json"][..], &["plan", "shop.yaml"][..], &["schema"][..]] {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("drplan"))
            .args(args)
            .current_dir(lab.path())
            .env("DRPLAN_LOG", "off")
            .stdout(full())
            .output()
            .unwrap();
        let text = transcript(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert!(text.contains("No space left on device"), "{args:?}: {text}");
    }
}

/// Whether action `later` waits, directly or through others, for action `earlier`.
fn waits_for(plan: &Value, later: &str, earlier: &str) -> bool {
    let actions = plan["actions"].as_array().unwrap();
    let preds = |id: &str| -> Vec<String> {
        let a = actions.iter().find(|a| a["id"] == id).unwrap_or_else(|| panic!("no action {id}"));
        ["needs", "after"]
            .iter()
            .flat_map(|k| a[*k].as_array().cloned().unwrap_or_default())
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let (mut stack, mut seen) = (preds(later), std::collections::HashSet::new());
    while let Some(id) = stack.pop() {
        if id == earlier {
            return true;
        }
        if seen.insert(id.clone()) {
            stack.extend(preds(&id));
        }
    }
    false
}

const PHASES: &str = "phases:
  shutdown:
    before:
      - manual: { name: drain, prompt: \"Drain the load balancer\" }
    after:
      - script: { name: stopped, run: [\"sh\", \"-c\", \"echo $DRPLAN_STAGE $DRPLAN_PHASE >> stages.txt\"] }
  failover:
    before:
      - script: { name: pre, run: [\"sh\", \"-c\", \"echo $DRPLAN_STAGE $DRPLAN_PHASE $DRPLAN_SITE >> stages.txt\"] }
    after:
      - script: { name: dns, run: [\"sh\", \"-c\", \"echo $DRPLAN_STAGE $DRPLAN_PHASE >> stages.txt\"], only: [planned] }
      - script: { name: notify, run: [\"true\"] }
groups:
";

#[test]
fn phase_steps_run_around_the_shutdown_and_the_failover() {
    let lab = SimLab::new(true);
    lab.edit_plan("groups:\n", PHASES);
    lab.target("active: dc2");
    let plan = plan_json(&lab);
    let machines = ["db1", "db2", "cache1", "app1", "web1"];
    let (drain, stopped, pre, dns) = (
        "phases/shutdown/before/drain",
        "phases/shutdown/after/stopped",
        "phases/failover/before/pre",
        "phases/failover/after/dns",
    );
    for m in machines {
        assert!(waits_for(&plan, &format!("shutdown/{m}"), drain), "{m} shuts down after the drain");
        assert!(waits_for(&plan, stopped, &format!("shutdown/{m}")), "`stopped` runs once {m} is off");
        assert!(waits_for(&plan, &format!("sync/{m}"), stopped));
        assert!(waits_for(&plan, pre, &format!("sync/{m}")), "`pre` runs after {m}'s final sync");
        assert!(waits_for(&plan, &format!("failover/{m}"), pre));
        assert!(waits_for(&plan, dns, &format!("failover/{m}")));
        assert!(waits_for(&plan, &format!("start/{m}"), "phases/failover/after/notify"), "{m} boots after the phase");
    }
    let step = plan["actions"].as_array().unwrap().iter().find(|a| a["id"] == stopped).unwrap();
    assert_eq!(step["phase"], "shutdown");
    assert_eq!(step["group"], Value::Null);

    // Unplanned: nothing shuts down, so no shutdown steps; `dns` is for planned moves only.
    lab.target("active: dc2\nvia: unplanned");
    let ids = action_ids(&plan_json(&lab));
    assert!(!ids.iter().any(|i| i.starts_with("phases/shutdown/")), "{ids:?}");
    assert!(ids.contains(&pre.to_string()) && !ids.contains(&dns.to_string()), "{ids:?}");
}

#[test]
fn in_a_drill_the_failover_phase_steps_run_before_the_first_group_and_after_the_last() {
    let lab = SimLab::new(true);
    lab.edit_plan("groups:\n", PHASES);
    lab.edit_world(|w| w.time_scale = 0.001);
    let out = lab.run(&["drill", "shop.yaml", "--auto-complete", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report = common::report(&out);
    let steps = report["steps"].as_array().unwrap();
    let time = |id: &str, key: &str| -> String {
        let step = steps.iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("no step {id}: {steps:?}"));
        step[key].as_str().unwrap().to_string()
    };
    let copies: Vec<&Value> = steps.iter().filter(|s| s["id"].as_str().unwrap().starts_with("test-copy/")).collect();
    assert_eq!(copies.len(), 5);
    for copy in copies {
        let id = copy["id"].as_str().unwrap();
        assert!(time("phases/failover/before/pre", "finished_at") <= time(id, "started_at"), "{id} after `pre`");
        assert!(time(id, "finished_at") <= time("phases/failover/after/notify", "started_at"), "`notify` after {id}");
    }
    assert!(
        !steps.iter().any(|s| s["id"].as_str().unwrap().starts_with("phases/shutdown/")),
        "a drill shuts nothing down"
    );
}

#[test]
fn phase_steps_run_in_order_with_their_stage_in_the_environment() {
    let lab = SimLab::new(true);
    lab.edit_plan("groups:\n", PHASES);
    lab.edit_world(|w| w.time_scale = 0.001);
    lab.target("active: dc2");
    let out = lab.run(&["apply", "shop.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(3), "the run pauses at the drain: {}", transcript(&out));
    assert!(stdout(&out).contains("phases/shutdown/before/drain"), "{}", transcript(&out));
    let approve = lab.run(&["approve", "shop.yaml", "phases/shutdown/before/drain", "--by", "ops"]);
    assert_eq!(approve.status.code(), Some(0), "{}", transcript(&approve));
    let out = lab.run(&["resume", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(3), "then at the dns step of group app: {}", transcript(&out));
    let approve = lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]);
    assert_eq!(approve.status.code(), Some(0), "{}", transcript(&approve));
    let out = lab.run(&["resume", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let stages = std::fs::read_to_string(lab.path().join("stages.txt")).unwrap();
    assert_eq!(stages, "shutdown after\nfailover before dc2\nfailover after\n");
}
