//! A zero-overhead simulation of the executor: greedy list scheduling of the action DAG
//! with the parallelism and per-site limits. Gives the RTO estimate, and the lower bound
//! that the apply benchmark compares real runs against.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use super::action::{ActionKind, ActionPlan};
use super::dag::Dag;

#[derive(Debug, Clone, Default)]
pub struct Schedule {
    pub start: Vec<Duration>,
    pub finish: Vec<Duration>,
    pub makespan: Duration,
}

/// Simulate the plan with every action taking its estimate.
pub fn simulate(plan: &ActionPlan, dag: &Dag) -> Schedule {
    simulate_with(plan, dag, |i| Duration::from_millis(plan.actions[i].estimate_ms))
}

/// Simulate with given durations (the benchmark passes the provider's exact latencies), with
/// the dispatch policy the executor would choose for them.
pub fn simulate_with(plan: &ActionPlan, dag: &Dag, duration: impl Fn(usize) -> Duration + Sync) -> Schedule {
    Dispatch::choose(plan, dag, duration).1
}

/// How the executor picks among ready steps. Steps go longest remaining chain first; and
/// `reserve` slots are kept for urgent steps (those with little slack on the critical path),
/// so that a wave of long, unhurried work (final syncs of groups that boot much later) cannot
/// take every slot just before the next critical batch (the next group's shutdowns) is
/// released. Without a reserve the critical path waits for slots at every such batch.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// Shared: the candidate reserves are simulated on copies of one policy.
    priority: std::sync::Arc<[u64]>,
    urgent: std::sync::Arc<[bool]>,
    pub reserve: usize,
}

