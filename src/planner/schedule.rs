//! A zero-overhead simulation of the executor: greedy list scheduling of the action DAG
//! with the parallelism and per-site limits. Gives the RTO estimate, and the lower bound
//! that the apply benchmark compares real runs against.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
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
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    // (finish time, index)
    let mut running: BinaryHeap<Reverse<(Duration, usize)>> = BinaryHeap::new();
    let mut slots = plan.parallelism.max(1);
    let mut site_slots: BTreeMap<&str, usize> = plan.site_limits.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let site_of = |i: usize| match &plan.actions[i].kind {
        ActionKind::Provider { op } => Some(op.site()),
        _ => None,
    };
    let mut now = Duration::ZERO;
    let mut blocked: VecDeque<usize> = VecDeque::new();
    loop {
        // Start everything that can start now, in plan order.
        let mut deferred = VecDeque::new();
        while let Some(i) = blocked.pop_front().or_else(|| ready.pop_front()) {
            let needs_slot = plan.actions[i].kind.takes_slot();
            let site = site_of(i);
            let site_ok = site.is_none_or(|s| site_slots.get(s).is_none_or(|&free| free > 0));
            if needs_slot && (slots == 0 || !site_ok) {
                deferred.push_back(i);
                continue;
            }
            if needs_slot {
                slots -= 1;
                if let Some(free) = site.and_then(|s| site_slots.get_mut(s)) {
                    *free -= 1;
                }
            }
            start[i] = now;
            running.push(Reverse((now + duration(i), i)));
        }
        blocked = deferred;
        let Some(Reverse((t, i))) = running.pop() else { break };
        now = t;
        finish[i] = t;
        if plan.actions[i].kind.takes_slot() {
            slots += 1;
            if let Some(free) = site_of(i).and_then(|s| site_slots.get_mut(s)) {
                *free += 1;
            }
        }
        for &s in &dag.succs[i] {
            let s = s as usize;
            waiting[s] -= 1;
            if waiting[s] == 0 {
                ready.push_back(s);
            }
        }
    }
    let makespan = finish.iter().copied().max().unwrap_or_default();
    Schedule { start, finish, makespan }
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
