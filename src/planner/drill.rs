//! Drills (test failovers): test copies from a recovery point, attached only to the isolated
//! test networks, in group order with the steps meant for drills; and their cleanup.

use std::collections::{BTreeMap, HashMap};

use super::ActionPlan;
use super::action::{Action, ActionKind, FailurePolicy, Phase, RunKind};
use super::build::{Builder, Mode, PlanInput, Route, StepContext, StepScope, assemble};
use super::error::PlanError;
use crate::contract::ProviderOp;
use crate::diff::{ChangeSet, DiffError, Transition, choose_point};
use crate::graph::GroupGraph;
use crate::spec::{Direction, FileDiagnostic, OnFailure};
use crate::validate::{Destination, MachineId, Phase as StepPhase, RecoveryPointSel};

/// Which machines a drill covers (all when both lists are empty).
#[derive(Debug, Clone, Default)]
pub struct DrillScope {
    pub groups: Vec<String>,
    pub machines: Vec<String>,
}

struct DrillMachine {
    id: MachineId,
    site: String,
    point: u64,
}

/// The plan of a drill: create and start test copies in group order.
pub fn build_drill(
    input: &PlanInput,
    scope: &DrillScope,
    point: Option<RecoveryPointSel>,
    drill: &str,
) -> Result<ActionPlan, Vec<FileDiagnostic>> {
    let model = input.model;
    let at = model.target.active_span;
    let bad = |e: DiffError| FileDiagnostic::new(model.source.clone(), e);
    let selector = point.unwrap_or(model.target.recovery_point);
    let whole_plan = scope.groups.is_empty() && scope.machines.is_empty();
    let selected = |m: MachineId| {
        whole_plan
            || scope.machines.contains(&model.machines[m].name)
            || scope.groups.contains(&model.groups[model.machines[m].group].name)
    };
    let mut problems = Vec::new();
    let mut machines = Vec::new();
    let mut direction = None;
    let mut route = None;
    for (id, machine) in model.machines.iter().enumerate().filter(|(id, _)| selected(*id)) {
        let Some(inv) = input.inventory.machines.get(&machine.name) else { continue };
        let Some(active) = inv.active_site.clone() else {
            problems.push(bad(DiffError::MachineNotFound {
                machine: machine.name.clone(),
                id: machine.provider_id.clone(),
                at,
            }));
            continue;
        };
        let replica = inv.replication.as_ref().filter(|r| r.from == active);
        let Some(replica) = replica else {
            let to = model.site(model.partner_of(model.site_id(&active).unwrap_or_default())).name.clone();
            problems.push(bad(DiffError::NotProtected { machine: machine.name.clone(), from: active, to, at }));
            continue;
        };
        let Some(chosen) = choose_point(&inv.points, selector) else {
            problems.push(bad(DiffError::NoRecoveryPoint {
                machine: machine.name.clone(),
                selector: selector.to_string(),
                at,
            }));
            continue;
        };
        let dir = if model.site_id(&replica.to) == Some(model.protection.recovery) {
            Direction::Forward
        } else {
            Direction::Back
        };
        direction = Some(dir);
        route.get_or_insert((active.clone(), replica.to.clone()));
        machines.push(DrillMachine { id, site: replica.to.clone(), point: chosen.id });
    }
    let caps = input.platform.capabilities();
    let provider = model.site(model.protection.primary).provider.as_str();
    if let Some(dir) = direction
        && !crate::contract::allows(caps.test_failover, dir)
    {
        let what = match dir {
            Direction::Forward => "test failover to the recovery site",
            Direction::Back => "test failover back from the recovery site",
        };
        problems.push(FileDiagnostic::new(
            model.source.clone(),
            PlanError::Unsupported {
                provider,
                what: what.into(),
                help: "this platform cannot drill in this direction; drill before failing over, or after failing back"
                    .into(),
                at,
            },
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut b = Builder::new(input, RunKind::Drill, direction, Mode::Normal, Some(drill.to_string()));
    let graph = GroupGraph::new(model);
    let by_group: HashMap<usize, Vec<&DrillMachine>> = machines.iter().fold(HashMap::new(), |mut acc, m| {
        acc.entry(model.machines[m.id].group).or_insert_with(Vec::new).push(m);
        acc
    });
    let site = route.as_ref().map(|r| r.1.clone()).unwrap_or_default();
    let mut done: BTreeMap<usize, String> = BTreeMap::new();
    let mut all_done = Vec::new();
    // The test copies are made group by group as they boot: the failover phase's `before`
    // steps run before the first group, its `after` steps once the last group is done.
    let all_names = machines.iter().map(|m| model.machines[m.id].name.clone()).collect();
    let phase_context = StepContext {
        scope: StepScope::Phase(Phase::Failover),
        site: site.clone(),
        ips: Vec::new(),
        machines: all_names,
    };
    let entry = if machines.is_empty() {
        None
    } else {
        b.chain(&model.failover_steps.before, StepPhase::Before, Vec::new(), &phase_context)
    };
    for g in graph.boot_order() {
        let group = &model.groups[g];
        let members = by_group.get(&g).cloned().unwrap_or_default();
        let mut after_deps: Vec<String> = graph.dependencies(g).iter().filter_map(|d| done.get(d).cloned()).collect();
        if after_deps.is_empty() {
            after_deps.extend(entry.clone());
        }
        if members.is_empty() && !(whole_plan && group.machines.is_empty()) {
            if !after_deps.is_empty() {
                let id = b.barrier(format!("done/{}", group.name), Phase::Drill, Some(group.name.clone()), after_deps);
                done.insert(g, id);
            }
            continue;
        }
        let begin = b.barrier(format!("begin/{}", group.name), Phase::Drill, Some(group.name.clone()), after_deps);
        let ips: Vec<String> = members
            .iter()
            .flat_map(|m| model.addresses(m.id, Destination::Drill))
            .filter_map(|n| n.ip.map(|ip| ip.to_string()))
            .collect();
        let machines = model.group_machine_names(g);
        let context = StepContext { scope: StepScope::Group(g), site: site.clone(), ips, machines };
        let mut last = begin;
        if let Some(id) = b.chain(&group.before, StepPhase::Before, vec![last.clone()], &context) {
            last = id;
        }
        let mut created = Vec::new();
        for m in &members {
            let name = model.machines[m.id].name.clone();
            let op = ProviderOp::CreateTestCopy {
                machine: name.clone(),
                site: m.site.clone(),
                point: m.point,
                nics: model.addresses(m.id, Destination::Drill),
                drill: drill.to_string(),
            };
            created.push(b.push(Action {
                id: format!("test-copy/{name}"),
                phase: Phase::Drill,
                group: Some(group.name.clone()),
                machine: Some(name),
                kind: ActionKind::Provider { op },
                needs: Vec::new(),
                after: vec![last.clone()],
                estimate_ms: 0,
                on_failure: OnFailure::Continue,
            }));
        }
        let mut previous = if created.is_empty() { vec![last] } else { created };
        if let Some(id) = b.chain(&group.after, StepPhase::After, previous.clone(), &context) {
            previous = vec![id];
        }
        let id = b.barrier(format!("done/{}", group.name), Phase::Drill, Some(group.name.clone()), previous);
        done.insert(g, id.clone());
        all_done.push(id);
    }
    if !all_done.is_empty() {
        let booted = b.barrier("booted".into(), Phase::Drill, None, all_done);
        b.chain(&model.failover_steps.after, StepPhase::After, vec![booted], &phase_context);
    }
    b.notes.push(format!("drill {drill}: production machines and replication are not touched; `drplan drill complete` removes the test copies"));
    let (from, to) = route.map_or((None, None), |(f, t)| (Some(f), Some(t)));
    let route = Route { run: RunKind::Drill, direction, from, to, policy: FailurePolicy::Continue };
    let changes = ChangeSet {
        transition: Transition::None,
        machines: Vec::new(),
        drift: Vec::new(),
        max_lag: input.changes.max_lag,
        problems: Vec::new(),
    };
    Ok(assemble(input, b, route, &changes))
}

/// The cleanup of a drill: remove every test copy it may have created (each removal is a
/// no-op when there is nothing to remove, so a partial drill is cleaned up as well).
pub fn build_drill_cleanup(input: &PlanInput, drill: &str, copies: &BTreeMap<String, String>) -> ActionPlan {
    let model = input.model;
    let mut b = Builder::new(input, RunKind::DrillCleanup, None, Mode::Normal, Some(drill.to_string()));
    // Also whatever the provider still reports for this drill (copies made by an earlier,
    // interrupted attempt).
    let mut all = copies.clone();
    for (name, m) in &input.inventory.machines {
        for copy in m.test_copies.iter().filter(|c| c.drill == drill) {
            all.entry(name.clone()).or_insert_with(|| copy.site.clone());
        }
    }
    for (machine, site) in &all {
        b.push(Action {
            id: format!("remove-test-copy/{machine}"),
            phase: Phase::Cleanup,
            group: model.machine_id(machine).map(|m| model.groups[model.machines[m].group].name.clone()),
            machine: Some(machine.clone()),
            kind: ActionKind::Provider {
                op: ProviderOp::RemoveTestCopy {
                    machine: machine.clone(),
                    site: site.clone(),
                    drill: drill.to_string(),
                },
            },
            needs: Vec::new(),
            after: Vec::new(),
            estimate_ms: 0,
            on_failure: OnFailure::Continue,
        });
    }
    let route =
        Route { run: RunKind::DrillCleanup, direction: None, from: None, to: None, policy: FailurePolicy::Continue };
    let changes = ChangeSet {
        transition: Transition::None,
        machines: Vec::new(),
        drift: Vec::new(),
        max_lag: None,
        problems: Vec::new(),
    };
    assemble(input, b, route, &changes)
}
