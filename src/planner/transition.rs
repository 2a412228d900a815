//! The action DAG of a transition, one phase at a time: (failback with delta sync) copy while
//! running and the "complete failover" gate; shut down in reverse group order and the final
//! sync; fail over; boot groups in order with their steps; commit, then protection.

use std::collections::{HashMap, HashSet};

use super::action::{ActionKind, Phase, RunKind};
use super::build::{Builder, Deps, Mode, StepContext, StepScope, ends};
use crate::contract::{Power, ProviderOp, SyncMode};
use crate::diff::{ChangeSet, MachineDiff, Movement, ProtectionChange};
use crate::graph::GroupGraph;
use crate::spec::{CommitMode, OnFailure};
use crate::validate::{Destination, GroupId, Model, Phase as StepPhase};

/// The machines a transition touches, indexed by group once.
struct Moves<'c> {
    graph: GroupGraph,
    /// Machines that change site.
    moving: Vec<&'c MachineDiff>,
    moving_by_group: Vec<Vec<usize>>,
    /// Machines that start: those that move, and those that stay but are off.
    starting: Vec<&'c MachineDiff>,
    starting_by_group: Vec<Vec<usize>>,
}

impl<'c> Moves<'c> {
    fn new(model: &Model, changes: &'c ChangeSet) -> Self {
        let by_group = |diffs: &[&MachineDiff]| -> Vec<Vec<usize>> {
            let mut index = vec![Vec::new(); model.groups.len()];
            for (i, d) in diffs.iter().enumerate() {
                index[model.machines[d.id].group].push(i);
            }
            index
        };
        let moving: Vec<&MachineDiff> = changes.machines.iter().filter(|d| d.movement != Movement::Stay).collect();
        let starting: Vec<&MachineDiff> =
            changes.machines.iter().filter(|d| d.movement != Movement::Stay || d.start).collect();
        Moves {
            graph: GroupGraph::new(model),
            moving_by_group: by_group(&moving),
            moving,
            starting_by_group: by_group(&starting),
            starting,
        }
    }
}

/// Ids of the actions of a machine, by its position in `Moves::moving`.
type ByMachine = HashMap<usize, String>;

