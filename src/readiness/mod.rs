//! `drplan check`: could each machine fail over now? For a nightly pipeline: protected,
//! replicating, the newest recovery point within the RPO, the recovery site reachable, the
//! scripts of its run present, a successful drill recent enough. Every machine gets its
//! blocking reasons (and warnings); the plan is ready when no machine has a reason.

mod render;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use render::{human, json, junit, markdown};

use crate::contract::{Inventory, ReplicationHealth};
use crate::spec::{Direction, Operation};
use crate::state::{JournalEvent, JournalRecord, RunKind, State};
use crate::validate::{Model, StepKind, StepSpec};

/// What the check is told besides the plan and the world.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// A machine whose last successful drill is older (or that was never drilled) is blocked;
    /// None: drills are not checked.
    pub drill_max_age: Option<Duration>,
    /// Real time, for drill ages (recovery point ages use the provider's clock).
    pub now: SystemTime,
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub plan: String,
    /// Where the machines run and where they would fail over to.
    pub from: Option<String>,
    pub to: Option<String>,
    pub ready: bool,
    pub machines: Vec<MachineReadiness>,
    /// Problems of the plan as a whole (an unfinished run), also given to every machine.
    pub plan_reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct MachineReadiness {
    pub machine: String,
    pub group: String,
    pub ready: bool,
    /// Why it cannot fail over now.
    pub reasons: Vec<String>,
    /// What does not block a failover but deserves a look.
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_point_age_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_drill_age_s: Option<u64>,
}

/// The newest successful drill of each machine: from the drills in the state's history,
/// newest first, each machine's test copy that succeeded in that drill's journal.
pub fn last_drills(state: &State, journal: impl Fn(&str) -> Vec<JournalRecord>) -> BTreeMap<String, SystemTime> {
    let mut found = BTreeMap::new();
    for entry in state.history.iter().rev().filter(|h| h.kind == RunKind::Drill && h.status == "succeeded") {
        for record in journal(&entry.run) {
            if let (Some(machine), JournalEvent::Succeeded { .. }) =
                (record.step.strip_prefix("test-copy/"), &record.event)
            {
                found.entry(machine.to_string()).or_insert(entry.finished_at);
            }
        }
    }
    found
}

pub fn assess(
    model: &Model,
    inventory: &Inventory,
    state: &State,
    drills: &BTreeMap<String, SystemTime>,
    options: &CheckOptions,
) -> Readiness {
    let mut plan_reasons = Vec::new();
    if let Some(run) = &state.run {
        plan_reasons.push(format!("run {} ({}) is unfinished: resume or cancel it first", run.id, run.kind.title()));
    }
    let mut route = None;
    let machines: Vec<MachineReadiness> = model
        .machines
        .iter()
        .enumerate()
        .map(|(m, machine)| {
            let mut r = MachineReadiness {
                machine: machine.name.clone(),
                group: model.groups[machine.group].name.clone(),
                ready: false,
                reasons: plan_reasons.clone(),
                warnings: Vec::new(),
                newest_point_age_s: None,
                last_drill_age_s: None,
            };
            if let Some(to) = replication(model, inventory, &mut r) {
                route.get_or_insert(to);
            }
            scripts(model, m, &mut r);
            drill(drills, options, &mut r);
            r.ready = r.reasons.is_empty();
            r
        })
        .collect();
    let ready = machines.iter().all(|m| m.ready);
    let (from, to) = route.map_or((None, None), |(f, t)| (Some(f), Some(t)));
    Readiness { plan: model.name.clone(), from, to, ready, machines, plan_reasons }
}

