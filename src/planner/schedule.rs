//! A zero-overhead simulation of the executor: greedy list scheduling of the action DAG
//! with the parallelism and per-site limits. Gives the RTO estimate, and the lower bound
//! that the apply benchmark compares real runs against.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use super::action::{ActionKind, ActionPlan};
use super::dag::Dag;

#[derive(Debug, Clone)]
pub struct Schedule {
    pub start: Vec<Duration>,
    pub finish: Vec<Duration>,
    pub makespan: Duration,
}

/// Simulate the plan with every action taking its estimate.
pub fn simulate(plan: &ActionPlan, dag: &Dag) -> Schedule {
    simulate_with(plan, dag, |i| Duration::from_millis(plan.actions[i].estimate_ms))
}

/// Simulate with given durations (the benchmark passes the provider's exact latencies).
pub fn simulate_with(plan: &ActionPlan, dag: &Dag, duration: impl Fn(usize) -> Duration) -> Schedule {
    let n = dag.len();
    let mut waiting: Vec<usize> = dag.preds.iter().map(Vec::len).collect();
    let mut start = vec![Duration::ZERO; n];
    let mut finish = vec![Duration::ZERO; n];
    // (finish time, index)
    let mut running: BinaryHeap<Reverse<(Duration, usize)>> = BinaryHeap::new();
    let mut queues = SlotQueues::new(plan);
    let mut now = Duration::ZERO;
    let mut newly_ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    loop {
        for i in newly_ready.drain(..) {
            if plan.actions[i].kind.takes_slot() {
                queues.push(i);
            } else {
                start[i] = now;
                running.push(Reverse((now + duration(i), i)));
            }
        }
        // Fill free slots in plan order.
        while let Some(i) = queues.pop() {
            start[i] = now;
            running.push(Reverse((now + duration(i), i)));
        }
        let Some(Reverse((t, i))) = running.pop() else { break };
        now = t;
        finish[i] = t;
        if plan.actions[i].kind.takes_slot() {
            queues.release(i);
        }
        for &s in &dag.succs[i] {
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

/// Ready actions waiting for a slot: one queue per limited site plus one for the rest, each
/// ordered by plan position.
struct SlotQueues<'p> {
    plan: &'p ActionPlan,
    free: usize,
    /// Site -> (free slots, queue).
    sites: BTreeMap<&'p str, (usize, BinaryHeap<Reverse<usize>>)>,
    other: BinaryHeap<Reverse<usize>>,
}

impl<'p> SlotQueues<'p> {
    fn new(plan: &'p ActionPlan) -> Self {
        SlotQueues {
            plan,
            free: plan.parallelism.max(1),
            sites: plan.site_limits.iter().map(|(k, v)| (k.as_str(), ((*v).max(1), BinaryHeap::new()))).collect(),
            other: BinaryHeap::new(),
        }
    }

    fn site(&self, i: usize) -> Option<&'p str> {
        match &self.plan.actions[i].kind {
            ActionKind::Provider { op } => self.sites.get_key_value(op.site()).map(|(k, _)| *k),
            _ => None,
        }
    }

    fn push(&mut self, i: usize) {
        match self.site(i) {
            Some(site) => self.sites.get_mut(site).expect("known site").1.push(Reverse(i)),
            None => self.other.push(Reverse(i)),
        }
    }

    /// The first queued action that can start now, taking its slots.
    fn pop(&mut self) -> Option<usize> {
        if self.free == 0 {
            return None;
        }
        let mut best: Option<(usize, Option<&'p str>)> = self.other.peek().map(|Reverse(i)| (*i, None));
        for (site, (free, queue)) in &self.sites {
            if let Some(Reverse(i)) = queue.peek()
                && *free > 0
                && best.is_none_or(|(b, _)| *i < b)
            {
                best = Some((*i, Some(*site)));
            }
        }
        let (i, site) = best?;
        self.free -= 1;
        match site {
            Some(site) => {
                let (free, queue) = self.sites.get_mut(site).expect("known site");
                *free -= 1;
                queue.pop();
            }
            None => {
                self.other.pop();
            }
        }
        Some(i)
    }

    fn release(&mut self, i: usize) {
        self.free += 1;
        if let Some(site) = self.site(i) {
            self.sites.get_mut(site).expect("known site").0 += 1;
        }
    }
}

/// The classic lower bound: no schedule beats the longest dependency chain, nor the total
/// slot-using work divided by the parallelism.
pub fn lower_bound(plan: &ActionPlan, dag: &Dag, duration: impl Fn(usize) -> Duration) -> Duration {
    let mut longest = vec![Duration::ZERO; dag.len()];
    let mut work = Duration::ZERO;
    for i in 0..dag.len() {
        let before = dag.preds[i].iter().map(|&(p, _)| longest[p as usize]).max().unwrap_or_default();
        longest[i] = before + duration(i);
        if plan.actions[i].kind.takes_slot() {
            work += duration(i);
        }
    }
    let chain = longest.into_iter().max().unwrap_or_default();
    chain.max(work / plan.parallelism.max(1) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::action::{Action, Fingerprint, PlanSummary, RunKind};
    use crate::planner::{FailurePolicy, Phase, ProviderOp};
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