impl Builder<'_> {
    pub(super) fn build(&mut self, changes: &ChangeSet) {
        let moves = Moves::new(self.model, changes);
        let gate = self.presync_and_gate(&moves);
        let (shutdown_of, sync_of) = self.shutdown_and_sync(&moves, gate.as_deref());
        let (failover_of, failed_over) = self.fail_over(&moves, &shutdown_of, &sync_of, gate.as_deref());
        let (start_of, booted) = self.boot(&moves, &failover_of, failed_over);
        let shut_down: HashSet<&str> = shutdown_of.keys().map(|&i| moves.moving[i].name.as_str()).collect();
        self.commit_and_protect(changes, &start_of, booted, &shut_down);
    }

    fn unplanned(&self) -> bool {
        self.run.is_unplanned()
    }

    fn failback_sync(&self) -> Option<SyncMode> {
        (self.run == RunKind::Failback).then_some(self.model.target.sync)
    }

    /// Failback with delta sync, phase 1: copy while the live machines keep running, then wait
    /// for the "complete failover" approval. Returns the gate's id.
    fn presync_and_gate(&mut self, moves: &Moves) -> Option<String> {
        if self.failback_sync() != Some(SyncMode::Delta) || moves.moving.is_empty() {
            return None;
        }
        let mut presyncs = Vec::new();
        for d in &moves.moving {
            let (from, to) = ends(d);
            let op = ProviderOp::Sync { machine: d.name.clone(), from, to, mode: SyncMode::Delta, final_sync: false };
            presyncs.push(self.provider(format!("presync/{}", d.name), Phase::PreSync, d, op, Deps::none()));
        }
        let (from, to) = ends(moves.moving[0]);
        Some(self.push(super::action::Action {
            id: "gate/complete-failover".into(),
            phase: Phase::Gate,
            group: None,
            machine: None,
            kind: ActionKind::Manual {
                prompt: format!(
                    "Complete the failover: shut down the machines at {from}, transfer the last changes and start them at {to}"
                ),
                approvers: Vec::new(),
            },
            needs: presyncs,
            after: Vec::new(),
            estimate_ms: 0,
            on_failure: OnFailure::Stop,
        }))
    }

    /// Shut down in reverse group order (a group stops once the groups waiting for it have),
    /// then the final sync of each machine. An unplanned failover only tries, if asked to.
    fn shutdown_and_sync(&mut self, moves: &Moves, gate: Option<&str>) -> (ByMachine, ByMachine) {
        let model = self.model;
        let unplanned = self.unplanned();
        let mut shutdown_of = ByMachine::new();
        let mut sync_of = ByMachine::new();
        if moves.moving.is_empty() || (unplanned && !model.target.try_shutdown) {
            return (shutdown_of, sync_of);
        }
        let on_failure = if unplanned { OnFailure::Continue } else { OnFailure::Stop };
        let context = self.phase_context(moves, Phase::Shutdown);
        let before = self.chain(
            &model.shutdown_steps.before,
            StepPhase::Before,
            gate.map(str::to_string).into_iter().collect(),
            &context,
        );
        let mut all_stopped = Vec::new();
        let mut stopped: HashMap<GroupId, String> = HashMap::new();
        for g in moves.graph.shutdown_order() {
            let after_dependents: Vec<String> =
                moves.graph.dependents(g).iter().filter_map(|d| stopped.get(d).cloned()).collect();
            let mut ids = Vec::new();
            for &i in &moves.moving_by_group[g] {
                let d = moves.moving[i];
                if d.power == Some(Power::Off) {
                    continue;
                }
                let (from, _) = ends(d);
                let timeout = model.machines[d.id].boot_timeout;
                let op = ProviderOp::Shutdown { machine: d.name.clone(), site: from, timeout };
                let deps = Deps {
                    needs: gate.map(str::to_string).into_iter().collect(),
                    after: after_dependents.iter().chain(&before).cloned().collect(),
                    on_failure,
                };
                let id = self.provider(format!("shutdown/{}", d.name), Phase::Shutdown, d, op, deps);
                shutdown_of.insert(i, id.clone());
                ids.push(id);
            }
            if !ids.is_empty() || !after_dependents.is_empty() {
                let group = model.groups[g].name.clone();
                let mut after = ids;
                after.extend(after_dependents);
                let id = self.barrier(format!("stopped/{group}"), Phase::Shutdown, Some(group), after);
                stopped.insert(g, id.clone());
                all_stopped.push(id);
            }
        }
        let all_stopped = if all_stopped.is_empty() { before.into_iter().collect() } else { all_stopped };
        let shut = self.chain(&model.shutdown_steps.after, StepPhase::After, all_stopped, &context);
        // The final sync: everything the source wrote reaches the target.
        if self.mode != Mode::Normal {
            return (shutdown_of, sync_of);
        }
        for (i, d) in moves.moving.iter().enumerate() {
            let (from, to) = ends(d);
            let mode = self.failback_sync().unwrap_or(SyncMode::Delta);
            let op = ProviderOp::Sync { machine: d.name.clone(), from, to, mode, final_sync: true };
            let previous: Vec<String> =
                shutdown_of.get(&i).cloned().into_iter().chain(gate.map(str::to_string)).chain(shut.clone()).collect();
            let id = self.provider(format!("sync/{}", d.name), Phase::FinalSync, d, op, self.deps_after(previous));
            sync_of.insert(i, id);
        }
        (shutdown_of, sync_of)
    }

    /// What a failover-side action waits for: in an unplanned failover its predecessors only
    /// have to have finished (a failed shutdown or sync does not block it); otherwise they
    /// must have succeeded, and a failure stops the run.
    fn deps_after(&self, previous: Vec<String>) -> Deps {
        if self.unplanned() {
            Deps { needs: Vec::new(), after: previous, on_failure: OnFailure::Continue }
        } else {
            Deps { needs: previous, after: Vec::new(), on_failure: OnFailure::Stop }
        }
    }

    /// Fail over every moving machine (or, for a rollback, revert or repoint it); booting is
    /// ordered separately, by group. Returns the action id by machine name.
    fn fail_over<'c>(
        &mut self,
        moves: &Moves<'c>,
        shutdown_of: &ByMachine,
        sync_of: &ByMachine,
        gate: Option<&str>,
    ) -> (HashMap<&'c str, String>, Option<String>) {
        let model = self.model;
        let unplanned = self.unplanned();
        let mut failover_of = HashMap::new();
        let context = self.phase_context(moves, Phase::Failover);
        // The phase's `before` steps wait for every machine's sync (or shutdown).
        let ready: Vec<String> = (0..moves.moving.len())
            .filter_map(|i| sync_of.get(&i).or_else(|| shutdown_of.get(&i)).cloned())
            .chain(gate.map(str::to_string))
            .collect();
        let before = self.chain(&model.failover_steps.before, StepPhase::Before, ready, &context);
        let mut ids = Vec::new();
        for (i, d) in moves.moving.iter().enumerate() {
            let (from, to) = ends(d);
            let destination =
                if matches!(d.movement, Movement::Forward { .. }) { Destination::Recovery } else { Destination::Home };
            let (id, op) = match self.mode {
                Mode::Revert => {
                    (format!("revert/{}", d.name), ProviderOp::Revert { machine: d.name.clone(), from, to })
                }
                Mode::Repoint(_) => (
                    format!("repoint/{}", d.name),
                    ProviderOp::ChangePoint {
                        machine: d.name.clone(),
                        site: to,
                        point: d.point.as_ref().map_or(0, |p| p.id),
                    },
                ),
                _ => (
                    format!("failover/{}", d.name),
                    ProviderOp::Failover {
                        machine: d.name.clone(),
                        from,
                        to,
                        point: if unplanned { d.point.as_ref().map(|p| p.id) } else { None },
                        prefer_synced: unplanned && model.target.try_shutdown,
                        nics: model.addresses(d.id, destination),
                    },
                ),
            };
            let previous: Vec<String> = sync_of
                .get(&i)
                .cloned()
                .into_iter()
                .chain(shutdown_of.get(&i).cloned().filter(|_| self.mode != Mode::Normal))
                .chain(before.clone())
                .collect();
            let id = self.provider(id, Phase::Failover, d, op, self.deps_after(previous));
            failover_of.insert(d.name.as_str(), id.clone());
            ids.push(id);
        }
        let after = self.chain(&model.failover_steps.after, StepPhase::After, ids, &context);
        (failover_of, after)
    }

    /// What the steps around a phase are told: the site it happens at (the source for the
    /// shutdown, the destination for the failover) and every machine that moves.
    fn phase_context(&self, moves: &Moves, phase: Phase) -> StepContext {
        let site = moves.moving.first().map(|d| if phase == Phase::Shutdown { ends(d).0 } else { ends(d).1 });
        StepContext {
            scope: StepScope::Phase(phase),
            site: site.unwrap_or_default(),
            ips: Vec::new(),
            machines: moves.moving.iter().map(|d| d.name.clone()).collect(),
        }
    }

    /// Boot groups in order, with their steps. Returns the start action of each machine and
    /// the barrier after the last group.
    fn boot<'c>(
        &mut self,
        moves: &Moves<'c>,
        failover_of: &HashMap<&str, String>,
        failed_over: Option<String>,
    ) -> (HashMap<&'c str, String>, Option<String>) {
        let model = self.model;
        let steps_run = !self.run.step_operations().is_empty() && !moves.moving.is_empty();
        let start_failure = self.run.script_failure_policy();
        let mut done_of: HashMap<GroupId, String> = HashMap::new();
        let mut start_of = HashMap::new();
        let mut boot_done = Vec::new();
        if moves.starting.is_empty() {
            return (start_of, None);
        }
        for g in moves.graph.boot_order() {
            let group = &model.groups[g];
            let members = &moves.starting_by_group[g];
            let mut after_deps: Vec<String> =
                moves.graph.dependencies(g).iter().filter_map(|d| done_of.get(d).cloned()).collect();
            // The first groups wait for the failover phase's `after` steps.
            if after_deps.is_empty() {
                after_deps.extend(failed_over.clone());
            }
            let runs_steps = steps_run && (!members.is_empty() || group.machines.is_empty());
            if members.is_empty() && !runs_steps {
                // Nothing to do here; keep the ordering through it.
                if !after_deps.is_empty() {
                    let id =
                        self.barrier(format!("done/{}", group.name), Phase::Boot, Some(group.name.clone()), after_deps);
                    done_of.insert(g, id);
                }
                continue;
            }
            let context = self.group_context(g, &moves.starting, members);
            let mut last =
                self.barrier(format!("begin/{}", group.name), Phase::Boot, Some(group.name.clone()), after_deps);
            if runs_steps && let Some(id) = self.chain(&group.before, StepPhase::Before, vec![last.clone()], &context) {
                last = id;
            }
            let mut started = Vec::new();
            for &i in members {
                let d = moves.starting[i];
                let nics = match d.movement {
                    // A staying machine keeps its addresses.
                    Movement::Stay => Vec::new(),
                    Movement::Forward { .. } => model.addresses(d.id, Destination::Recovery),
                    Movement::Back { .. } => model.addresses(d.id, Destination::Home),
                };
                let timeout = model.machines[d.id].boot_timeout;
                let op = ProviderOp::Start { machine: d.name.clone(), site: d.desired.clone(), nics, timeout };
                let deps = Deps {
                    needs: failover_of.get(d.name.as_str()).cloned().into_iter().collect(),
                    after: vec![last.clone()],
                    on_failure: start_failure,
                };
                let id = self.provider(format!("start/{}", d.name), Phase::Boot, d, op, deps);
                start_of.insert(d.name.as_str(), id.clone());
                started.push(id);
            }
            let mut previous = if started.is_empty() { vec![last] } else { started };
            if runs_steps && let Some(id) = self.chain(&group.after, StepPhase::After, previous.clone(), &context) {
                previous = vec![id];
            }
            let done = self.barrier(format!("done/{}", group.name), Phase::Boot, Some(group.name.clone()), previous);
            done_of.insert(g, done.clone());
            boot_done.push(done);
        }
        let booted = (!boot_done.is_empty()).then(|| self.barrier("booted".into(), Phase::Boot, None, boot_done));
        (start_of, booted)
    }

    /// Commit, then protection: reverse replication waits for the commit (it drops the points
    /// a rollback would need), and an old source still running is stopped before it is
    /// overwritten.
    fn commit_and_protect(
        &mut self,
        changes: &ChangeSet,
        start_of: &HashMap<&str, String>,
        booted: Option<String>,
        shut_down: &HashSet<&str>,
    ) {
        let model = self.model;
        let auto_commit = model.target.commit == CommitMode::Auto;
        for d in &changes.machines {
            let moved = d.movement != Movement::Stay && self.mode == Mode::Normal;
            let mut previous: Vec<String> = Vec::new();
            if (moved && auto_commit) || d.commit {
                let op = ProviderOp::Commit { machine: d.name.clone(), site: d.desired.clone() };
                let deps = Deps {
                    needs: start_of.get(d.name.as_str()).cloned().into_iter().collect(),
                    after: booted.iter().cloned().collect(),
                    on_failure: OnFailure::Continue,
                };
                previous.push(self.provider(format!("commit/{}", d.name), Phase::Commit, d, op, deps));
            }
            let protection = if moved { self.protection_after_move(d, auto_commit) } else { d.protection.clone() };
            let stale = match (&d.stop_stale_copy, &protection) {
                (Some(site), _) => Some(site.clone()),
                (None, ProtectionChange::Reprotect { to, .. })
                    if moved && d.power.is_some_and(Power::runs) && !shut_down.contains(d.name.as_str()) =>
                {
                    Some(to.clone())
                }
                _ => None,
            };
            if let Some(site) = stale {
                let timeout = model.machines[d.id].boot_timeout;
                let op = ProviderOp::Shutdown { machine: d.name.clone(), site, timeout };
                let deps = Deps { needs: previous.clone(), after: Vec::new(), on_failure: OnFailure::Stop };
                previous = vec![self.provider(format!("stop-stale/{}", d.name), Phase::Protect, d, op, deps)];
            }
            let (id, op) = match protection {
                ProtectionChange::None => continue,
                ProtectionChange::Enable { from, to } => {
                    (format!("protect/{}", d.name), ProviderOp::EnableProtection { machine: d.name.clone(), from, to })
                }
                ProtectionChange::Reprotect { from, to } => {
                    (format!("reprotect/{}", d.name), ProviderOp::Reprotect { machine: d.name.clone(), from, to })
                }
                ProtectionChange::Resync { from, to } => (
                    format!("resync/{}", d.name),
                    ProviderOp::Sync { machine: d.name.clone(), from, to, mode: SyncMode::Delta, final_sync: false },
                ),
            };
            // A staying machine is protected after it starts, whether or not the start worked.
            let after = if moved { Vec::new() } else { start_of.get(d.name.as_str()).cloned().into_iter().collect() };
            self.provider(id, Phase::Protect, d, op, Deps { needs: previous, after, on_failure: OnFailure::Continue });
        }
    }

    /// Reverse replication after a move, when the plan wants it and the partner is reachable;
    /// otherwise it waits (the note says so) for a later apply.
    fn protection_after_move(&mut self, d: &MachineDiff, auto_commit: bool) -> ProtectionChange {
        let model = self.model;
        let partner = model.site(model.partner_of(model.site_id(&d.desired).unwrap_or_default())).name.clone();
        let partner_up = self.inventory.sites.get(&partner).is_none_or(|s| s.reachable);
        let here = &d.desired;
        let reason = if !model.target.reprotect {
            "`target.reprotect` is false".to_string()
        } else if !auto_commit {
            format!("reverse replication {here} → {partner} starts after `drplan commit`")
        } else if partner_up {
            return ProtectionChange::Reprotect { from: d.desired.clone(), to: partner };
        } else {
            let note = format!("{partner} is unreachable: reprotection waits for it (apply again once it is back)");
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
            format!("reverse replication {here} → {partner} waits for {partner} to be reachable")
        };
        self.unprotected.push(crate::planner::Unprotected { machine: d.name.clone(), reason });
        ProtectionChange::None
    }
}
