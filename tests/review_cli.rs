//! Reviewing plans: `drplan diff` between two revisions (files, or a git revision), and the
//! readiness check `drplan check` on sim.

mod common;

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
