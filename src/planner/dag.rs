//! The action plan as an index graph: predecessors and successors of every action.
//! Built once from the ids; used by the RTO estimate and by the executor.

use std::collections::HashMap;

use super::action::ActionPlan;

#[derive(Debug, Clone)]
pub struct Dag {
    /// (predecessor, must it have succeeded?)
    pub preds: Vec<Vec<(u32, bool)>>,
    pub succs: Vec<Vec<u32>>,
}

impl Dag {
    /// Fails with the first unknown id or an edge that points forward (the list must be
    /// topologically ordered, which also rules out cycles).
    pub fn new(plan: &ActionPlan) -> Result<Dag, String> {
        let index: HashMap<&str, u32> =
            plan.actions.iter().enumerate().map(|(i, a)| (a.id.as_str(), i as u32)).collect();
        if index.len() != plan.actions.len() {
            return Err("two actions share an id".into());
        }
        let mut preds = Vec::with_capacity(plan.actions.len());
        let mut succs = vec![Vec::new(); plan.actions.len()];
        for (i, action) in plan.actions.iter().enumerate() {
            let mut list = Vec::with_capacity(action.needs.len() + action.after.len());
            for (ids, hard) in [(&action.needs, true), (&action.after, false)] {
                for id in ids {
                    let &p = index
                        .get(id.as_str())
                        .ok_or_else(|| format!("`{}` waits for unknown action `{id}`", action.id))?;
                    if p as usize >= i {
                        return Err(format!("`{}` waits for `{id}`, which comes later", action.id));
                    }
                    list.push((p, hard));
                    succs[p as usize].push(i as u32);
                }
            }
            preds.push(list);
        }
        Ok(Dag { preds, succs })
    }

    pub fn len(&self) -> usize {
        self.preds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.preds.is_empty()
    }
}
