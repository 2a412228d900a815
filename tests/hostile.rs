//! Attacks and faults, each reproduced and shown to end safely: paths that try to leave their
//! site, symbolic links planted where drplan writes, torn journals, hostile strings in reports,
//! permissive umasks, deleted state, and the fuzz corpus that found these.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::local::Lab;
use common::{SimLab, report, transcript};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A local plan whose machine m1 has the given `id` (its directory at the sites).
fn plan_with_id(lab: &Lab, id: &str) {
    let plan = lab.path().join("local.yaml");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(&plan, text.replacen("{ name: m1,", &format!("{{ name: m1, id: \"{id}\","), 1)).unwrap();
}

#[test]
fn a_machine_id_that_would_leave_its_site_is_refused_at_its_line() {
    let lab = Lab::new(1);
    let victim = lab.path().join("outside/victim");
    std::fs::create_dir_all(victim.join("disks")).unwrap();
    std::fs::write(victim.join("disks/x.img"), b"precious").unwrap();
    for id in ["../../outside/victim", victim.to_str().unwrap(), "..", ".drplan"] {
        let lab = Lab::new(1);
        plan_with_id(&lab, id);
        let out = lab.run(&["validate", "local.yaml", "--format", "json"]);
        assert_eq!(out.status.code(), Some(1), "{id}: {}", transcript(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let d = &v["diagnostics"][0];
        assert_eq!(d["code"], "drplan::unsafe_machine_id", "{id}: {v}");
        let line = std::fs::read_to_string(lab.path().join("local.yaml"))
            .unwrap()
            .lines()
            .position(|l| l.contains("id: "))
            .unwrap()
            + 1;
        assert_eq!(d["line"].as_u64(), Some(line as u64));
        let out = lab.run(&["apply", "local.yaml", "--auto-approve"]);
        assert_eq!(out.status.code(), Some(1));
    }
    assert_eq!(std::fs::read(victim.join("disks/x.img")).unwrap(), b"precious");
}

#[test]
fn a_disk_that_is_a_link_is_refused_with_a_clear_error() {
    let lab = Lab::new(1);
    let outside = lab.path().join("outside.img");
    std::fs::write(&outside, vec![7u8; 4096]).unwrap();
    let disk = lab.path().join("dc1/m1/disks/a.img");
    std::fs::remove_file(&disk).unwrap();
    std::os::unix::fs::symlink(&outside, &disk).unwrap();
    let out = lab.run(&["plan", "local.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(stderr(&out).contains("is a symbolic link"), "{}", transcript(&out));
}

#[test]
fn links_planted_where_drplan_writes_are_never_written_through() {
    let lab = Lab::new(1);
    lab.apply();
    let outside = lab.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("a.img"), b"keep").unwrap();
    // A link planted in the replica folder, in place of a replica disk.
    let replica_disk = lab.path().join("dc2/.drplan/replicas/m1/current/a.img");
    std::fs::remove_file(&replica_disk).unwrap();
    std::os::unix::fs::symlink(outside.join("a.img"), &replica_disk).unwrap();
    let out = lab.run(&["replicate", "local.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert_eq!(std::fs::read(outside.join("a.img")).unwrap(), b"keep");
    // The machine's directory at the other site planted as a link: a failover refuses it.
    let lab = Lab::new(1);
    lab.apply();
    std::os::unix::fs::symlink(&outside, lab.path().join("dc2/m1")).unwrap();
    lab.target("active: dc2\nvia: unplanned");
    let out = lab.run(&["apply", "local.yaml", "--auto-approve", "--format", "json"]);
    assert_ne!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(stdout_or_err(&out).contains("symbolic link"), "{}", transcript(&out));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "nothing written outside the lab");
    assert_eq!(std::fs::read(outside.join("a.img")).unwrap(), b"keep");
}

/// The journal of the (only) run in a plan's `runs` folder.
fn journal_in(runs: &Path) -> std::path::PathBuf {
    std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".journal.jsonl"))
        .unwrap()
}

fn stdout_or_err(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_torn_journal_tail_is_cut_off_and_kept_before_anything_is_appended() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    assert_eq!(lab.run(&["apply", "shop.yaml", "--auto-approve"]).status.code(), Some(3));
    let runs = lab.path().join(".drplan/shop/runs");
    let journal = journal_in(&runs);
    // A crash in the middle of a write.
    let mut file = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
    std::io::Write::write_all(&mut file, b"{\"run\":\"x\",\"seq\":99,\"at\":\"2026-").unwrap();
    drop(file);
    let out = lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "every line is whole: {text}");
    let kept: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".torn-"))
        .collect();
    assert_eq!(kept.len(), 1, "the torn tail is kept beside the journal");
    let out = lab.run(&["resume", "shop.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let r = report(&out);
    assert!(r["steps"].as_array().unwrap().iter().all(|s| s["status"] == "succeeded"), "{r}");
}

#[test]
fn a_journal_that_is_not_a_regular_file_is_refused() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    assert_eq!(lab.run(&["apply", "shop.yaml", "--auto-approve"]).status.code(), Some(3));
    let runs = lab.path().join(".drplan/shop/runs");
    let journal = journal_in(&runs);
    std::fs::remove_file(&journal).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &journal).unwrap();
    let out = lab.run(&["resume", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(stderr(&out).contains("journal"), "{}", transcript(&out));
}

#[test]
fn a_deleted_state_is_an_error_that_says_how_to_restore_it() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    assert_eq!(lab.run(&["apply", "shop.yaml", "--auto-approve"]).status.code(), Some(3));
    let state = lab.path().join(".drplan/shop/state.json");
    std::fs::remove_file(&state).unwrap();
    let out = lab.run(&["plan", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(stderr(&out).contains("drplan::state_missing") && stderr(&out).contains("drplan state restore"));
    assert!(!state.exists(), "no fresh state was written over what remains");
    let out = lab.run(&["state", "restore", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    // The paused run is back.
    let out = lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

/// A sim plan over machines `names` of a world shared at `world.json`.
fn sim_plan(name: &str, names: &[&str]) -> String {
    let machines: Vec<String> = names.iter().map(|n| format!("{{ name: {n} }}")).collect();
    format!(
        "version: 1\nname: {name}\nsites:\n  dc1: {{ provider: sim, path: world.json }}\n  dc2: {{ provider: sim, path: world.json }}\n\
         protection: {{ primary: dc1, recovery: dc2, rpo: 5m, rto: 30m }}\n\
         machines: [{}]\ngroups: [ {{ name: g, machines: [{}] }} ]\ntarget: {{ active: dc2 }}\n",
        machines.join(", "),
        names.join(", ")
    )
}

#[test]
fn two_plans_sharing_a_sim_world_both_move_their_machines() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| common::drplan(dir.path()).args(args).output().unwrap();
    std::fs::write(dir.path().join("all.yaml"), sim_plan("all", &["a1", "a2", "b1", "b2"])).unwrap();
    std::fs::write(dir.path().join("left.yaml"), sim_plan("left", &["a1", "a2"])).unwrap();
    std::fs::write(dir.path().join("right.yaml"), sim_plan("right", &["b1", "b2"])).unwrap();
    let out = run(&["sim", "init", "all.yaml", "--protected", "--clock", common::CLOCK]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    // Slow the simulated clock down enough that the two runs overlap for seconds.
    let mut store = drplan::providers::sim::WorldStore::new(&dir.path().join("world.json"));
    let mut world = store.load().unwrap();
    world.time_scale = 0.01;
    store.save(&world).unwrap();

    let spawn = |plan: &str| spawn_apply_of(dir.path(), plan);
    let (left, right) = (spawn("left.yaml"), spawn("right.yaml"));
    for child in [left, right] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    }
    let world = store.load().unwrap();
    for m in ["a1", "a2", "b1", "b2"] {
        assert_eq!(world.machines[m].active, "dc2", "{m} moved and the move was kept");
    }
}

/// A second local plan, `other`, over the lab's m1.
fn other_plan(lab: &Lab, active: &str) {
    let text = std::fs::read_to_string(lab.path().join("local.yaml")).unwrap();
    let head = &text[..text.find("machines:").unwrap()];
    let head = head.replace("name: local", "name: other");
    std::fs::write(
        lab.path().join("other.yaml"),
        format!("{head}machines:\n  - {{ name: m1 }}\ngroups:\n  - {{ name: one, machines: [m1] }}\ntarget:\n  active: {active}\n"),
    )
    .unwrap();
}

#[test]
fn a_machine_managed_by_one_plan_is_refused_to_another_until_let_go() {
    let lab = Lab::new(1);
    lab.apply();
    other_plan(&lab, "dc2");
    let before = lab.disks("dc1", "m1");

    let out = lab.run(&["plan", "other.yaml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("m1: managed by plan `local`"), "{}", transcript(&out));
    let out = lab.run(&["apply", "other.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(stderr(&out).contains("machine `m1` is managed by plan `local`"), "{}", transcript(&out));
    assert_eq!(lab.disks("dc1", "m1"), before, "the refused plan changed nothing");

    // `local` lets m1 go when it no longer has it; then `other` may take it.
    let text = std::fs::read_to_string(lab.path().join("local.yaml")).unwrap();
    let text = text
        .replace("  - { name: m1, nics: [ { network: prod, ip: 10.0.0.1 } ] }\n", "")
        .replace("  - { name: one, machines: [m1] }\n", "");
    std::fs::write(lab.path().join("local.yaml"), text).unwrap();
    let out = lab.run(&["apply", "local.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = lab.run(&["apply", "other.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
}

#[test]
fn concurrent_applies_of_two_plans_sharing_a_machine_let_one_win() {
    let lab = Lab::new(1);
    other_plan(&lab, "dc1");
    let spawn = |plan: &str| spawn_apply_of(lab.path(), plan);
    let (a, b) = (spawn("local.yaml"), spawn("other.yaml"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    assert!(codes.contains(&Some(1)), "one plan was refused: {}\n{}", transcript(&a), transcript(&b));
    let loser = if a.status.code() == Some(1) { &a } else { &b };
    assert!(stderr(loser).contains("is managed by plan"), "{}", transcript(loser));
    let (winner, loser) = if a.status.code() == Some(1) { ("other", "local") } else { ("local", "other") };
    let out = lab.run(&["plan", &format!("{winner}.yaml"), "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "the winner reached its target: {}", transcript(&out));
    let out = lab.run(&["plan", &format!("{loser}.yaml")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("m1: managed by plan `{winner}`")), "{}", transcript(&out));
}

/// A sim plan whose failover runs two scripts of `seconds` each; each logs its start and end
/// to `runs.log`.
fn scripted_lab(seconds: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"start $1\" >> runs.log\nsleep {seconds}\necho \"end $1\" >> runs.log\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "version: 1\nname: p\nsites:\n  dc1: { provider: sim, path: world.json }\n  dc2: { provider: sim, path: world.json }\n\
         protection: { primary: dc1, recovery: dc2, rpo: 5m, rto: 30m }\nmachines:\n  - { name: m1 }\n\
         groups:\n  - name: one\n    machines: [m1]\n    after:\n\
         \x20     - script: { name: s1, run: [\"./slow.sh\", \"s1\"], timeout: 1m }\n\
         \x20     - script: { name: s2, run: [\"./slow.sh\", \"s2\"], timeout: 1m }\n\
         target:\n  active: dc2\n",
    )
    .unwrap();
    let out = common::drplan(dir.path())
        .args(["sim", "init", "p.yaml", "--protected", "--clock", common::CLOCK])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    dir
}

/// `drplan apply PLAN --auto-approve` in `dir`, running in the background.
fn spawn_apply_of(dir: &Path, plan: &str) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("drplan"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("DRPLAN_LOG", "off")
        .args(["apply", plan, "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn spawn_apply(dir: &Path) -> std::process::Child {
    spawn_apply_of(dir, "p.yaml")
}

/// A scripted lab whose drplan and s1's supervisor were both killed while s1 ran (as with a
/// host restart): nobody knows how s1 ended.
fn lab_with_s1_outcome_lost(seconds: &str) -> tempfile::TempDir {
    let dir = scripted_lab(seconds);
    let mut child = spawn_apply(dir.path());
    wait_for_line(dir.path(), "start s1");
    let _ = child.kill();
    let _ = child.wait();
    // SAFETY: the supervisor our drplan started, by the pid its journal records.
    unsafe { libc::kill(last_supervisor(dir.path()), libc::SIGKILL) };
    wait_for_line(dir.path(), "end s1");
    dir
}

/// How often each script started and ended, as `runs.log` says: [s1 start, s1 end, s2 start, s2 end].
fn script_runs(dir: &Path) -> [usize; 4] {
    let log = std::fs::read_to_string(dir.join("runs.log")).unwrap_or_default();
    let count = |line: &str| log.lines().filter(|l| *l == line).count();
    [count("start s1"), count("end s1"), count("start s2"), count("end s2")]
}

/// Wait until `runs.log` holds `line` (a script reached that point).
fn wait_for_line(dir: &Path, line: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(dir.join("runs.log")).unwrap_or_default().lines().any(|l| l == line) {
        assert!(std::time::Instant::now() < deadline, "`{line}` never came");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The pid of the last script supervisor the run's journal records.
fn last_supervisor(dir: &Path) -> i32 {
    let text = std::fs::read_to_string(journal_in(&dir.join(".drplan/p/runs"))).unwrap();
    let line = text.lines().rev().find(|l| l.contains("\"event\":\"spawned\"")).unwrap();
    let record: serde_json::Value = serde_json::from_str(line).unwrap();
    record["process"]["pid"].as_i64().unwrap() as i32
}

#[test]
fn scripts_never_run_twice_when_drplan_is_killed_at_any_moment() {
    // kill -9 at moments spread over the whole run: before, during and between the scripts.
    for (trial, delay_ms) in [50u64, 250, 450, 700, 950, 1200].into_iter().enumerate() {
        let dir = scripted_lab("0.4");
        let mut child = spawn_apply(dir.path());
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Continue the run (or, killed before it began, start it) until it is done.
        for _ in 0..5 {
            let out = common::drplan(dir.path()).args(["resume", "p.yaml"]).output().unwrap();
            if String::from_utf8_lossy(&out.stderr).contains("no_active_run") {
                let out = common::drplan(dir.path()).args(["apply", "p.yaml", "--auto-approve"]).output().unwrap();
                assert_eq!(out.status.code(), Some(0), "trial {trial}: {}", transcript(&out));
                break;
            }
            if out.status.code() == Some(0) {
                break;
            }
        }
        let out = common::drplan(dir.path()).args(["plan", "p.yaml", "--detailed-exitcode"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "trial {trial}: the failover finished: {}", transcript(&out));
        assert_eq!(
            script_runs(dir.path()),
            [1, 1, 1, 1],
            "trial {trial} (kill after {delay_ms} ms): each script ran exactly once"
        );
    }
}

#[test]
fn sigterm_lets_the_running_script_finish_and_starts_nothing_new() {
    let dir = scripted_lab("1");
    let child = spawn_apply(dir.path());
    wait_for_line(dir.path(), "start s1");
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(stderr(&out).contains("Terminated: no new steps start"), "{}", transcript(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("interrupted"), "{}", transcript(&out));
    assert_eq!(script_runs(dir.path()), [1, 1, 0, 0], "s1 finished, s2 never started");
    let out = common::drplan(dir.path()).args(["resume", "p.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(script_runs(dir.path()), [1, 1, 1, 1]);
}

#[test]
fn a_script_whose_outcome_is_lost_waits_for_a_person_and_is_never_rerun_silently() {
    let dir = lab_with_s1_outcome_lost("0.5");
    for _ in 0..2 {
        let out = common::drplan(dir.path()).args(["resume", "p.yaml"]).output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("one/after/s1: the outcome of attempt 1 is unknown"), "{}", transcript(&out));
        assert!(text.contains("--rerun one/after/s1"), "{}", transcript(&out));
        assert_eq!(script_runs(dir.path()), [1, 1, 0, 0], "s1 is not started again without a word");
    }
    let out = common::drplan(dir.path()).args(["resume", "p.yaml", "--rerun", "one/after/s2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(stderr(&out).contains("did you mean `one/after/s1`?"), "{}", transcript(&out));
    // A person who knows s1 ran says so; the run goes on from there.
    let out =
        common::drplan(dir.path()).args(["approve", "p.yaml", "one/after/s1", "--by", "oncall"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = common::drplan(dir.path()).args(["resume", "p.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(script_runs(dir.path()), [1, 1, 1, 1]);
}

#[test]
fn rerun_runs_a_script_of_unknown_outcome_again_when_asked() {
    let dir = lab_with_s1_outcome_lost("0.3");
    let out = common::drplan(dir.path()).args(["resume", "p.yaml", "--rerun", "one/after/s1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(script_runs(dir.path()), [2, 2, 1, 1], "s1 ran again because a person asked for it");
}

#[test]
fn cancelling_a_run_stops_the_scripts_its_dead_drplan_left_running() {
    let dir = scripted_lab("2");
    let mut child = spawn_apply(dir.path());
    wait_for_line(dir.path(), "start s1");
    let _ = child.kill();
    let _ = child.wait();
    let out = common::drplan(dir.path()).args(["cancel", "p.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(script_runs(dir.path()), [1, 0, 0, 0], "s1 was stopped, not left to finish");
}

/// Rewrite a saved plan's body with `edit` and give it a correct checksum again (keeping, or
/// dropping, its authentication code).
fn tamper(path: &Path, edit: impl Fn(&str) -> String, keep_mac: bool) {
    let text = std::fs::read_to_string(path).unwrap();
    let at = text.find("\"body\":").unwrap() + "\"body\":".len();
    let body = edit(text[at..].trim_end().strip_suffix('}').unwrap());
    let envelope: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mac = match keep_mac {
        true => format!("\"mac\":{},", envelope["mac"]),
        false => String::new(),
    };
    let sum = blake3::hash(body.as_bytes()).to_hex();
    std::fs::write(path, format!("{{\"drplan_plan\":1,\"checksum\":\"{sum}\",{mac}\"body\":{body}}}\n")).unwrap();
}

#[test]
fn a_saved_plan_edited_and_checksummed_again_is_refused() {
    let lab = SimLab::new(true);
    lab.target("active: dc2");
    let out = lab.run(&["plan", "shop.yaml", "--out", "f.plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let pristine = std::fs::read(lab.path().join("f.plan")).unwrap();
    let marker = lab.path().join("pwned");
    let evil = |body: &str| body.replace("[\"true\",\"recovered\"]", &format!("[\"touch\",\"{}\"]", marker.display()));
    for keep_mac in [true, false] {
        std::fs::write(lab.path().join("f.plan"), &pristine).unwrap();
        tamper(&lab.path().join("f.plan"), evil, keep_mac);
        assert!(std::fs::read_to_string(lab.path().join("f.plan")).unwrap().contains("touch"));
        for command in ["apply", "show"] {
            let out = lab.run(&[command, "f.plan"]);
            assert_eq!(out.status.code(), Some(1), "{command}: {}", transcript(&out));
            assert!(stderr(&out).contains("drplan::unauthenticated_plan"), "{command}: {}", transcript(&out));
        }
        assert!(!marker.exists(), "the edited argv never ran");
    }
    // A plan made with another state (another key) is refused too; the file as written runs.
    std::fs::write(lab.path().join("f.plan"), &pristine).unwrap();
    let key = lab.path().join(".drplan/shop/plan.key");
    assert_eq!(mode(&key), 0o600);
    let original = std::fs::read(&key).unwrap();
    std::fs::write(&key, [7u8; 32]).unwrap();
    let out = lab.run(&["apply", "f.plan"]);
    assert!(stderr(&out).contains("drplan::unauthenticated_plan"), "{}", transcript(&out));
    std::fs::write(&key, original).unwrap();
    let out = lab.run(&["apply", "f.plan"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the pristine plan runs (and pauses at its manual step): {}",
        transcript(&out)
    );
}

/// Every file under `dir` (plan files, state, runs, reports), as bytes.
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(all_files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            found.push((path, bytes));
        }
    }
    found
}

#[test]
fn script_secrets_reach_the_script_and_are_kept_nowhere() {
    let lab = SimLab::new(true);
    let seen = lab.path().join("seen.txt");
    let script = lab.path().join("show.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$PASSWORD $TOKEN\" >> {}\n", seen.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.edit_plan(
        "run: [\"true\", \"recovered\"], direction: [forward] }",
        "run: [./show.sh], direction: [forward], env: { PASSWORD: literal-pw-4711, TOKEN: { from_env: DR_TOKEN } } }",
    );
    lab.target("active: dc2");
    let out = lab.run(&["plan", "shop.yaml", "--out", "f.plan", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("literal-pw-4711"), "the plan shows no secret");
    // Without the variable, nothing starts.
    let out = lab.run(&["apply", "f.plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(stderr(&out).contains("drplan's environment has no `DR_TOKEN`"), "{}", transcript(&out));
    let reports = lab.path().join("evidence");
    let run =
        |args: &[&str]| common::drplan(lab.path()).env("DR_TOKEN", "token-from-env-0815").args(args).output().unwrap();
    let out = run(&["apply", "f.plan", "--report", reports.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    let out = lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", "oncall"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let out = run(&["resume", "shop.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "literal-pw-4711 token-from-env-0815\n");
    for (path, bytes) in all_files(lab.path()) {
        if path == seen || path.ends_with("shop.yaml") {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("literal-pw-4711") && !text.contains("token-from-env-0815"),
            "a secret in {}",
            path.display()
        );
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn state_and_reports_are_private_and_copies_keep_their_source_mode_whatever_the_umask() {
    let lab = Lab::new(1);
    let disk = lab.path().join("dc1/m1/disks/a.img");
    std::fs::set_permissions(&disk, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_drplan"));
        command.current_dir(lab.path()).args(args).env("NO_COLOR", "1");
        // SAFETY: umask() is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
        command.output().unwrap()
    };
    let out = run(&["apply", "local.yaml", "--auto-approve", "--report", "evidence"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let state = lab.path().join(".drplan/local");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("state.json")), 0o600);
    assert_eq!(mode(&state.join("lock")), 0o600);
    for entry in std::fs::read_dir(state.join("runs")).unwrap() {
        assert_eq!(mode(&entry.unwrap().path()), 0o600);
    }
    assert_eq!(mode(&lab.path().join("evidence")), 0o700);
    assert_eq!(mode(&lab.path().join("evidence/report.md")), 0o600);
    assert_eq!(mode(&lab.path().join("dc2/.drplan/replicas/m1/current/a.img")), 0o600, "the replica keeps the mode");
    lab.target("active: dc2");
    let out = run(&["apply", "local.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert_eq!(mode(&lab.path().join("dc2/m1/disks/a.img")), 0o600, "the failed-over disk keeps the mode");
}

#[test]
fn hostile_strings_cannot_break_the_markdown_report() {
    let lab = SimLab::new(true);
    lab.edit_plan("approvers: [oncall], only: [planned, failback]", "only: [planned, failback]");
    lab.edit_world(|w| {
        w.faults.push(drplan::providers::sim::world::Fault {
            op: Some(drplan::contract::OpKind::Start),
            machine: Some("web1".into()),
            site: None,
            kind: drplan::providers::sim::world::FaultKind::Error,
            times: Some(1),
            triggered: 0,
            message: Some("<img src=x onerror=alert(1)> | `rm -rf` | **bold**".into()),
        });
    });
    lab.target("active: dc2");
    assert_eq!(lab.run(&["apply", "shop.yaml", "--auto-approve"]).status.code(), Some(3));
    let by = "<script>alert(1)</script>|x";
    assert_eq!(lab.run(&["approve", "shop.yaml", "app/before/dns", "--by", by]).status.code(), Some(0));
    let out = lab.run(&["resume", "shop.yaml", "--report", "ev"]);
    assert_eq!(out.status.code(), Some(1), "the start of web1 fails: {}", transcript(&out));
    let md = std::fs::read_to_string(lab.path().join("ev/report.md")).unwrap();
    assert!(!md.contains("<script>") && !md.contains("<img"), "{md}");
    let row = md.lines().find(|l| l.contains("app/before/dns") && l.contains("script")).expect("the approval row");
    assert_eq!(row.matches(" | ").count() + 2, 4, "three cells, the pipe in the name escaped: {row}");
    let failure = md.lines().find(|l| l.starts_with("| `start/web1`")).expect("the failure row");
    assert_eq!(failure.split(" | ").count(), 3, "three cells: {failure}");
}

/// The head of a valid plan, to which generated groups are appended.
const PLAN_HEAD: &str = "version: 1
name: big
sites:
  dc1: { provider: local, path: lab/dc1 }
  dc2: { provider: local, path: lab/dc2 }
protection: { primary: dc1, recovery: dc2, rpo: 5m, rto: 30m }
target: { active: dc1 }
machines:
  - name: db1
";

#[test]
fn one_alias_reused_many_times_is_one_diagnostic_with_a_count() {
    // 99 groups share one list of 1,000 unknown machines: 99,000 findings of 1,000 causes.
    let dir = tempfile::tempdir().unwrap();
    let mut plan = String::from(PLAN_HEAD);
    plan.push_str("groups:\n  - name: g0\n    machines: &all [");
    plan.push_str(&(0..1000).map(|i| format!("ghost{i}")).collect::<Vec<_>>().join(", "));
    plan.push_str("]\n");
    for g in 1..99 {
        plan.push_str(&format!("  - name: g{g}\n    machines: *all\n"));
    }
    std::fs::write(dir.path().join("p.yaml"), &plan).unwrap();
    let out = common::drplan(dir.path()).args(["validate", "p.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.len() < 64 * 1024, "{} bytes of diagnostics", err.len());
    assert!(err.contains("found 99 times"), "{err}");
    assert!(err.contains("more like the 20 above"), "{err}");
    // The tally still counts every finding (and db1, in no group).
    assert!(err.contains("p.yaml: 99001 errors"), "{}", &err[err.len().saturating_sub(300)..]);

    let out = common::drplan(dir.path()).args(["validate", "p.yaml", "--format", "json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shown = v["diagnostics"].as_array().unwrap();
    // 20 unknown machines, the line that counts the rest, and db1 in no group.
    assert_eq!(shown.len(), 22, "{v}");
    let ghost0 = shown.iter().find(|d| d["message"] == "unknown machine `ghost0`").unwrap();
    assert_eq!(ghost0["repeats"], 99, "{ghost0}");
}

#[test]
fn a_long_cycle_is_described_in_bounded_words() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = String::from(PLAN_HEAD);
    plan.push_str("groups:\n");
    let n = 10_000;
    for g in 0..n {
        plan.push_str(&format!("  - name: g{g}\n    machines: [db1]\n    depends_on: [g{}]\n", (g + 1) % n));
    }
    std::fs::write(dir.path().join("p.yaml"), &plan).unwrap();
    let out = common::drplan(dir.path()).args(["validate", "p.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cycle"), "{err}");
    assert!(err.len() < 16 * 1024, "{} bytes", err.len());
}

#[test]
fn a_line_of_megabytes_is_located_but_not_printed() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = String::from(PLAN_HEAD);
    plan.push_str(&format!("groups:\n  - {{ name: g, machines: [db1], {}: 1 }}\n", "x".repeat(1 << 20)));
    std::fs::write(dir.path().join("p.yaml"), &plan).unwrap();
    let out = common::drplan(dir.path()).args(["validate", "p.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.len() < 16 * 1024, "{} bytes", err.len());
    assert!(err.contains("p.yaml:11:"), "{err}");
}

/// Inputs a fuzzer found or an attacker would write: each ends in a verdict (0 or 1), a
/// bounded report and no panic, in text and in JSON.
#[test]
fn the_hostile_corpus_gets_verdicts_not_crashes() {
    let corpus = common::fixtures().join("hostile");
    let mut files: Vec<_> = std::fs::read_dir(&corpus).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus went missing");
    for file in files {
        for format in ["text", "json"] {
            let out = common::drplan(&corpus)
                .args(["validate", file.to_str().unwrap(), "--format", format])
                .output()
                .unwrap();
            let code = out.status.code();
            assert!(matches!(code, Some(0 | 1)), "{}: {}", file.display(), transcript(&out));
            let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
            assert!(!all.contains("panicked"), "{}: {all}", file.display());
            assert!(all.len() < 16 * 1024, "{}: {} bytes", file.display(), all.len());
            if format == "json" {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", file.display(), transcript(&out)));
                for d in v["diagnostics"].as_array().unwrap() {
                    if code == Some(1) && d["severity"] == "error" {
                        assert!(d["help"].is_string(), "{}: no hint in {d}", file.display());
                    }
                }
            }
        }
    }
}
