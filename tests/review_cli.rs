//! Reviewing plans: `drplan diff` between two revisions (files, or a git revision), and the
//! readiness check `drplan check` on sim.

mod common;

use std::path::Path;

use common::{drplan, transcript};
use serde_json::Value;

const SHOP: &str = include_str!("fixtures/sim/shop.yaml");

/// `drplan diff` of the shop plan and the shop plan changed by `edits` (old → new text
/// replacements), as JSON changes.
fn diff(edits: &[(&str, &str)]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut new = SHOP.to_string();
    for (old, replacement) in edits {
        assert!(new.contains(old), "the plan has {old:?}");
        new = new.replacen(old, replacement, 1);
    }
    std::fs::write(dir.path().join("old.yaml"), SHOP).unwrap();
    std::fs::write(dir.path().join("new.yaml"), &new).unwrap();
    let out = drplan(dir.path()).args(["diff", "old.yaml", "new.yaml", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let human = drplan(dir.path()).args(["diff", "old.yaml", "new.yaml"]).output().unwrap();
    (serde_json::from_slice(&out.stdout).unwrap(), String::from_utf8_lossy(&human.stdout).into_owned())
}

fn kinds(report: &Value) -> Vec<String> {
    report["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap().to_string()).collect()
}

#[test]
fn machines_added_removed_and_moved_between_groups() {
    let (report, human) = diff(&[
        ("    machines: [db1, db2]", "    machines: [db1]"),
        ("  - name: db2\n    nics: [ { network: prod, ip: 10.0.0.11 } ]\n", ""),
        ("    machines: [web1]", "    machines: [web1, cache1, web2]"),
        ("    depends_on: []\n    machines: [cache1]", "    depends_on: []\n    machines: []"),
        ("  - name: web1\n", "  - name: web2\n    nics: [ { network: edge } ]\n  - name: web1\n"),
    ]);
    let changes = report["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["kind"] == "machine-removed" && c["machine"] == "db2" && c["group"] == "db"));
    assert!(changes.iter().any(|c| c["kind"] == "machine-added" && c["machine"] == "web2" && c["group"] == "web"));
    assert!(
        changes.iter().any(|c| c["kind"] == "machine-moved"
            && c["machine"] == "cache1"
            && c["from"] == "cache"
            && c["to"] == "web")
    );
    assert_eq!(kinds(&report).len(), 3, "{report}");
    assert_eq!(report["headline"], Value::Null, "nothing fails over");
    assert!(human.contains("↕ machine cache1 moved from group cache to group web"), "{human}");
}

#[test]
fn a_group_reorder_is_a_move_and_dependencies_are_shown() {
    // `cache` moves before `db`; `web` now also waits for `cache`.
    let (report, _) = diff(&[
        (
            "  - name: db\n    machines: [db1, db2]\n    after:\n      - script: { name: check-db, run: [\"true\"], timeout: 1m }\n  - name: cache\n    depends_on: []\n    machines: [cache1]\n",
            "  - name: cache\n    depends_on: []\n    machines: [cache1]\n  - name: db\n    depends_on: []\n    machines: [db1, db2]\n    after:\n      - script: { name: check-db, run: [\"true\"], timeout: 1m }\n",
        ),
        ("  - name: web\n    machines: [web1]", "  - name: web\n    depends_on: [app, cache]\n    machines: [web1]"),
    ]);
    let changes = report["changes"].as_array().unwrap();
    let moved: Vec<&Value> = changes.iter().filter(|c| c["kind"] == "group-moved").collect();
    assert_eq!(moved.len(), 1, "{report}");
    assert!(!changes.iter().any(|c| c["kind"] == "group-added" || c["kind"] == "group-removed"), "{report}");
    let web = changes.iter().find(|c| c["kind"] == "depends-on" && c["group"] == "web").unwrap();
    assert_eq!(web["added"], serde_json::json!(["cache"]));
}

#[test]
fn network_mappings_and_addresses() {
    let (report, _) = diff(&[
        ("    test: drill\n", "    test: drill-2\n"),
        ("\"10.0.0.10\": \"10.9.0.10\"", "\"10.0.0.10\": \"10.9.0.99\""),
        (
            "  - name: app1\n    nics: [ { network: prod, ip: 10.0.0.30 } ]",
            "  - name: app1\n    nics: [ { network: prod, ip: 10.0.0.31 } ]",
        ),
    ]);
    let changes = report["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["kind"] == "network-changed" && c["setting"] == "test" && c["to"] == "drill-2"));
    let db1 = changes.iter().find(|c| c["kind"] == "machine-changed" && c["machine"] == "db1").unwrap();
    assert_eq!(
        (db1["from"].as_str().unwrap(), db1["to"].as_str().unwrap()),
        ("prod 10.0.0.10 (dr 10.9.0.10)", "prod 10.0.0.10 (dr 10.9.0.99)")
    );
    assert!(
        changes.iter().any(|c| c["kind"] == "machine-changed" && c["machine"] == "app1" && c["setting"] == "addresses")
    );
}

#[test]
fn steps_added_removed_reordered_and_changed() {
    let (report, _) = diff(&[
        (
            "      - script: { name: smoke, run: [\"true\", app], on_failure: continue }\n      - script: { name: drill-only, run: [\"true\"], only: [drill] }\n",
            "      - script: { name: drill-only, run: [\"true\"], only: [drill, planned] }\n      - script: { name: smoke, run: [\"true\", app], on_failure: continue }\n      - manual: { name: sign-off, prompt: \"Sign off\" }\n",
        ),
        ("    after:\n      - script: { name: page, run: [\"true\", \"recovered\"], direction: [forward] }\n", ""),
    ]);
    let changes = report["changes"].as_array().unwrap();
    let find = |kind: &str, step: &str| changes.iter().find(|c| c["kind"] == kind && c["step"] == step);
    assert!(find("step-added", "app/after/sign-off").is_some(), "{report}");
    assert!(find("step-removed", "notify/after/page").is_some(), "{report}");
    let only = find("step-changed", "app/after/drill-only").unwrap();
    assert_eq!((only["setting"].as_str().unwrap(), only["to"].as_str().unwrap()), ("only", "drill, planned"));
    // Exactly one of the two swapped steps is reported as moved, and neither as removed + added.
    let moved: Vec<&Value> = changes.iter().filter(|c| c["kind"] == "step-moved").collect();
    assert_eq!(moved.len(), 1, "{report}");
    assert!(find("step-removed", "app/after/smoke").is_none() && find("step-added", "app/after/smoke").is_none());
}

#[test]
fn unnamed_steps_that_swap_places_are_moves() {
    let dir = tempfile::tempdir().unwrap();
    let two = SHOP.replacen(
        "    after:\n      - script: { name: check-db, run: [\"true\"], timeout: 1m }\n",
        "    after:\n      - script: { run: [\"true\", one] }\n      - script: { run: [\"true\", two] }\n",
        1,
    );
    let swapped = two.replacen(
        "[\"true\", one] }\n      - script: { run: [\"true\", two]",
        "[\"true\", two] }\n      - script: { run: [\"true\", one]",
        1,
    );
    std::fs::write(dir.path().join("a.yaml"), &two).unwrap();
    std::fs::write(dir.path().join("b.yaml"), &swapped).unwrap();
    let out = drplan(dir.path()).args(["diff", "a.yaml", "b.yaml", "--format", "json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(kinds(&report), vec!["step-moved"], "{report}");
}

#[test]
fn the_headline_says_what_the_merge_does_and_markdown_is_for_the_pull_request() {
    let (report, _) = diff(&[("target:\n  active: dc1", "target:\n  active: dc2\n  via: unplanned")]);
    assert_eq!(report["headline"], "This change fails `shop` over from `dc1` to `dc2` (unplanned failover).");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.yaml"), SHOP.replacen("  active: dc1", "  active: dc2", 1)).unwrap();
    std::fs::write(dir.path().join("new.yaml"), SHOP.replacen("rpo: 5m", "rpo: 2m", 1)).unwrap();
    let out = drplan(dir.path())
        .args(["diff", "old.yaml", "new.yaml", "--format", "markdown", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "changes exit 2 with --detailed-exitcode: {}", transcript(&out));
    insta::assert_snapshot!("diff_markdown_failback", String::from_utf8_lossy(&out.stdout));
    let same = drplan(dir.path()).args(["diff", "old.yaml", "old.yaml", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(same.status.code(), Some(0), "{}", transcript(&same));
    assert!(String::from_utf8_lossy(&same.stdout).contains("No changes."));
}

#[test]
fn git_revision_against_the_working_copy_and_errors_for_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").current_dir(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"]);
    std::fs::create_dir(dir.path().join("plans")).unwrap();
    std::fs::write(dir.path().join("plans/shop.yaml"), SHOP).unwrap();
    git(&["add", "."]);
    git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "shop"]);
    std::fs::write(dir.path().join("plans/shop.yaml"), SHOP.replacen("  active: dc1", "  active: dc2", 1)).unwrap();
    let out =
        drplan(dir.path()).args(["diff", "plans/shop.yaml", "--git", "HEAD", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["old"], "plans/shop.yaml@HEAD");
    assert!(report["headline"].as_str().unwrap().contains("over from `dc1` to `dc2` (planned failover)"));
    // A revision that does not exist, and a plan that does not validate, are errors with help.
    let out = drplan(dir.path()).args(["diff", "plans/shop.yaml", "--git", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read `plans/shop.yaml` at revision `nope`"),
        "{}",
        transcript(&out)
    );
    std::fs::write(dir.path().join("plans/shop.yaml"), SHOP.replacen("machines: [web1]", "machines: [web9]", 1))
        .unwrap();
    let out = drplan(dir.path()).args(["diff", "plans/shop.yaml", "--git", "HEAD"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("web9"), "{}", transcript(&out));
}

// --- drplan check ---

fn check(lab: &common::SimLab, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["check", "shop.yaml", "--format", "json"];
    args.extend_from_slice(extra);
    let out = lab.run(&args);
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", transcript(&out))))
}

fn reasons(report: &Value, machine: &str) -> Vec<String> {
    let m = report["machines"].as_array().unwrap().iter().find(|m| m["machine"] == machine).unwrap();
    m["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect()
}

/// A protected sim estate whose every machine was drilled just now.
fn drilled_lab() -> common::SimLab {
    let lab = common::SimLab::new(true);
    lab.edit_world(|w| w.time_scale = 0.001);
    let out = lab.run(&["drill", "shop.yaml", "--auto-complete"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    lab
}

#[test]
fn a_drilled_protected_estate_is_ready_and_each_problem_blocks_the_right_machines() {
    let lab = drilled_lab();
    let (code, report) = check(&lab, &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["ready"], true);
    assert_eq!((report["from"].as_str(), report["to"].as_str()), (Some("dc1"), Some("dc2")));

    // A stale recovery point: db1's newest point is an hour old (RPO 5m).
    lab.edit_world(|w| {
        let clock = w.clock.unwrap();
        for p in &mut w.machines.get_mut("db1").unwrap().points {
            p.time = clock - std::time::Duration::from_secs(3600);
        }
    });
    let (code, report) = check(&lab, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(reasons(&report, "db1"), vec!["the newest recovery point is 1h old (RPO 5m)"]);
    assert!(reasons(&report, "db2").is_empty() && reasons(&report, "web1").is_empty(), "{report}");
}

#[test]
fn a_dark_recovery_site_blocks_every_machine() {
    let lab = drilled_lab();
    let out = lab.run(&["sim", "site", "shop.yaml", "dc2", "--down"]);
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let (code, report) = check(&lab, &[]);
    assert_eq!(code, Some(1));
    for m in ["db1", "db2", "cache1", "app1", "web1"] {
        assert!(reasons(&report, m).iter().any(|r| r.starts_with("the recovery site dc2 is unreachable")), "{report}");
    }
}

#[test]
fn a_missing_script_blocks_the_machines_of_its_group() {
    let lab = drilled_lab();
    lab.edit_plan("run: [\"true\"], timeout: 1m", "run: [./scripts/check-db.sh], timeout: 1m");
    let (code, report) = check(&lab, &[]);
    assert_eq!(code, Some(1));
    for m in ["db1", "db2"] {
        assert_eq!(
            reasons(&report, m),
            vec!["script db/after/check-db cannot run here: `./scripts/check-db.sh` is missing or not executable"]
        );
    }
    assert!(reasons(&report, "app1").is_empty(), "{report}");
}

#[test]
fn an_overdue_or_missing_drill_blocks_and_every_format_says_so() {
    let lab = common::SimLab::new(true);
    let (code, report) = check(&lab, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(reasons(&report, "web1"), vec!["never drilled successfully (drills are due every 30days)"]);
    // Drills left out of the check.
    assert_eq!(check(&lab, &["--drill-max-age", "0"]).0, Some(0));
    let lab = drilled_lab();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, report) = check(&lab, &["--drill-max-age", "1s"]);
    assert_eq!(code, Some(1));
    assert!(reasons(&report, "app1")[0].starts_with("the last successful drill was "), "{report}");
    assert!(reasons(&report, "app1")[0].ends_with("ago (due every 1s)"), "{report}");
    let junit = lab.run(&["check", "shop.yaml", "--drill-max-age", "1s", "--format", "junit"]);
    let xml = String::from_utf8_lossy(&junit.stdout);
    assert!(
        xml.contains("tests=\"5\" failures=\"5\"") && xml.contains("<failure message=\"the last successful drill was"),
        "{xml}"
    );
    let md = lab.run(&["check", "shop.yaml", "--format", "markdown"]);
    assert_eq!(md.status.code(), Some(0), "{}", transcript(&md));
    assert!(String::from_utf8_lossy(&md.stdout).contains("### drplan check: `shop` ✅ ready"));
}

// --- the example pipelines ---

/// A sample repository as CI checks it out: `plans/shop.yaml` (sim, without the manual
/// step that would pause an unattended apply) committed on `main` in `origin`, and a clone on
/// a branch that fails the shop over to dc2.
fn sample_repository() -> tempfile::TempDir {
    let manual = "    before:\n      - manual: { name: dns, prompt: \"Lower the DNS TTL\", approvers: [oncall], only: [planned, failback] }\n";
    assert!(SHOP.contains(manual));
    let shop = SHOP.replacen(manual, "", 1);
    let dir = tempfile::tempdir().unwrap();
    let git = |cwd: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(cwd)
            .args(["-c", "user.name=ci", "-c", "user.email=ci@example", "-c", "init.defaultBranch=main"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let origin = dir.path().join("origin");
    std::fs::create_dir_all(origin.join("plans")).unwrap();
    std::fs::write(origin.join("plans/shop.yaml"), &shop).unwrap();
    let out = drplan(&origin).args(["sim", "init", "plans/shop.yaml", "--protected"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let mut world = drplan::providers::sim::WorldStore::new(&origin.join("plans/world.json"));
    let mut w = world.load().unwrap();
    w.time_scale = 0.001;
    world.save(&w).unwrap();
    git(&origin, &["init", "-q"]);
    git(&origin, &["add", "."]);
    git(&origin, &["commit", "-q", "-m", "shop"]);
    git(dir.path(), &["clone", "-q", "origin", "work"]);
    let work = dir.path().join("work");
    git(&work, &["checkout", "-q", "-b", "fail-over"]);
    std::fs::write(work.join("plans/shop.yaml"), shop.replacen("  active: dc1", "  active: dc2", 1)).unwrap();
    git(&work, &["commit", "-q", "-am", "fail the shop over to dc2"]);
    dir
}

/// Run a job's shell commands (as the CI system would, with bash -e) in `cwd`; steps that
/// install drplan are skipped: the drplan under test is on PATH.
fn run_commands(cwd: &std::path::Path, commands: &[String], env: &[(&str, String)]) {
    let bin = Path::new(env!("CARGO_BIN_EXE_drplan")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    for command in commands.iter().filter(|c| !c.contains("cargo install")) {
        let out = std::process::Command::new("bash")
            .current_dir(cwd)
            .args(["-e", "-o", "pipefail", "-c", command])
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env("DRPLAN_LOG", "off")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        assert!(out.status.success(), "`{command}` failed:\n{}", transcript(&out));
    }
}

fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci").join(name)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

#[test]
fn the_github_workflow_reviews_applies_and_proves_on_a_sample_repository() {
    let repo = sample_repository();
    let work = repo.path().join("work");
    let workflow = example("github-actions.yml");
    let plan = workflow["env"]["PLAN"].as_str().unwrap().to_string();
    let job = |name: &str| -> Vec<String> {
        workflow["jobs"][name]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str().map(str::to_string))
            .collect()
    };
    let summary = repo.path().join("summary.md");
    let env = |extra: &[(&'static str, String)]| {
        let mut env = vec![
            ("PLAN", plan.clone()),
            ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
            ("GITHUB_BASE_REF", "main".into()),
        ];
        env.extend_from_slice(extra);
        env
    };
    // The pull request: validate, diff against the base, plan; all in the job summary.
    run_commands(&work, &job("review"), &env(&[]));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.contains("**This change fails `shop` over from `dc1` to `dc2` (planned failover).**"), "{text}");
    assert!(text.contains("### drplan plan: `shop`") && text.contains("| Estimated RTO |"), "{text}");
    assert!(std::fs::read_to_string(work.join("review.md")).unwrap().contains("### drplan diff"));
    // The nightly job before the merge: a drill (asked for), then the check passes.
    run_commands(&work, &job("readiness"), &env(&[("DRPLAN_DRILL_NOW", "1".into())]));
    assert!(work.join("reports/drill/junit.xml").is_file() && work.join("reports/drill/timeline.svg").is_file());
    let check = std::fs::read_to_string(work.join("reports/check.xml")).unwrap();
    assert!(check.contains("failures=\"0\""), "{check}");
    // The merge: plan, then apply exactly that plan.
    run_commands(&work, &job("apply"), &env(&[]));
    assert!(work.join("reports/apply/junit.xml").is_file());
    let report: Value = serde_json::from_slice(&std::fs::read(work.join("reports-apply.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "succeeded");
}

#[test]
fn the_gitlab_pipeline_reviews_applies_and_proves_on_a_sample_repository() {
    let repo = sample_repository();
    let work = repo.path().join("work");
    let pipeline = example("gitlab-ci.yml");
    let plan = pipeline["variables"]["PLAN"].as_str().unwrap().to_string();
    let job = |name: &str| -> Vec<String> {
        pipeline[name]["script"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
    };
    let env = |extra: &[(&'static str, String)]| {
        let mut env = vec![("PLAN", plan.clone()), ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main".to_string())];
        env.extend_from_slice(extra);
        env
    };
    run_commands(&work, &job("review"), &env(&[]));
    let review = std::fs::read_to_string(work.join("review.md")).unwrap();
    assert!(review.contains("fails `shop` over from `dc1` to `dc2`") && review.contains("### drplan plan"), "{review}");
    run_commands(&work, &job("readiness"), &env(&[("DRPLAN_DRILL", "yes".into())]));
    assert!(work.join("reports/drill/junit.xml").is_file());
    run_commands(&work, &job("apply"), &env(&[]));
    assert!(work.join("reports/apply/junit.xml").is_file());
}

#[test]
fn a_machines_freeze_and_thaw_programs_are_part_of_the_review() {
    let (report, human) = diff(&[(
        "  - name: app1\n    nics: [ { network: prod, ip: 10.0.0.30 } ]",
        "  - name: app1\n    nics: [ { network: prod, ip: 10.0.0.30 } ]\n    consistency: { freeze: [fsfreeze, -f, /srv], thaw: [fsfreeze, -u, /srv], timeout: 20s }",
    )]);
    let changes = report["changes"].as_array().unwrap();
    let app1 = changes
        .iter()
        .find(|c| c["kind"] == "machine-changed" && c["machine"] == "app1" && c["setting"] == "consistency")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(app1["from"], "none");
    assert_eq!(app1["to"], "freeze `fsfreeze -f /srv`, thaw `fsfreeze -u /srv`, within 20s");
    assert!(human.contains("fsfreeze -f /srv"), "{human}");
}
