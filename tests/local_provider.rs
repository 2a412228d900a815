//! The local provider with real bytes: several disks of 64 MiB per machine, random writes
//! between steps, and byte-for-byte comparison of every copy against what it must equal.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::local::{BLOCK, Lab, MIB};
use common::transcript;
use serde_json::Value;

fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}: {report:#}"))
}

fn transferred(points: &Value, machine: &str) -> u64 {
    points["points"].as_array().unwrap().iter().find(|p| p["machine"] == machine).unwrap()["bytes_transferred"]
        .as_u64()
        .unwrap()
}

#[test]
fn planned_failover_and_delta_failback_are_byte_identical_and_move_only_changed_blocks() {
    let mut lab = Lab::new(64);
    let protect = lab.apply();
    assert_eq!(protect["status"], "succeeded");
    assert_eq!(
        step(&protect, "protect/m1")["outcome"]["bytes_transferred"],
        3 * 64 * MIB,
        "initial copy moves everything"
    );

    // Random writes, then a point: exactly the changed blocks move.
    let changed = lab.scribble("dc1", "m1", 37);
    let points = lab.replicate();
    assert_eq!(transferred(&points, "m1"), changed * BLOCK, "{points:#}");
    assert_eq!(transferred(&points, "m2"), 0);
    println!(
        "delta: {} of {} ({:.2} %)",
        changed * BLOCK,
        3 * 64 * MIB,
        100.0 * (changed * BLOCK) as f64 / (3 * 64 * MIB) as f64
    );

    // More writes after the last point; the planned failover's final sync takes them too.
    lab.scribble("dc1", "m1", 11);
    lab.scribble("dc1", "m2", 5);
    let at_shutdown = [lab.disks("dc1", "m1"), lab.disks("dc1", "m2")];
    lab.target("active: dc2");
    let failover = lab.apply();
    assert_eq!(failover["status"], "succeeded");
    assert_eq!([lab.disks("dc2", "m1"), lab.disks("dc2", "m2")], at_shutdown, "zero loss: dc2 equals dc1 at shutdown");
    assert!(step(&failover, "failover/m1")["outcome"]["verified"].as_str().unwrap().contains("matches point"));
    assert_eq!(failover["data_loss"]["total_bytes"], 0);

    // Writes at dc2; fail back with delta sync through the approval gate.
    let at_dc2 = lab.scribble("dc2", "m1", 23);
    lab.scribble("dc2", "m2", 3);
    lab.target("active: dc1\nsync: delta");
    let out = lab.run(&["apply", "local.yaml", "--auto-approve", "--format", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let paused: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(paused["awaiting"], serde_json::json!(["gate/complete-failover"]));
    assert_eq!(
        step(&paused, "presync/m1")["outcome"]["bytes_transferred"],
        at_dc2 * BLOCK,
        "phase 1 moves only the delta"
    );
    let at_dc2_shutdown = [lab.disks("dc2", "m1"), lab.disks("dc2", "m2")];
    let failback = lab.approve_and_resume(&paused);
    assert_eq!(failback["status"], "succeeded");
    assert_eq!(step(&failback, "sync/m1")["outcome"]["bytes_transferred"], 0, "nothing changed after phase 1");
    assert_eq!([lab.disks("dc1", "m1"), lab.disks("dc1", "m2")], at_dc2_shutdown, "zero loss back at dc1");
    // Reprotected: dc1 → dc2 again, and the plan has nothing left to do.
    assert_eq!(lab.replica_state("dc2", "m1")["from"], "dc1");
    let out = lab.run(&["plan", "local.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn unplanned_failover_equals_exactly_the_chosen_recovery_point() {
    let mut lab = Lab::new(64);
    lab.apply();
    lab.scribble("dc1", "m1", 20);
    lab.replicate();
    let chosen = lab.disks("dc1", "m1");
    let point = lab.replica_state("dc2", "m1")["points"].as_array().unwrap().last().unwrap().clone();
    std::thread::sleep(Duration::from_millis(1100));
    let b = lab.scribble("dc1", "m1", 9);
    lab.replicate();
    let c = lab.scribble("dc1", "m1", 4);
    lab.target(&format!("active: dc2\nvia: unplanned\nrecovery_point: \"{}\"", point["time"].as_str().unwrap()));
    let report = lab.apply();
    assert_eq!(step(&report, "failover/m1")["outcome"]["point"], point["id"]);
    assert_eq!(lab.disks("dc2", "m1"), chosen, "dc2 holds exactly the chosen point");
    // The loss is reported exactly: every block written after the point (b and c may overlap).
    let lost =
        report["data_loss"]["machines"].as_array().unwrap().iter().find(|m| m["machine"] == "m1").unwrap()["bytes"]
            .as_u64()
            .unwrap();
    assert!(lost <= (b + c) * BLOCK && lost >= b.max(c) * BLOCK, "lost {lost}, b {b}, c {c}");
}

#[test]
fn a_failback_plan_shows_what_changed_in_the_machine_while_away() {
    let lab = Lab::new(4);
    std::fs::write(lab.path().join("dc1/m1/app.conf"), "threads = 8\n").unwrap();
    lab.apply();
    lab.target("active: dc2");
    lab.apply();
    // Tuned at the recovery site while it ran there; m2 untouched.
    std::fs::write(lab.path().join("dc2/m1/app.conf"), "threads = 32\n").unwrap();
    lab.target("active: dc1");
    let out = lab.run(&["plan", "local.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let drift = plan["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "only m1 drifted: {drift:#?}");
    assert_eq!(drift[0]["machine"], "m1");
    let diff = drift[0]["diff"].as_str().unwrap();
    assert!(diff.contains("--- m1@dc1 (original)") && diff.contains("+++ m1@dc2 (live)"), "{diff}");
    let changed: Vec<&str> = diff.lines().filter(|l| l.starts_with(['-', '+']) && !l.starts_with("---")).collect();
    assert!(changed.iter().any(|l| l.starts_with("-  app.conf: 12 B")), "{diff}");
    assert!(changed.iter().any(|l| l.starts_with("+  app.conf: 13 B")), "{diff}");
    // The human plan shows it too, and the failback brings the tuned file home.
    let out = lab.run(&["plan", "local.yaml"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Drift at the live copies"), "{}", transcript(&out));
    let out = lab.run(&["apply", "local.yaml", "--auto-approve", "--format", "json"]);
    assert_eq!(out.status.code(), Some(3), "the complete-failover gate: {}", transcript(&out));
    lab.approve_and_resume(&serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(std::fs::read_to_string(lab.path().join("dc1/m1/app.conf")).unwrap(), "threads = 32\n");
}

#[test]
fn failback_to_an_alternate_location_creates_the_machine_there() {
    let mut lab = Lab::new(16);
    lab.apply();
    lab.target("active: dc2");
    lab.apply();
    lab.scribble("dc2", "m1", 7);
    let at_dc2 = lab.disks("dc2", "m1");
    lab.target("active: dc1\nlocation: { alternate: dc3 }\nsync: full");
    let report = lab.apply();
    assert_eq!(report["to"], "dc3");
    assert_eq!(lab.disks("dc3", "m1"), at_dc2);
    assert_eq!(lab.replica_state("dc2", "m1")["from"], "dc3", "protected from the new location");
}

#[test]
fn an_interrupted_sync_is_marked_inconsistent_and_the_next_apply_redoes_it() {
    let mut lab = Lab::new(256);
    lab.apply();
    // Enough changed data that the transfer takes a while.
    lab.scribble("dc1", "m1", 3000);
    let state = lab.path().join("dc2/.drplan/replicas/m1/state.json");
    let mut caught = false;
    for attempt in 0..20 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_drplan"))
            .current_dir(lab.path())
            .args(["replicate", "local.yaml"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill -9 while the replica says a transfer is in progress.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&state).unwrap_or_default();
            if text.contains("\"consistent\": false") {
                std::thread::sleep(Duration::from_millis(attempt * 3));
                child.kill().unwrap();
                child.wait().unwrap();
                caught = std::fs::read_to_string(&state).unwrap().contains("\"consistent\": false");
                break;
            }
            if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if caught {
            break;
        }
        lab.scribble("dc1", "m1", 3000);
    }
    assert!(caught, "never caught a transfer in progress");
    // The plan sees the inconsistent replica and redoes the sync.
    let out = lab.run(&["plan", "local.yaml", "--format", "json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan["actions"].as_array().unwrap().iter().any(|a| a["id"] == "resync/m1"), "{plan:#}");
    lab.apply();
    assert_eq!(lab.replica_state("dc2", "m1")["consistent"], true);
    // Proof: fail over and compare.
    let source = lab.disks("dc1", "m1");
    lab.target("active: dc2");
    lab.apply();
    assert_eq!(lab.disks("dc2", "m1"), source);
}

#[test]
fn a_corrupted_replica_is_caught_by_verification_and_not_started() {
    let mut lab = Lab::new(16);
    lab.apply();
    lab.scribble("dc1", "m1", 3);
    lab.replicate();
    // Damage one byte of the replica behind drplan's back.
    let replica = lab.path().join("dc2/.drplan/replicas/m1/current/b.img");
    let mut bytes = std::fs::read(&replica).unwrap();
    bytes[5 * BLOCK as usize + 9] ^= 0x40;
    std::fs::write(&replica, bytes).unwrap();
    lab.target("active: dc2\nvia: unplanned");
    let out = lab.run(&["apply", "local.yaml", "--auto-approve", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = step(&report, "failover/m1")["error"].as_str().unwrap().to_string();
    assert!(error.contains("checksum verification failed") && error.contains("b.img: block 5"), "{error}");
    assert_eq!(step(&report, "start/m1")["status"], "skipped");
}

#[test]
fn retention_keeps_the_configured_number_of_points_and_quiesce_makes_them_app_consistent() {
    let mut lab = Lab::new(8);
    let quiesce = lab.path().join("dc1/m1/quiesce");
    std::fs::write(&quiesce, "#!/bin/sh\nsync\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&quiesce, std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.apply();
    for _ in 0..6 {
        lab.scribble("dc1", "m1", 2);
        lab.replicate();
    }
    let state = lab.replica_state("dc2", "m1");
    let points = state["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "keep_points: 4");
    assert!(points.iter().all(|p| p["app_consistent"] == true));
    assert!(lab.replica_state("dc2", "m2")["points"].as_array().unwrap().iter().all(|p| p["app_consistent"] == false));
    let dirs: Vec<PathBuf> = std::fs::read_dir(lab.path().join("dc2/.drplan/replicas/m1/points"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 4, "dropped points' data is deleted");
    // An old kept point is still restorable exactly: fail over to the oldest time both
    // machines have a point at (m2 replicates a moment after m1, so its oldest kept point
    // may be newer than m1's); m1 then restores its newest point at or before that time.
    let m2_points = lab.replica_state("dc2", "m2")["points"].as_array().unwrap().clone();
    let time_of = |p: &serde_json::Value| p["time"].as_str().unwrap().to_string();
    let at = std::cmp::max(time_of(&points[0]), time_of(&m2_points[0]));
    let expected = points.iter().rfind(|p| time_of(p) <= at).unwrap();
    lab.target(&format!("active: dc2\nvia: unplanned\nrecovery_point: \"{at}\""));
    let report = lab.apply();
    assert_eq!(step(&report, "failover/m1")["outcome"]["point"], expected["id"]);
}

#[test]
fn machine_programs_start_and_stop_with_the_machine() {
    let lab = Lab::new(2);
    let run = lab.path().join("dc1/m1/run");
    std::fs::write(&run, "#!/bin/sh\necho \"up at $DRPLAN_SITE as $DRPLAN_MACHINE ($DRPLAN_IPS)\"\nexec sleep 300\n")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let report = lab.apply();
    let summary = step(&report, "start/m1")["outcome"]["summary"].as_str().unwrap().to_string();
    let pid: i32 = summary.rsplit("pid ").next().unwrap().parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "{summary}");
    lab.target("active: dc2");
    let report = lab.apply();
    assert_eq!(step(&report, "shutdown/m1")["status"], "succeeded");
    std::thread::sleep(Duration::from_millis(50));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z"), "the program at dc1 was stopped");
    // Its program came along and runs at dc2 with the recovery addresses.
    std::thread::sleep(Duration::from_millis(100));
    let console = std::fs::read_to_string(lab.path().join("dc2/m1/console.log")).unwrap();
    assert!(console.contains("up at dc2 as m1 (10.0.0.1)"), "{console}");
    let record: Value =
        serde_json::from_slice(&std::fs::read(lab.path().join("dc2/.drplan/machines/m1.json")).unwrap()).unwrap();
    let pid = record["process"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: stopping the test's own child process group.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// A machine whose program ignores SIGTERM gets `boot_timeout` to stop by itself, then it is
/// killed, and the shutdown still succeeds (the engine allows the provider time for that).
#[test]
fn a_machine_that_ignores_the_stop_signal_is_forced_off_and_the_failover_goes_on() {
    let lab = Lab::new(2);
    let run = lab.path().join("dc1/m1/run");
    std::fs::write(&run, "#!/bin/sh\ntrap '' TERM\necho up\nwhile :; do sleep 1; done\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let with_timeout = |target: &str| {
        lab.target(target);
        let plan = lab.path().join("local.yaml");
        let text = std::fs::read_to_string(&plan).unwrap().replace("{ name: m1,", "{ name: m1, boot_timeout: 1s,");
        std::fs::write(&plan, text).unwrap();
    };
    with_timeout("active: dc1");
    let report = lab.apply();
    let summary = step(&report, "start/m1")["outcome"]["summary"].as_str().unwrap().to_string();
    let pid: i32 = summary.rsplit("pid ").next().unwrap().parse().unwrap();
    with_timeout("active: dc2");
    let report = lab.apply();
    let shutdown = step(&report, "shutdown/m1");
    assert_eq!(shutdown["status"], "succeeded", "{report:#}");
    assert_eq!(shutdown["outcome"]["summary"], "m1 shut down at dc1 (killed: its program ignored SIGTERM for 1s)");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z"), "the program at dc1 was killed: {stat}");
    let record: Value =
        serde_json::from_slice(&std::fs::read(lab.path().join("dc2/.drplan/machines/m1.json")).unwrap()).unwrap();
    let pid = record["process"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: stopping the test's own child process group.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

#[test]
fn an_unreachable_primary_still_allows_an_unplanned_failover() {
    let mut lab = Lab::new(4);
    lab.apply();
    lab.scribble("dc1", "m1", 3);
    lab.replicate();
    let point_data = lab.disks("dc1", "m1");
    // The primary site disappears.
    std::fs::rename(lab.path().join("dc1"), lab.path().join("dc1-gone")).unwrap();
    lab.target("active: dc2");
    let out = lab.run(&["plan", "local.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drplan::site_unreachable"), "{}", transcript(&out));
    lab.target("active: dc2\nvia: unplanned");
    let report = lab.apply();
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(lab.disks("dc2", "m1"), point_data);
    assert!(report["data_loss"]["machines"][0]["bytes"].is_null(), "unknown with the source gone");
}

#[test]
fn the_readme_quickstart_runs_the_whole_story() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::drplan(dir.path())
        .args(["lab", "demo", "lab", "--disk-size", "8MiB"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for machine in ["db1", "app1", "web1"] {
        let line = stdout.lines().find(|l| l.starts_with(&format!("{machine} (live at dc1)"))).unwrap();
        assert!(line.contains("none missing") && line.contains("at dc2"), "{line}");
    }
    // The echoed commands can be pasted into a shell.
    assert!(stdout.contains("--notes 'lab demo: the test copies booted'"), "{stdout}");
    // The plan's schema line points at a schema file the user has.
    let plan = std::fs::read_to_string(dir.path().join("lab/lab.yaml")).unwrap();
    assert!(plan.starts_with("# yaml-language-server: $schema=plan.schema.json\n"), "{plan}");
    let schema: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("lab/plan.schema.json")).unwrap()).unwrap();
    assert_eq!(schema["title"], "drplan recovery plan (v1)");
}

#[test]
fn replicate_every_keeps_taking_points_until_interrupted() {
    let mut lab = Lab::new(2);
    lab.apply();
    lab.scribble("dc1", "m1", 1);
    let child = Command::new(env!("CARGO_BIN_EXE_drplan"))
        .current_dir(lab.path())
        .args(["replicate", "local.yaml", "--every", "200ms", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let rounds = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("\"points\"")).count();
    assert!(rounds >= 3, "{rounds} rounds in 1.2 s at 200 ms");
    assert_eq!(lab.replica_state("dc2", "m1")["points"].as_array().unwrap().len(), 4, "retention applies");
}

/// Protected, failed over to dc2 and reprotected back to dc1, with a point of newer data.
fn running_at_dc2(lab: &mut Lab) -> Vec<Vec<u8>> {
    lab.apply();
    lab.target("active: dc2");
    assert_eq!(lab.apply()["status"], "succeeded");
    lab.scribble("dc2", "m1", 5);
    lab.replicate();
    lab.disks("dc2", "m1")
}

#[test]
fn a_live_copy_removed_by_hand_is_caught_at_plan_time_and_the_other_copy_stays_intact() {
    let mut lab = Lab::new(4);
    let at_point = running_at_dc2(&mut lab);
    let replica_before = lab.replica_state("dc1", "m1");
    std::fs::remove_dir_all(lab.path().join("dc2/m1")).unwrap();
    lab.target("active: dc1");
    let out = lab.run(&["plan", "local.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("drplan::live_copy_gone") && stderr.contains("`m1` at dc2 is gone"), "{stderr}");
    assert!(stderr.contains("via: unplanned"), "says what can still be done: {stderr}");
    // Applying is refused the same way, and the replica at dc1 is untouched.
    let out = lab.run(&["apply", "local.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert_eq!(lab.replica_state("dc1", "m1"), replica_before);
    // A sync from the missing copy is refused before it touches the target.
    // Restoring from the last point works.
    lab.target("active: dc1\nvia: unplanned");
    let report = lab.apply();
    assert_eq!(step(&report, "failover/m1")["status"], "succeeded", "{report:#}");
    assert_eq!(lab.disks("dc1", "m1"), at_point, "the newest point came back");
}

#[test]
fn unplanned_failback_restores_the_newest_point_while_the_recovery_site_is_dark() {
    let mut lab = Lab::new(4);
    let at_point = running_at_dc2(&mut lab);
    lab.scribble("dc2", "m1", 2);
    std::fs::rename(lab.path().join("dc2"), lab.path().join("dc2-dark")).unwrap();
    lab.target("active: dc1\nvia: unplanned");
    let report = lab.apply();
    assert_eq!(report["kind"], "unplanned-failback");
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(lab.disks("dc1", "m1"), at_point);
    // dc2 comes back: its old copy is stopped and reverse replication starts.
    std::fs::rename(lab.path().join("dc2-dark"), lab.path().join("dc2")).unwrap();
    lab.apply();
    assert_eq!(lab.replica_state("dc2", "m1")["from"], "dc1");
    let out = lab.run(&["plan", "local.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn the_plans_freeze_and_thaw_run_around_each_point_and_decide_whether_it_is_app_consistent() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new(8);
    std::fs::create_dir_all(lab.path().join("hooks")).unwrap();
    for (name, body) in [
        ("freeze", "[ -e fail-freeze ] && exit 1\necho \"freeze $DRPLAN_MACHINE at $DRPLAN_SITE\" >> hooks.log\n"),
        ("thaw", "echo \"thaw $DRPLAN_MACHINE at $DRPLAN_SITE\" >> hooks.log\n"),
    ] {
        let path = lab.path().join("hooks").join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // m1 gives the plan's programs (run from the plan's folder); m2 none.
    let plan = lab.path().join("local.yaml");
    let text = std::fs::read_to_string(&plan).unwrap().replace(
        "- { name: m1, nics: [ { network: prod, ip: 10.0.0.1 } ] }",
        "- { name: m1, nics: [ { network: prod, ip: 10.0.0.1 } ], consistency: { freeze: [hooks/freeze], thaw: [hooks/thaw, --after], timeout: 30s } }",
    );
    std::fs::write(&plan, text).unwrap();
    let log = || std::fs::read_to_string(lab.path().join("hooks.log")).unwrap_or_default();
    lab.apply();
    lab.replicate();
    assert_eq!(log(), "freeze m1 at dc1\nthaw m1 at dc1\n".repeat(2), "around the first copy and the point after it");
    let points = lab.replica_state("dc2", "m1")["points"].as_array().unwrap().clone();
    assert!(points.iter().all(|p| p["app_consistent"] == true), "{points:?}");
    assert!(lab.replica_state("dc2", "m2")["points"].as_array().unwrap().iter().all(|p| p["app_consistent"] == false));

    // A freeze that fails: the point is taken anyway, crash-consistent, and the thaw still runs.
    std::fs::write(lab.path().join("fail-freeze"), "").unwrap();
    lab.replicate();
    assert!(log().ends_with("thaw m1 at dc1\nthaw m1 at dc1\n"), "{}", log());
    let newest = lab.replica_state("dc2", "m1")["points"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(newest["app_consistent"], false, "{newest}");
}