impl Dispatch {
    /// The policy for these durations: the reserve (none, a quarter, half or three quarters
    /// of the slots) whose simulated schedule finishes first; no reserve wins ties. Returns
    /// that schedule too.
    pub fn choose(plan: &ActionPlan, dag: &Dag, duration: impl Fn(usize) -> Duration + Sync) -> (Dispatch, Schedule) {
        let chains = Chains::new(dag, &duration);
        let critical = chains.reach.iter().copied().max().unwrap_or_default();
        // Slack: how much longer than the critical path is the longest chain through the step.
        let urgent: Vec<bool> = (0..dag.len())
            .map(|i| critical.saturating_sub(chains.reach[i] + chains.remain[i] - duration(i)) <= critical / 20)
            .collect();
        // The longest remaining chain, in microseconds, orders the ready queue.
        let priority: Vec<u64> = chains.remain.iter().map(|d| d.as_micros() as u64).collect();
        let mut dispatch = Dispatch { priority: priority.into(), urgent: urgent.into(), reserve: 0 };
        let slots = plan.parallelism.max(1);
        let mut reserves = vec![0];
        for reserve in [slots / 4, slots / 2, slots * 3 / 4] {
            if reserve != 0 && reserve < slots && !reserves.contains(&reserve) {
                reserves.push(reserve);
            }
        }
        // The candidates are independent simulations: one thread each.
        let schedules: Vec<Schedule> = std::thread::scope(|scope| {
            let runs: Vec<_> = reserves
                .iter()
                .map(|&reserve| {
                    let candidate = Dispatch { reserve, ..dispatch.clone() };
                    let duration = &duration;
                    scope.spawn(move || run_model(plan, dag, duration, &candidate))
                })
                .collect();
            runs.into_iter().map(|run| run.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        });
        let mut best = 0;
        for (i, schedule) in schedules.iter().enumerate() {
            if schedule.makespan < schedules[best].makespan {
                best = i;
            }
        }
        dispatch.reserve = reserves[best];
        (dispatch, schedules.into_iter().nth(best).unwrap_or_default())
    }
}

/// The executor's policy with zero overhead: a discrete-event run of the DAG with the
/// parallelism and per-site limits.
fn run_model(plan: &ActionPlan, dag: &Dag, duration: &impl Fn(usize) -> Duration, dispatch: &Dispatch) -> Schedule {
    let n = dag.len();
    let mut waiting: Vec<usize> = dag.pred_counts();
    let mut start = vec![Duration::ZERO; n];
    let mut finish = vec![Duration::ZERO; n];
    // (finish time, index)
    let mut running: BinaryHeap<Reverse<(Duration, usize)>> = BinaryHeap::new();
    let mut queue = ReadyQueue::new(plan, dispatch);
    let mut free = plan.parallelism.max(1);
    let mut site_free: BTreeMap<&str, usize> =
        plan.site_limits.iter().map(|(k, v)| (k.as_str(), (*v).max(1))).collect();
    let mut now = Duration::ZERO;
    let mut newly_ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    loop {
        for i in newly_ready.drain(..) {
            if plan.actions[i].kind.takes_slot() {
                queue.push(i);
            } else {
                start[i] = now;
                running.push(Reverse((now + duration(i), i)));
            }
        }
        // Settle everything that ends now (barriers included) before handing out slots, as
        // the executor settles barriers at once.
        let settling = running.peek().is_some_and(|Reverse((t, _))| *t == now);
        while free > 0 && !settling {
            let can_start = |site: Option<&str>| site.is_none_or(|s| site_free.get(s).is_some_and(|&f| f > 0));
            let Some(i) = queue.pop(can_start, free) else {
                break;
            };
            free -= 1;
            if let Some(f) = queue.site(i).and_then(|s| site_free.get_mut(s)) {
                *f -= 1;
            }
            start[i] = now;
            running.push(Reverse((now + duration(i), i)));
        }
        let Some(Reverse((t, i))) = running.pop() else { break };
        now = t;
        finish[i] = t;
        if plan.actions[i].kind.takes_slot() {
            free += 1;
            if let Some(f) = queue.site(i).and_then(|s| site_free.get_mut(s)) {
                *f += 1;
            }
        }
        for &s in dag.succs(i) {
            let s = s as usize;
            waiting[s] -= 1;
            if waiting[s] == 0 {
                newly_ready.push(s);
            }
        }
    }
    let makespan = finish.iter().copied().max().unwrap_or_default();
    Schedule { start, finish, makespan }
}

/// The longest dependency chains through each action, ignoring slots: `reach[i]` from the
/// start of the plan to the end of action i, `remain[i]` from the start of i to the end of the
/// plan (its "bottom level": starting long chains first keeps the critical path moving while
/// slots are shared). The DAG's actions are in topological order.
struct Chains {
    reach: Vec<Duration>,
    remain: Vec<Duration>,
}

impl Chains {
    fn new(dag: &Dag, duration: impl Fn(usize) -> Duration) -> Chains {
        let n = dag.len();
        let mut reach = vec![Duration::ZERO; n];
        for i in 0..n {
            let before = dag.preds(i).iter().map(|&(p, _)| reach[p as usize]).max().unwrap_or_default();
            reach[i] = before + duration(i);
        }
        let mut remain = vec![Duration::ZERO; n];
        for i in (0..n).rev() {
            let after = dag.succs(i).iter().map(|&s| remain[s as usize]).max().unwrap_or_default();
            remain[i] = after + duration(i);
        }
        Chains { reach, remain }
    }
}

/// Ready actions waiting for a slot, best first: the highest priority, then plan order.
/// Actions at a site with its own limit queue separately, so a saturated site never holds
/// up the others; urgent and unhurried actions queue separately, so the reserve can be kept.
pub struct ReadyQueue<'p> {
    plan: &'p ActionPlan,
    dispatch: &'p Dispatch,
    /// Urgent steps that have not started (nor been settled otherwise): the reserve is kept
    /// only while there are some, so the last unhurried work may use every slot.
    urgent_pending: Vec<bool>,
    urgent_left: usize,
    /// Per limited site (in `plan.site_limits` order), then the unlimited rest.
    sites: Vec<&'p str>,
    /// Two heaps per entry of `sites` plus one for the rest: urgent, then unhurried.
    heaps: Vec<BinaryHeap<(u64, Reverse<usize>)>>,
}