/// Protection, replication health, the newest point's age and the recovery site; returns
/// the route (from, to) when the machine replicates.
fn replication(model: &Model, inventory: &Inventory, r: &mut MachineReadiness) -> Option<(String, String)> {
    let Some(inv) = inventory.machines.get(&r.machine) else {
        r.reasons.push("the provider does not report this machine".into());
        return None;
    };
    let Some(active) = inv.active_site.clone() else {
        r.reasons.push("it runs at no site (not found)".into());
        return None;
    };
    let to = model.site_id(&active).map(|s| model.site(model.partner_of(s)).name.clone()).unwrap_or_default();
    if inv.commit_pending {
        r.reasons.push(format!("a failover to {active} awaits commit (`drplan commit` or `drplan rollback`)"));
    }
    let reachable = |site: &str| inventory.sites.get(site).is_none_or(|s| s.reachable);
    if !reachable(&to) {
        let why = inventory.sites.get(&to).and_then(|s| s.error.clone()).unwrap_or_default();
        r.reasons.push(format!(
            "the recovery site {to} is unreachable{}",
            if why.is_empty() { String::new() } else { format!(": {why}") }
        ));
    }
    let Some(replica) = inv.replication.as_ref().filter(|rep| rep.from == active && rep.to == to) else {
        r.reasons.push(format!("not protected: nothing replicates it from {active} to {to}"));
        return None;
    };
    match replica.health {
        ReplicationHealth::Healthy => {}
        ReplicationHealth::Degraded => {
            r.reasons.push(format!("replication {active} → {to} is degraded (a site cannot be reached)"))
        }
        ReplicationHealth::Inconsistent => r.reasons.push(format!(
            "the replica at {to} is inconsistent (a transfer did not finish; the next replication repairs it)"
        )),
    }
    match inv.points.last() {
        None => r.reasons.push(format!("no recovery point at {to} yet")),
        Some(point) => {
            let age = inventory.taken_at.duration_since(point.time).unwrap_or_default();
            r.newest_point_age_s = Some(age.as_secs());
            let rpo = model.protection.rpo;
            if age > rpo {
                r.reasons.push(format!(
                    "the newest recovery point is {} old (RPO {})",
                    crate::spec::time_format::human_duration(age),
                    crate::spec::time_format::human_duration(rpo)
                ));
            }
            if !inv.points.iter().any(|p| p.consistency == crate::contract::Consistency::App) {
                r.warnings.push("no app-consistent recovery point".into());
            }
        }
    }
    Some((active, to))
}

/// The scripts this machine's failover would run (its group's and the phases') must exist.
fn scripts(model: &Model, m: usize, r: &mut MachineReadiness) {
    let group = &model.groups[model.machines[m].group];
    let lists: [&[StepSpec]; 6] = [
        &model.shutdown_steps.before,
        &model.shutdown_steps.after,
        &model.failover_steps.before,
        &model.failover_steps.after,
        &group.before,
        &group.after,
    ];
    let failover = [Operation::Planned, Operation::Unplanned];
    for step in
        lists.into_iter().flatten().filter(|s| failover.iter().any(|op| s.applies_to(&[*op], Direction::Forward)))
    {
        let StepKind::Script(script) = &step.kind else { continue };
        let written = script.argv.first().map(String::as_str).unwrap_or_default();
        let present = if written.contains('/') {
            crate::os::process::is_executable(&script.program)
        } else {
            crate::os::process::on_path(std::path::Path::new(written)).is_some()
        };
        if !present {
            r.reasons.push(format!("script {} cannot run here: `{written}` is missing or not executable", step.id));
        }
    }
}

fn drill(drills: &BTreeMap<String, SystemTime>, options: &CheckOptions, r: &mut MachineReadiness) {
    let Some(max) = options.drill_max_age else { return };
    let human = crate::spec::time_format::human_duration;
    match drills.get(&r.machine) {
        None => r.reasons.push(format!("never drilled successfully (drills are due every {})", human(max))),
        Some(at) => {
            let age = options.now.duration_since(*at).unwrap_or_default();
            r.last_drill_age_s = Some(age.as_secs());
            if age > max {
                r.reasons.push(format!("the last successful drill was {} ago (due every {})", human(age), human(max)));
            }
        }
    }
}
