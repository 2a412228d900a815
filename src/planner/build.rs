//! Turning a change set into an action DAG, following the failover semantics:
//!
//! - planned failover: shut down (reverse group order), final sync, fail over, boot groups
//!   in order with their steps, commit, reprotect; stop at the first error;
//! - unplanned failover: optionally try shutdown + final sync (failures do not block), fail
//!   over from the chosen point, boot groups, commit, reprotect; continue on errors;
//! - failback with delta sync: sync while running, the "complete failover" gate, shut down,
//!   final delta, fail over, boot; with full sync: shut down, full copy, fail over, boot.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::action::{
    Action, ActionKind, ActionPlan, Count, FailurePolicy, LossSummary, Pending, Phase, PlanSummary, RunKind,
    Unprotected,
};
use super::dag::Dag;
use super::error::PlanError;
use super::fingerprint::fingerprint;
use super::schedule::simulate;
use super::script_env::ScriptEnv;
use crate::contract::SyncMode;
use crate::contract::{Capabilities, Platform};
use crate::contract::{Inventory, Power};
use crate::contract::{OpKind, ProviderOp};
use crate::diff::{ChangeSet, MachineDiff, Movement, ProtectionChange, Transition};
use crate::spec::{CommitMode, Direction, FileDiagnostic, OnFailure, Via};
use crate::state::State;
use crate::validate::{Destination, GroupId, Model, Phase as StepPhase, RecoveryPointSel, StepKind, StepSpec};

/// Nominal duration of a script step for the RTO estimate.
const SCRIPT_ESTIMATE: Duration = Duration::from_secs(10);

pub struct PlanInput<'a> {
    pub model: &'a Model,
    pub plan_path: &'a Path,
    pub changes: &'a ChangeSet,
    pub inventory: &'a Inventory,
    pub state: &'a State,
    pub platform: &'a dyn Platform,
    pub parallelism: usize,
    pub now: SystemTime,
    /// The state's secret: scripts' literal environment values are kept as digests under it.
    pub secret_key: [u8; 32],
}

/// Build the action plan, or every reason it cannot be built.
pub fn build(input: &PlanInput) -> Result<ActionPlan, Vec<FileDiagnostic>> {
    build_with(input, input.changes, Mode::Normal)
}

/// What the moving machines' "failover" step does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Mode {
    Normal,
    /// `drplan commit`: commit every uncommitted failover (and reprotect if the plan says so).
    Commit,
    /// `drplan rollback`: undo uncommitted failovers; the old copies become live again.
    Revert,
    /// `drplan rollback --point`: move uncommitted failovers to another recovery point.
    Repoint(RecoveryPointSel),
}

/// `drplan commit`: commit every failover that awaits it, then reprotect when `target.reprotect`.
pub fn build_commit(input: &PlanInput) -> Result<ActionPlan, Vec<FileDiagnostic>> {
    let model = input.model;
    let mut changes = input.changes.clone();
    changes.problems.clear();
    changes.machines.retain(|d| d.commit_pending);
    for d in &mut changes.machines {
        d.movement = Movement::Stay;
        d.start = false;
        d.commit = true;
        let here = model.site_id(&d.desired).unwrap_or_default();
        let partner = model.site(model.partner_of(here)).name.clone();
        let old_copy_running =
            input.inventory.machines.get(&d.name).and_then(|m| m.power_at(&partner)).is_some_and(Power::runs);
        let partner_up = input.inventory.sites.get(&partner).is_none_or(|s| s.reachable);
        let reprotect = model.target.reprotect && partner_up;
        d.stop_stale_copy = (reprotect && old_copy_running).then(|| partner.clone());
        d.unprotected = match (model.target.reprotect, partner_up) {
            (false, _) => Some("`target.reprotect` is false".into()),
            (true, false) => {
                Some(format!("reverse replication {} → {partner} waits for {partner} to be reachable", d.desired))
            }
            (true, true) => None,
        };
        d.protection = if reprotect {
            ProtectionChange::Reprotect { from: d.desired.clone(), to: partner }
        } else {
            ProtectionChange::None
        };
    }
    changes.transition = Transition::Converge;
    build_with(input, &changes, Mode::Commit)
}