impl<'p> ReadyQueue<'p> {
    pub fn new(plan: &'p ActionPlan, dispatch: &'p Dispatch) -> Self {
        let sites: Vec<&str> = plan.site_limits.keys().map(String::as_str).collect();
        let heaps = (0..2 * (sites.len() + 1)).map(|_| BinaryHeap::new()).collect();
        let urgent_pending: Vec<bool> =
            plan.actions.iter().enumerate().map(|(i, a)| dispatch.urgent[i] && a.kind.takes_slot()).collect();
        let urgent_left = urgent_pending.iter().filter(|&&u| u).count();
        ReadyQueue { plan, dispatch, urgent_pending, urgent_left, sites, heaps }
    }

    /// An action settled without taking a slot (done in an earlier run, skipped, not run).
    pub fn settled(&mut self, i: usize) {
        if std::mem::take(&mut self.urgent_pending[i]) {
            self.urgent_left -= 1;
        }
    }

    /// The limited site an action counts against, if any.
    pub fn site(&self, i: usize) -> Option<&'p str> {
        match &self.plan.actions[i].kind {
            ActionKind::Provider { op } => self.sites.iter().copied().find(|s| *s == op.site()),
            _ => None,
        }
    }

    fn heap_of(&self, i: usize) -> usize {
        let site = self.site(i).and_then(|s| self.sites.iter().position(|x| *x == s)).unwrap_or(self.sites.len());
        2 * site + usize::from(!self.dispatch.urgent[i])
    }

    pub fn push(&mut self, i: usize) {
        let heap = self.heap_of(i);
        self.heaps[heap].push((self.dispatch.priority[i], Reverse(i)));
    }

    pub fn is_empty(&self) -> bool {
        self.heaps.iter().all(BinaryHeap::is_empty)
    }

    /// Remove and return the best action whose site may start one now, given `free` global
    /// slots (counting the one it would take); while urgent steps are still to come,
    /// unhurried ones only get a slot beyond the reserve.
    pub fn pop(&mut self, mut can_start: impl FnMut(Option<&str>) -> bool, free: usize) -> Option<usize> {
        let hold_back = self.urgent_left > 0 && free <= self.dispatch.reserve;
        let mut best: Option<(usize, (u64, Reverse<usize>))> = None;
        for (h, heap) in self.heaps.iter().enumerate() {
            let Some(&top) = heap.peek() else { continue };
            let unhurried = h % 2 == 1;
            if (unhurried && hold_back) || best.is_some_and(|(_, b)| b >= top) {
                continue;
            }
            if !can_start(self.sites.get(h / 2).copied()) {
                continue;
            }
            best = Some((h, top));
        }
        let (h, _) = best?;
        let (_, Reverse(i)) = self.heaps[h].pop()?;
        self.settled(i);
        Some(i)
    }
}

