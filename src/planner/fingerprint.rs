//! What a saved plan was computed from, and how to tell that it changed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::action::{ActionKind, ActionPlan, Fingerprint};
use crate::contract::ProviderOp;
use crate::contract::{Inventory, Power, ReplicationHealth};
use crate::state::State;

/// The part of a machine's inventory a plan depends on. Replication lag and new recovery
/// points do not make a plan stale; a point it relies on disappearing does.
#[derive(Debug, PartialEq, Serialize)]
struct MachineView<'a> {
    active: Option<&'a str>,
    copies: BTreeMap<&'a str, (Power, bool)>,
    replication: Option<(&'a str, &'a str, ReplicationHealth)>,
    commit_pending: bool,
    test_copies: BTreeSet<(&'a str, &'a str)>,
    points_used: BTreeSet<u64>,
}

fn views<'a>(inventory: &'a Inventory, points: &BTreeMap<&str, BTreeSet<u64>>) -> BTreeMap<&'a str, MachineView<'a>> {
    inventory
        .machines
        .iter()
        .map(|(name, m)| {
            let wanted = points.get(name.as_str());
            let view = MachineView {
                active: m.active_site.as_deref(),
                copies: m.copies.iter().map(|(s, c)| (s.as_str(), (c.power, c.consistent))).collect(),
                replication: m.replication.as_ref().map(|r| (r.from.as_str(), r.to.as_str(), r.health)),
                commit_pending: m.commit_pending,
                test_copies: m.test_copies.iter().map(|t| (t.site.as_str(), t.drill.as_str())).collect(),
                points_used: m
                    .points
                    .iter()
                    .map(|p| p.id)
                    .filter(|id| wanted.is_some_and(|w| w.contains(id)))
                    .collect(),
            };
            (name.as_str(), view)
        })
        .collect()
}

/// Recovery points the actions rely on, by machine.
pub fn points_used(actions: &[super::action::Action]) -> BTreeMap<&str, BTreeSet<u64>> {
    let mut used: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for action in actions {
        if let ActionKind::Provider { op } = &action.kind {
            let point = match op {
                ProviderOp::Failover { point: Some(p), .. } | ProviderOp::CreateTestCopy { point: p, .. } => Some(*p),
                _ => None,
            };
            if let Some(p) = point {
                used.entry(op.machine()).or_default().insert(p);
            }
        }
    }
    used
}

/// A short hash of each machine's view, so a stale plan can say which machines changed.
pub fn machine_hashes(inventory: &Inventory, points: &BTreeMap<&str, BTreeSet<u64>>) -> BTreeMap<String, String> {
    views(inventory, points)
        .into_iter()
        .map(|(name, view)| {
            let text = serde_json::to_vec(&view).unwrap_or_default();
            (name.to_string(), blake3::hash(&text).to_hex()[..16].to_string())
        })
        .collect()
}

pub fn fingerprint(
    document_hash: &str,
    state: &State,
    inventory: &Inventory,
    actions: &[super::action::Action],
) -> Fingerprint {
    Fingerprint {
        document_hash: document_hash.to_string(),
        state_lineage: state.lineage.clone(),
        state_serial: state.serial,
        machines: machine_hashes(inventory, &points_used(actions)),
    }
}

/// Why a saved plan no longer matches the world; empty when it still does.
pub fn staleness(plan: &ActionPlan, document_hash: &str, state: &State, inventory: &Inventory) -> Vec<String> {
    let mut reasons = Vec::new();
    let f = &plan.fingerprint;
    if f.document_hash != document_hash {
        reasons.push("the plan document changed".to_string());
    }
    if f.state_lineage != state.lineage {
        reasons.push("the state belongs to another lineage (it was recreated or replaced)".to_string());
    } else if f.state_serial != state.serial {
        reasons.push(format!("the state changed (serial {} → {})", f.state_serial, state.serial));
    }
    let now = machine_hashes(inventory, &points_used(&plan.actions));
    let mut changed: Vec<&str> = now
        .iter()
        .filter(|(name, hash)| f.machines.get(*name) != Some(*hash))
        .map(|(name, _)| name.as_str())
        .chain(f.machines.keys().filter(|name| !now.contains_key(*name)).map(String::as_str))
        .collect();
    changed.sort_unstable();
    changed.dedup();
    if !changed.is_empty() {
        let shown: Vec<String> = changed.iter().take(5).map(|n| format!("`{n}`")).collect();
        let more = if changed.len() > 5 { format!(" and {} more", changed.len() - 5) } else { String::new() };
        reasons.push(format!(
            "the provider inventory changed for {}{more} (power, location, replication or a recovery point the plan uses)",
            shown.join(", ")
        ));
    }
    reasons
}