/// `drplan rollback`: before commit, undo failovers (no `point`) or move them to another
/// recovery point. Machines stop in reverse group order and start again in group order.
pub fn build_rollback(input: &PlanInput, point: Option<RecoveryPointSel>) -> Result<ActionPlan, Vec<FileDiagnostic>> {
    let model = input.model;
    let mut changes = input.changes.clone();
    changes.problems.clear();
    changes.machines.retain(|d| d.commit_pending);
    let mut problems = Vec::new();
    for d in &mut changes.machines {
        let here = d.current.clone().unwrap_or_default();
        let home = model.site(model.partner_of(model.site_id(&here).unwrap_or_default())).name.clone();
        d.start = false;
        d.commit = false;
        d.protection = ProtectionChange::None;
        d.stop_stale_copy = None;
        match point {
            None => {
                d.movement = Movement::Back { from: here, to: home.clone() };
                d.desired = home;
            }
            Some(selector) => {
                let inv = input.inventory.machines.get(&d.name);
                match inv.and_then(|m| crate::diff::choose_point(&m.points, selector)) {
                    Some(p) => {
                        // Counted from the failover, as the provider will report it.
                        d.expected_loss = inv.and_then(|m| m.failed_over_at).map(|at| crate::diff::ExpectedLoss {
                            time: at.duration_since(p.time).unwrap_or_default(),
                            bytes: None,
                        });
                        d.point = Some(p.clone());
                    }
                    None => problems.push(FileDiagnostic::new(
                        model.source.clone(),
                        crate::diff::DiffError::NoRecoveryPoint {
                            machine: d.name.clone(),
                            selector: selector.to_string(),
                            at: model.target.active_span,
                        },
                    )),
                }
                d.movement = Movement::Forward { from: here.clone(), to: here };
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    changes.transition = Transition::Converge;
    build_with(input, &changes, point.map_or(Mode::Revert, Mode::Repoint))
}

fn build_with(input: &PlanInput, changes: &ChangeSet, mode: Mode) -> Result<ActionPlan, Vec<FileDiagnostic>> {
    let model = input.model;
    let mut problems: Vec<FileDiagnostic> =
        changes.problems.iter().map(|p| FileDiagnostic::new(model.source.clone(), p.clone())).collect();
    let capabilities = input.platform.capabilities();
    let provider = model.site(model.protection.primary).provider.as_str();
    for problem in check_support(model, &changes.transition, &capabilities, provider) {
        problems.push(FileDiagnostic::new(model.source.clone(), problem));
    }
    if mode == Mode::Normal {
        problems
            .extend(check_point_use(model, &changes.transition).map(|p| FileDiagnostic::new(model.source.clone(), p)));
    }
    if matches!(mode, Mode::Revert | Mode::Repoint(_)) && !capabilities.change_recovery_point {
        problems.push(FileDiagnostic::new(
            model.source.clone(),
            PlanError::Unsupported {
                provider,
                what: "rolling back a failover before commit".into(),
                help: "commit the failover, then fail back".into(),
                at: model.target.active_span,
            },
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let (run, direction, from, to) = match &changes.transition {
        _ if mode == Mode::Commit => (RunKind::Commit, None, None, None),
        _ if matches!(mode, Mode::Revert | Mode::Repoint(_)) => {
            let d = changes.machines.first();
            let ends = d.map(ends);
            (RunKind::Rollback, None, ends.as_ref().map(|e| e.0.clone()), ends.map(|e| e.1))
        }
        Transition::None | Transition::Converge => (RunKind::Converge, None, None, None),
        Transition::Failover { via, from, to } => {
            let run = if *via == Via::Planned { RunKind::PlannedFailover } else { RunKind::UnplannedFailover };
            (run, Some(Direction::Forward), Some(from.clone()), Some(to.clone()))
        }
        Transition::Failback { via, from, to, .. } => {
            let run = if *via == Via::Planned { RunKind::Failback } else { RunKind::UnplannedFailback };
            (run, Some(Direction::Back), Some(from.clone()), Some(to.clone()))
        }
    };
    let policy = match run {
        RunKind::UnplannedFailover | RunKind::UnplannedFailback | RunKind::Converge | RunKind::Commit => {
            FailurePolicy::Continue
        }
        _ => FailurePolicy::Stop,
    };

    let mut b = Builder::new(input, run, direction, mode, None);
    b.build(changes);
    let route = Route { run, direction, from, to, policy };
    Ok(assemble(input, b, route, changes))
}

/// What a plan does, in its header.
pub(super) struct Route {
    pub(super) run: RunKind,
    pub(super) direction: Option<Direction>,
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
    pub(super) policy: FailurePolicy,
}

/// Put the built actions into a plan with its fingerprint, limits and summary.
pub(super) fn assemble(input: &PlanInput, mut b: Builder, route: Route, changes: &ChangeSet) -> ActionPlan {
    let model = input.model;
    let notes = std::mem::take(&mut b.notes);
    let pending = pending_of(changes, &b);
    let site_limits: BTreeMap<String, usize> =
        model.sites.iter().filter_map(|s| s.max_parallel.map(|m| (s.name.clone(), m as usize))).collect();
    let mut plan = ActionPlan {
        plan: model.name.clone(),
        plan_path: input.plan_path.to_path_buf(),
        drplan_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: input.now,
        run: route.run,
        direction: route.direction,
        from: route.from,
        to: route.to,
        policy: route.policy,
        fingerprint: fingerprint(&model.document_hash, input.state, input.inventory, &b.actions),
        parallelism: input.parallelism.max(1),
        site_limits,
        actions: b.actions,
        machines: changes.machines.iter().filter(|d| d.is_change()).cloned().collect(),
        drift: changes.drift.clone(),
        pending,
        summary: PlanSummary {
            counts: Vec::new(),
            estimated_rto_ms: None,
            rto_objective_ms: model.protection.rto.as_millis() as u64,
            rpo_objective_ms: model.protection.rpo.as_millis() as u64,
            max_replication_lag_ms: changes.max_lag.map(|d| d.as_millis() as u64),
            expected_data_loss: None,
            notes: Vec::new(),
        },
    };
    plan.summary = summarize(&plan, model, changes);
    plan.summary.notes.extend(notes);
    plan
}

/// Commits left for `drplan commit`, and machines that stay unprotected after the plan.
fn pending_of(changes: &ChangeSet, b: &Builder) -> Pending {
    let moved: HashSet<&str> =
        changes.machines.iter().filter(|d| d.movement != Movement::Stay).map(|d| d.name.as_str()).collect();
    let commits = match b.mode {
        Mode::Normal => {
            let manual = b.model.target.commit == CommitMode::Manual;
            changes
                .machines
                .iter()
                .filter(|d| (d.commit_pending && !d.commit) || (manual && moved.contains(d.name.as_str())))
                .map(|d| d.name.clone())
                .collect()
        }
        _ => Vec::new(),
    };
    let mut unprotected: Vec<Unprotected> = changes
        .machines
        .iter()
        .filter(|d| !moved.contains(d.name.as_str()))
        .filter_map(|d| Some(Unprotected { machine: d.name.clone(), reason: d.unprotected.clone()? }))
        .collect();
    unprotected.extend(b.unprotected.iter().cloned());
    Pending { run: None, commits, unprotected, claimed: Vec::new() }
}

pub(super) fn check_support(
    model: &Model,
    transition: &Transition,
    caps: &Capabilities,
    provider: &'static str,
) -> Vec<PlanError> {
    let at = model.target.active_span;
    let unsupported = |what: String, help: &str| PlanError::Unsupported { provider, what, help: help.to_string(), at };
    let mut out = Vec::new();
    match transition {
        Transition::Failover { via: Via::Planned, .. } if !caps.planned_failover.forward => {
            out.push(unsupported("planned failover to the recovery site".into(), "use `via: unplanned`"));
        }
        Transition::Failover { via: Via::Unplanned, .. } if !caps.unplanned_failover.forward => {
            out.push(unsupported("unplanned failover to the recovery site".into(), "use `via: planned`"));
        }
        Transition::Failback { via: Via::Unplanned, .. } if !caps.unplanned_failover.back => {
            out.push(unsupported(
                "unplanned failback to the primary site".into(),
                "bring the recovery site back and fail back with `via: planned`",
            ));
        }
        Transition::Failback { via: Via::Unplanned, .. } => {}
        Transition::Failback { sync, alternate, .. } => {
            if !caps.planned_failover.back {
                out.push(unsupported(
                    "failback".into(),
                    "this platform cannot fail back; keep `target.active` at the recovery site",
                ));
            }
            if *sync == SyncMode::Delta && !caps.failback_delta {
                out.push(unsupported("failback with delta sync".into(), "use `sync: full`"));
            }
            if *sync == SyncMode::Full && !caps.failback_full {
                out.push(unsupported("failback with full sync".into(), "use `sync: delta`"));
            }
            if *alternate && !caps.alternate_location {
                out.push(unsupported("failback to an alternate location".into(), "use `location: original`"));
            }
        }
        _ => {}
    }
    if matches!(
        transition,
        Transition::Failover { via: Via::Unplanned, .. } | Transition::Failback { via: Via::Unplanned, .. }
    ) && model.target.recovery_point == RecoveryPointSel::LatestAppConsistent
        && !caps.app_consistent_points
    {
        out.push(unsupported("app-consistent recovery points".into(), "use `recovery_point: latest`"));
    }
    // Freeze and thaw programs nobody would run must not look like app-consistency.
    if !caps.app_consistent_points
        && let Some(m) = model.machines.iter().find(|m| m.consistency.is_some())
    {
        out.push(unsupported(
            format!("app-consistent recovery points (`{}` gives freeze and thaw programs)", m.name),
            "remove the machine's `consistency:`, or use a provider that takes app-consistent points",
        ));
    }
    out
}

/// A planned move loses nothing and uses no recovery point: an explicit point other than
/// `latest` would be silently ignored (and restoring an older point is often the whole
/// intent), so it is refused at its line.
fn check_point_use(model: &Model, transition: &Transition) -> Option<PlanError> {
    let what = match transition {
        Transition::Failover { via: Via::Planned, .. } => "planned failover",
        Transition::Failback { via: Via::Planned, .. } => "planned failback",
        _ => return None,
    };
    let at = model.target.recovery_point_span?;
    (model.target.recovery_point != RecoveryPointSel::Latest).then(|| PlanError::PointNotUsed {
        what,
        point: model.target.recovery_point.to_string(),
        at,
    })
}

/// An environment variable drplan sets itself.
fn given(env: &mut BTreeMap<String, ScriptEnv>, name: String, value: String) {
    env.insert(name, ScriptEnv::Given(value));
}

pub(super) struct Builder<'a> {
    pub(super) model: &'a Model,
    pub(super) inventory: &'a Inventory,
    pub(super) notes: Vec<String>,
    pub(super) platform: &'a dyn Platform,
    pub(super) actions: Vec<Action>,
    pub(super) run: RunKind,
    pub(super) direction: Option<Direction>,
    pub(super) mode: Mode,
    /// A drill's id, for its scripts' environment.
    pub(super) drill: Option<String>,
    /// Machines the plan moves that will not be protected afterwards, and why.
    pub(super) unprotected: Vec<Unprotected>,
    pub(super) secret_key: [u8; 32],
}

impl<'a> Builder<'a> {
    pub(super) fn new(
        input: &PlanInput<'a>,
        run: RunKind,
        direction: Option<Direction>,
        mode: Mode,
        drill: Option<String>,
    ) -> Self {
        Builder {
            model: input.model,
            inventory: input.inventory,
            notes: Vec::new(),
            platform: input.platform,
            // A failover or failback takes about six actions a machine: grown by doubling, the
            // list of 600,000 would be copied whole several times on the way.
            actions: Vec::with_capacity(input.model.machines.len() * 6 + input.model.groups.len() * 4),
            run,
            direction,
            mode,
            drill,
            unprotected: Vec::new(),
            secret_key: input.secret_key,
        }
    }

    pub(super) fn push(&mut self, mut action: Action) -> String {
        if action.estimate_ms == 0
            && let ActionKind::Provider { op } = &action.kind
        {
            action.estimate_ms = self.platform.estimate(op).as_millis() as u64;
        }
        let id = action.id.clone();
        self.actions.push(action);
        id
    }

    pub(super) fn provider(&mut self, id: String, phase: Phase, d: &MachineDiff, op: ProviderOp, deps: Deps) -> String {
        self.push(Action {
            id,
            phase,
            group: Some(d.group.clone()),
            machine: Some(d.name.clone()),
            kind: ActionKind::Provider { op },
            needs: deps.needs,
            after: deps.after,
            estimate_ms: 0,
            on_failure: deps.on_failure,
        })
    }

    pub(super) fn barrier(&mut self, id: String, phase: Phase, group: Option<String>, after: Vec<String>) -> String {
        self.push(Action {
            id,
            phase,
            group,
            machine: None,
            kind: ActionKind::Barrier,
            needs: Vec::new(),
            after,
            estimate_ms: 0,
            on_failure: OnFailure::Continue,
        })
    }

    pub(super) fn applicable<'s>(&self, steps: &'s [StepSpec]) -> Vec<&'s StepSpec> {
        let (operations, Some(direction)) = (self.run.step_operations(), self.direction) else {
            return Vec::new();
        };
        steps.iter().filter(|s| s.applies_to(operations, direction)).collect()
    }

    /// What a group's scripts are told about, for a failover or failback: the site, the
    /// addresses, the group's machines.
    pub(super) fn group_context(&self, g: GroupId, starting: &[&MachineDiff], members: &[usize]) -> StepContext {
        let site = members.first().map(|&i| starting[i].desired.clone()).or_else(|| self.actions_site());
        let ips = members
            .iter()
            .flat_map(|&i| {
                let d = starting[i];
                let destination =
                    if matches!(d.movement, Movement::Back { .. }) { Destination::Home } else { Destination::Recovery };
                self.model.addresses(d.id, destination)
            })
            .filter_map(|n| n.ip.map(|ip| ip.to_string()))
            .collect();
        let machines = self.model.group_machine_names(g);
        StepContext { scope: StepScope::Group(g), site: site.unwrap_or_default(), ips, machines }
    }

    /// A step of a group or a phase, run after `after`; returns its id.
    pub(super) fn step(
        &mut self,
        step: &StepSpec,
        phase: StepPhase,
        after: Vec<String>,
        context: &StepContext,
    ) -> String {
        let model = self.model;
        let (group, stage) = match context.scope {
            StepScope::Group(g) => (Some(model.groups[g].name.clone()), None),
            StepScope::Phase(stage) => (None, Some(stage)),
        };
        let (kind, estimate, on_failure) = match &step.kind {
            StepKind::Script(script) => {
                let mut env: BTreeMap<String, ScriptEnv> = script
                    .env
                    .iter()
                    .map(|(name, spec)| (name.clone(), ScriptEnv::from_spec(spec, &self.secret_key)))
                    .collect();
                given(&mut env, "DRPLAN_PLAN".into(), model.name.clone());
                given(&mut env, "DRPLAN_OPERATION".into(), self.run.title().to_string());
                let direction = self.direction.unwrap_or(Direction::Forward);
                given(&mut env, "DRPLAN_DIRECTION".into(), direction.as_str().into());
                match (&group, stage) {
                    (Some(group), _) => given(&mut env, "DRPLAN_GROUP".into(), group.clone()),
                    (None, Some(stage)) => {
                        let name = if stage == Phase::Shutdown { "shutdown" } else { "failover" };
                        given(&mut env, "DRPLAN_STAGE".into(), name.into());
                    }
                    (None, None) => {}
                }
                given(&mut env, "DRPLAN_PHASE".into(), phase.as_str().into());
                given(&mut env, "DRPLAN_STEP".into(), step.id.clone());
                if let Some(drill) = &self.drill {
                    given(&mut env, "DRPLAN_DRILL".into(), drill.clone());
                }
                given(&mut env, "DRPLAN_SITE".into(), context.site.clone());
                given(&mut env, "DRPLAN_MACHINES".into(), context.machines.join(" "));
                given(&mut env, "DRPLAN_IPS".into(), context.ips.join(" "));
                let estimate = SCRIPT_ESTIMATE.min(script.timeout);
                let kind = ActionKind::Script {
                    run: script.argv.clone(),
                    program: script.program.clone(),
                    dir: script.dir.clone(),
                    env,
                    timeout: script.timeout,
                    retries: script.retries,
                };
                (kind, estimate, script.on_failure.unwrap_or_else(|| self.run.script_failure_policy()))
            }
            StepKind::Manual(manual) => (
                ActionKind::Manual { prompt: manual.prompt.clone(), approvers: manual.approvers.clone() },
                Duration::ZERO,
                OnFailure::Stop,
            ),
        };
        let action_phase = match stage {
            _ if self.run == RunKind::Drill => Phase::Drill,
            Some(stage) => stage,
            None => Phase::Boot,
        };
        self.push(Action {
            id: step.id.clone(),
            phase: action_phase,
            group,
            machine: None,
            kind,
            needs: Vec::new(),
            after,
            estimate_ms: estimate.as_millis() as u64,
            on_failure,
        })
    }

    /// Run the applicable `steps` one after another, the first after `after`; the last one's
    /// id, if any applied.
    pub(super) fn chain(
        &mut self,
        steps: &[StepSpec],
        phase: StepPhase,
        after: Vec<String>,
        context: &StepContext,
    ) -> Option<String> {
        let mut previous = after;
        let mut last = None;
        for step in self.applicable(steps) {
            let id = self.step(step, phase, previous, context);
            previous = vec![id.clone()];
            last = Some(id);
        }
        last
    }

    /// The destination site of the run, for steps of groups without machines.
    fn actions_site(&self) -> Option<String> {
        self.actions.iter().find_map(|a| match &a.kind {
            ActionKind::Provider { op: ProviderOp::Failover { to, .. } } => Some(to.clone()),
            _ => None,
        })
    }
}

/// Whose steps these are: a boot group's, or those around a phase (`phases.shutdown`).
#[derive(Debug, Clone, Copy)]
pub(super) enum StepScope {
    Group(GroupId),
    /// `Phase::Shutdown` or `Phase::Failover`.
    Phase(Phase),
}

/// What a step's scripts are told: where, which addresses, which machines.
pub(super) struct StepContext {
    pub(super) scope: StepScope,
    pub(super) site: String,
    pub(super) ips: Vec<String>,
    pub(super) machines: Vec<String>,
}

/// What an action waits for.
pub(super) struct Deps {
    pub(super) needs: Vec<String>,
    pub(super) after: Vec<String>,
    pub(super) on_failure: OnFailure,
}

impl Deps {
    pub(super) fn none() -> Self {
        Deps { needs: Vec::new(), after: Vec::new(), on_failure: OnFailure::Stop }
    }
}

pub(super) fn ends(d: &MachineDiff) -> (String, String) {
    match &d.movement {
        Movement::Forward { from, to } | Movement::Back { from, to } => (from.clone(), to.clone()),
        Movement::Stay => (d.desired.clone(), d.desired.clone()),
    }
}

pub(super) fn summarize(plan: &ActionPlan, model: &Model, changes: &ChangeSet) -> PlanSummary {
    let mut summary = plan.summary.clone();
    let mut counts: BTreeMap<u8, Count> = BTreeMap::new();
    let mut count = |order: u8, what: &str| {
        counts.entry(order).or_insert_with(|| Count { what: what.to_string(), count: 0 }).count += 1;
    };
    for action in &plan.actions {
        match &action.kind {
            ActionKind::Provider { op } => match op.kind() {
                OpKind::EnableProtection => count(0, "protect"),
                OpKind::Shutdown => count(1, "shut-down"),
                OpKind::Sync => count(2, "sync"),
                OpKind::Failover => count(3, "fail-over"),
                OpKind::Start => count(4, "start"),
                OpKind::Commit => count(7, "commit"),
                OpKind::ChangePoint => count(12, "change-point"),
                OpKind::Revert => count(13, "revert"),
                OpKind::Reprotect => count(8, "reprotect"),
                OpKind::TakePoint => count(9, "take-point"),
                OpKind::CreateTestCopy => count(10, "create-test-copy"),
                OpKind::RemoveTestCopy => count(11, "remove-test-copy"),
            },
            ActionKind::Script { .. } => count(5, "script"),
            ActionKind::Manual { .. } => count(6, "approval"),
            ActionKind::Barrier => {}
        }
    }
    summary.counts = counts.into_values().collect();

    if let Ok(dag) = Dag::new(plan) {
        let schedule = simulate(plan, &dag);
        let downtime =
            plan.actions.iter().any(|a| matches!(a.phase, Phase::Shutdown | Phase::FinalSync | Phase::Failover));
        if let Some(booted) = plan.index_of("booted").filter(|_| downtime) {
            // Downtime starts when the first machine stops (or fails over) and ends when the
            // last group is up; approvals are not counted.
            let down = plan
                .actions
                .iter()
                .enumerate()
                .filter(|(_, a)| matches!(a.phase, Phase::Shutdown | Phase::FinalSync | Phase::Failover | Phase::Drill))
                .map(|(i, _)| schedule.start[i])
                .min()
                .unwrap_or_default();
            summary.estimated_rto_ms = Some(schedule.finish[booted].saturating_sub(down).as_millis() as u64);
        }
    }

    let losses: Vec<_> =
        changes.machines.iter().filter(|d| d.movement != Movement::Stay).filter_map(|d| d.expected_loss).collect();
    if !losses.is_empty() {
        let max_time = losses.iter().map(|l| l.time).max().unwrap_or_default();
        let total_bytes = losses.iter().map(|l| l.bytes).sum::<Option<u64>>();
        summary.expected_data_loss = Some(LossSummary { max_time_ms: max_time.as_millis() as u64, total_bytes });
    }
    if plan.actions.iter().any(|a| matches!(a.kind, ActionKind::Manual { .. })) {
        summary.notes.push("the RTO estimate does not include time spent waiting for approvals".into());
    }
    if plan.run != RunKind::Converge && model.target.commit == CommitMode::Manual {
        summary.notes.push("commit is manual: the machines stay commit-pending until `drplan commit`".into());
    }
    if plan.run.is_unplanned() && model.target.try_shutdown {
        summary.notes.push("the source is shut down and synced first if it answers; then nothing is lost".into());
    }
    summary
}