/// A lower bound on any schedule of the plan with these durations and the parallelism limit:
/// the longest dependency chain; the total slot work over the slots; and, around every barrier
/// (a group begins or is done, all booted), the chain up to it plus the work that must follow
/// it over the slots, or the work that must precede it over the slots plus the chain after it.
pub fn lower_bound(plan: &ActionPlan, dag: &Dag, duration: impl Fn(usize) -> Duration) -> Duration {
    let n = dag.len();
    let slots = plan.parallelism.max(1) as u32;
    let work_of = |i: usize| if plan.actions[i].kind.takes_slot() { duration(i) } else { Duration::ZERO };
    let Chains { reach: head, remain: tail } = Chains::new(dag, &duration);
    let total: Duration = (0..n).map(work_of).sum();
    let mut bound = head.iter().copied().max().unwrap_or_default().max(total / slots);

    // Everything reachable from (or reaching) a barrier, found by a walk with a visit stamp.
    let mut seen = vec![u32::MAX; n];
    let mut stack = Vec::new();
    let mut walk = |start: usize, forward: bool, stamp: u32| -> Duration {
        let mut work = Duration::ZERO;
        stack.clear();
        stack.push(start);
        seen[start] = stamp;
        while let Some(i) = stack.pop() {
            let next: Box<dyn Iterator<Item = usize>> = if forward {
                Box::new(dag.succs(i).iter().map(|&s| s as usize))
            } else {
                Box::new(dag.preds(i).iter().map(|&(p, _)| p as usize))
            };
            for j in next {
                if seen[j] != stamp {
                    seen[j] = stamp;
                    work += work_of(j);
                    stack.push(j);
                }
            }
        }
        work
    };
    let mut stamp = 0;
    for b in (0..n).filter(|&i| matches!(plan.actions[i].kind, ActionKind::Barrier)) {
        let after = walk(b, true, stamp);
        let before = walk(b, false, stamp + 1);
        stamp += 2;
        bound = bound.max(head[b] + after / slots).max(before / slots + tail[b]);
    }
    bound
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ProviderOp;
    use crate::planner::action::{Action, Fingerprint, PlanSummary, RunKind};
    use crate::planner::{FailurePolicy, Phase};
    use crate::spec::OnFailure;

    fn start(machine: &str, site: &str, after: &[&str]) -> Action {
        Action {
            id: machine.to_string(),
            phase: Phase::Boot,
            group: None,
            machine: Some(machine.to_string()),
            kind: ActionKind::Provider {
                op: ProviderOp::Start {
                    machine: machine.into(),
                    site: site.into(),
                    nics: vec![],
                    timeout: Duration::ZERO,
                },
            },
            needs: vec![],
            after: after.iter().map(|s| s.to_string()).collect(),
            estimate_ms: 1000,
            on_failure: OnFailure::Stop,
        }
    }

    fn plan(actions: Vec<Action>, parallelism: usize, limits: &[(&str, usize)]) -> ActionPlan {
        ActionPlan {
            plan: "t".into(),
            plan_path: "t.yaml".into(),
            drplan_version: "0".into(),
            created_at: std::time::SystemTime::UNIX_EPOCH,
            run: RunKind::Converge,
            direction: None,
            from: None,
            to: None,
            policy: FailurePolicy::Stop,
            fingerprint: Fingerprint {
                document_hash: String::new(),
                state_lineage: String::new(),
                state_serial: 0,
                machines: BTreeMap::new(),
            },
            parallelism,
            site_limits: limits.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            actions,
            machines: vec![],
            drift: vec![],
            pending: Default::default(),
            summary: PlanSummary {
                counts: vec![],
                estimated_rto_ms: None,
                rto_objective_ms: 0,
                rpo_objective_ms: 0,
                max_replication_lag_ms: None,
                expected_data_loss: None,
                notes: vec![],
            },
        }
    }

    #[test]
    fn the_dag_lists_each_actions_predecessors_and_successors_in_order() {
        let mut c = start("c", "a", &["a"]);
        c.needs = vec!["b".into()];
        let p = plan(vec![start("a", "a", &[]), start("b", "a", &[]), c, start("d", "a", &["a", "c"])], 1, &[]);
        let dag = Dag::new(&p).unwrap();
        assert_eq!(dag.len(), 4);
        assert_eq!(dag.preds(2), &[(1, true), (0, false)], "needs first, then after");
        assert_eq!(dag.preds(3), &[(0, false), (2, false)]);
        assert_eq!(dag.succs(0), &[2, 3]);
        assert_eq!(dag.succs(1), &[2]);
        assert_eq!(dag.succs(2), &[3]);
        assert!(dag.succs(3).is_empty() && dag.preds(0).is_empty());
        assert_eq!(dag.pred_counts(), vec![0, 0, 2, 2]);
        let forward = plan(vec![start("a", "a", &["b"]), start("b", "a", &[])], 1, &[]);
        assert!(Dag::new(&forward).unwrap_err().contains("comes later"));
        let unknown = plan(vec![start("a", "a", &["zz"])], 1, &[]);
        assert!(Dag::new(&unknown).unwrap_err().contains("unknown action `zz`"));
        let twice = plan(vec![start("a", "a", &[]), start("a", "b", &[])], 1, &[]);
        assert!(Dag::new(&twice).unwrap_err().contains("share the id `a`"));
        assert!(Dag::new(&plan(vec![], 1, &[])).unwrap().is_empty());
    }

    #[test]
    fn parallelism_and_site_limits_shape_the_schedule() {
        let actions: Vec<Action> =
            (0..6).map(|i| start(&format!("m{i}"), if i < 4 { "a" } else { "b" }, &[])).collect();
        let p = plan(actions.clone(), 3, &[]);
        let dag = Dag::new(&p).unwrap();
        assert_eq!(simulate(&p, &dag).makespan, Duration::from_secs(2));
        // Site a allows one at a time: its four starts take 4 s.
        let p = plan(actions, 3, &[("a", 1)]);
        let dag = Dag::new(&p).unwrap();
        assert_eq!(simulate(&p, &dag).makespan, Duration::from_secs(4));
        assert_eq!(lower_bound(&p, &dag, |_| Duration::from_secs(1)), Duration::from_secs(2));
    }

    #[test]
    fn work_after_a_barrier_tightens_the_bound() {
        let mut barrier = start("b", "s", &["a"]);
        barrier.kind = ActionKind::Barrier;
        barrier.estimate_ms = 0;
        let mut actions = vec![start("a", "s", &[]), barrier];
        actions.extend((0..4).map(|i| start(&format!("c{i}"), "s", &["b"])));
        let p = plan(actions, 2, &[]);
        let dag = Dag::new(&p).unwrap();
        // Chain 2 s, total work 5 s / 2 = 2.5 s; but after `a` (1 s) come 4 s of work on 2 slots.
        assert_eq!(lower_bound(&p, &dag, |i| Duration::from_millis(p.actions[i].estimate_ms)), Duration::from_secs(3));
        assert_eq!(simulate(&p, &dag).makespan, Duration::from_secs(3));
    }

    #[test]
    fn a_reserve_keeps_unhurried_work_from_delaying_the_next_critical_batch() {
        let step = |id: &str, ms: u64, after: &[&str]| Action { estimate_ms: ms, ..start(id, "s", after) };
        let barrier = |id: &str, after: &[&str]| Action { kind: ActionKind::Barrier, ..step(id, 0, after) };
        let actions = vec![
            step("s1a", 1000, &[]),
            step("s1b", 900, &[]),
            barrier("b1", &["s1a", "s1b"]),
            step("s2a", 1000, &["b1"]),
            step("s2b", 1000, &["b1"]),
            barrier("b2", &["s2a", "s2b"]),
            step("s3", 1000, &["b2"]),
            // Plenty of slack: it fits beside s3 at the end.
            step("u", 600, &[]),
        ];
        let p = plan(actions, 2, &[]);
        let dag = Dag::new(&p).unwrap();
        let ms = |i: usize| Duration::from_millis(p.actions[i].estimate_ms);
        // Greedy without a reserve starts `u` in the slot s1b frees at 0.9 s, so s2b waits
        // until 1.5 s and everything after it slips: 3.5 s. Keeping one slot for urgent work
        // meets the bound, 3 s.
        let (dispatch, schedule) = Dispatch::choose(&p, &dag, ms);
        assert_eq!(dispatch.reserve, 1);
        assert_eq!(schedule.makespan, Duration::from_secs(3));
        assert_eq!(lower_bound(&p, &dag, ms), Duration::from_secs(3));
        let greedy = run_model(&p, &dag, &ms, &Dispatch { reserve: 0, ..dispatch });
        assert_eq!(greedy.makespan, Duration::from_millis(3500));
    }

    #[test]
    fn dependencies_form_the_critical_path() {
        let actions =
            vec![start("a", "s", &[]), start("b", "s", &["a"]), start("c", "s", &["b"]), start("d", "s", &[])];
        let p = plan(actions, 10, &[]);
        let dag = Dag::new(&p).unwrap();
        let schedule = simulate(&p, &dag);
        assert_eq!(schedule.makespan, Duration::from_secs(3));
        assert_eq!(schedule.start[2], Duration::from_secs(2));
    }
}
