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
