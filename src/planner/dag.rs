//! The action plan as an index graph: predecessors and successors of every action.
//! Built once from the ids; used by the RTO estimate and by the executor.

use std::collections::HashMap;

use super::action::ActionPlan;

/// Edges in two flat arrays (compressed rows): a plan of 600,000 actions would otherwise
/// hold 1.2 million small vectors.
#[derive(Debug, Clone)]
pub struct Dag {
    /// Action i's predecessors are `preds[pred_start[i]..pred_start[i + 1]]`.
    pred_start: Vec<u32>,
    /// (predecessor, must it have succeeded?)
    preds: Vec<(u32, bool)>,
    succ_start: Vec<u32>,
    succs: Vec<u32>,
}

impl Dag {
    /// Fails with the first unknown id or an edge that points forward (the list must be
    /// topologically ordered, which also rules out cycles).
    pub fn new(plan: &ActionPlan) -> Result<Dag, String> {
        let n = plan.actions.len();
        let mut index: HashMap<&str, u32> = HashMap::with_capacity(n);
        for (i, a) in plan.actions.iter().enumerate() {
            if index.insert(a.id.as_str(), i as u32).is_some() {
                return Err(format!("two actions share the id `{}`", a.id));
            }
        }
        let mut pred_start = Vec::with_capacity(n + 1);
        let mut preds = Vec::new();
        let mut succ_count = vec![0u32; n];
        for (i, action) in plan.actions.iter().enumerate() {
            pred_start.push(preds.len() as u32);
            for (ids, hard) in [(&action.needs, true), (&action.after, false)] {
                for id in ids {
                    let &p = index
                        .get(id.as_str())
                        .ok_or_else(|| format!("`{}` waits for unknown action `{id}`", action.id))?;
                    if p as usize >= i {
                        return Err(format!("`{}` waits for `{id}`, which comes later", action.id));
                    }
                    preds.push((p, hard));
                    succ_count[p as usize] += 1;
                }
            }
        }
        pred_start.push(preds.len() as u32);
        // Successors in the order the edges were met: by successor, then as listed.
        let mut succ_start = Vec::with_capacity(n + 1);
        let mut total = 0u32;
        for count in &succ_count {
            succ_start.push(total);
            total += count;
        }
        succ_start.push(total);
        let mut fill: Vec<u32> = succ_start[..n].to_vec();
        let mut succs = vec![0u32; total as usize];
        for i in 0..n {
            for &(p, _) in &preds[pred_start[i] as usize..pred_start[i + 1] as usize] {
                succs[fill[p as usize] as usize] = i as u32;
                fill[p as usize] += 1;
            }
        }
        Ok(Dag { pred_start, preds, succ_start, succs })
    }

    pub fn len(&self) -> usize {
        self.pred_start.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What action i waits for: (predecessor, must it have succeeded?).
    pub fn preds(&self, i: usize) -> &[(u32, bool)] {
        &self.preds[self.pred_start[i] as usize..self.pred_start[i + 1] as usize]
    }

    /// What waits for action i.
    pub fn succs(&self, i: usize) -> &[u32] {
        &self.succs[self.succ_start[i] as usize..self.succ_start[i + 1] as usize]
    }

    /// How many actions each action waits for.
    pub fn pred_counts(&self) -> Vec<usize> {
        self.pred_start.windows(2).map(|w| (w[1] - w[0]) as usize).collect()
    }
}
