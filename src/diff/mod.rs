//! Desired (the plan's `target`) versus actual (the provider's inventory): what has to change
//! for every machine, what it will cost (data to move, data that will be lost), and what
//! drifted at the active site.

mod drift;
pub mod error;

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use drift::drift_text;
pub use error::DiffError;

use crate::contract::SyncMode;
use crate::contract::{Inventory, MachineInventory, Power, RecoveryPoint, ReplicationHealth};
use crate::spec::Via;
use crate::spec::time_format::opt_duration_ms;
use crate::validate::{Destination, MachineId, Model, RecoveryPointSel, SiteId};

/// The change for the whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Transition {
    /// Everything is where it should be.
    None,
    /// No machine moves; protection, commits or power need attention.
    Converge,
    Failover {
        via: Via,
        from: String,
        to: String,
    },
    Failback {
        via: Via,
        sync: SyncMode,
        from: String,
        to: String,
        alternate: bool,
    },
}

/// Which way a machine moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Movement {
    Stay,
    /// To the recovery site.
    Forward {
        from: String,
        to: String,
    },
    /// Home: to the primary site or the alternate location.
    Back {
        from: String,
        to: String,
    },
}

/// What protection needs, for a machine that stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ProtectionChange {
    None,
    /// Initial replication.
    Enable {
        from: String,
        to: String,
    },
    /// Reverse replication after a committed failover.
    Reprotect {
        from: String,
        to: String,
    },
    /// The replica is inconsistent (an interrupted sync): sync it again.
    Resync {
        from: String,
        to: String,
    },
}

/// Data lost by failing over to a point: its age and, where known, the bytes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExpectedLoss {
    #[serde(with = "crate::spec::time_format::duration_ms")]
    pub time: Duration,
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineDiff {
    #[serde(skip)]
    pub id: MachineId,
    pub name: String,
    pub group: String,
    pub current: Option<String>,
    pub desired: String,
    pub movement: Movement,
    /// Power of the live copy now.
    pub power: Option<Power>,
    /// The live copy at the desired site is off and must be started.
    pub start: bool,
    /// A failover awaits commit, and the plan commits automatically.
    pub commit: bool,
    pub commit_pending: bool,
    pub protection: ProtectionChange,
    /// A copy still running at this site must be stopped before reverse replication
    /// (the old source came back after an unplanned failover).
    pub stop_stale_copy: Option<String>,
    /// The recovery point an unplanned failover uses.
    pub point: Option<RecoveryPoint>,
    pub expected_loss: Option<ExpectedLoss>,
    pub transfer_bytes: Option<u64>,
    /// Addresses at the destination (for moves) as `network ip` text.
    pub nics: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_duration_ms")]
    pub replication_lag: Option<Duration>,
    /// Why the machine stays unprotected (not replicating) after the plan, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unprotected: Option<String>,
}

impl MachineDiff {
    pub fn is_change(&self) -> bool {
        self.movement != Movement::Stay
            || self.start
            || self.commit
            || self.protection != ProtectionChange::None
            || self.stop_stale_copy.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub machine: String,
    /// A unified diff: the original copy (`---`) against the live one (`+++`).
    pub diff: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeSet {
    pub transition: Transition,
    pub machines: Vec<MachineDiff>,
    pub drift: Vec<Drift>,
    /// Oldest newest-point across replicating machines.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration_ms")]
    pub max_lag: Option<Duration>,
    #[serde(skip)]
    pub problems: Vec<DiffError>,
}

impl ChangeSet {
    pub fn has_changes(&self) -> bool {
        self.machines.iter().any(MachineDiff::is_change)
    }
}

/// Compare the plan's desired state with the inventory.
pub fn diff(model: &Model, inventory: &Inventory) -> ChangeSet {
    let at = model.target.active_span;
    let mut problems = Vec::new();
    let mut machines = Vec::with_capacity(model.machines.len());
    let site_name = |s: SiteId| model.site(s).name.clone();
    let reachable = |s: &str| inventory.sites.get(s).is_none_or(|i| i.reachable);
    let mut max_lag: Option<Duration> = None;
    let empty = MachineInventory::default();
    for (id, machine) in model.machines.iter().enumerate() {
        let inv = inventory.machines.get(&machine.name).unwrap_or(&empty);
        let current = inv.active_site.as_deref().and_then(|s| model.site_id(s));
        let group = model.groups[machine.group].name.clone();
        let Some(current) = current else {
            // It may well be at a site that cannot be looked into: that is the problem to report.
            if inventory.sites.values().all(|s| s.reachable) {
                problems.push(DiffError::MachineNotFound {
                    machine: machine.name.clone(),
                    id: machine.provider_id.clone(),
                    at,
                });
            }
            continue;
        };
        let desired = model.desired_site_for(Some(current));
        let (from, to) = (site_name(current), site_name(desired));
        // The live copy was removed by hand: only an unplanned move away can do without it.
        let unplanned_away = current != desired && model.target.via == Via::Unplanned;
        if reachable(&from) && !inv.copies.contains_key(&from) && !unplanned_away {
            problems.push(live_copy_gone(machine.name.clone(), &from, inv, at));
            continue;
        }
        if let Some(lag) = inv.replication.as_ref().and_then(|r| r.lag) {
            max_lag = Some(max_lag.map_or(lag, |m| m.max(lag)));
        }
        let mut d = MachineDiff {
            id,
            name: machine.name.clone(),
            group,
            current: Some(from.clone()),
            desired: to.clone(),
            movement: Movement::Stay,
            power: inv.power_at(&from),
            start: false,
            commit: false,
            commit_pending: inv.commit_pending,
            protection: ProtectionChange::None,
            stop_stale_copy: None,
            point: None,
            expected_loss: None,
            transfer_bytes: None,
            nics: Vec::new(),
            replication_lag: inv.replication.as_ref().and_then(|r| r.lag),
            unprotected: None,
        };
        if current == desired {
            plan_stay(model, inv, &mut d, current, &reachable);
        } else {
            if inv.commit_pending {
                problems.push(DiffError::CommitPending { machine: machine.name.clone(), site: from.clone(), at });
            }
            let forward = desired == model.protection.recovery;
            let destination = if forward { Destination::Recovery } else { Destination::Home };
            d.nics = model.addresses(id, destination).iter().map(ToString::to_string).collect();
            if forward {
                plan_forward(model, inv, inventory.taken_at, &mut d, (&from, &to), &reachable, &mut problems);
            } else {
                plan_back(model, inv, inventory.taken_at, &mut d, (&from, &to), &reachable, &mut problems);
            }
        }
        machines.push(d);
    }
    if machines.len() < model.machines.len() {
        problems.extend(unreachable_sites(model, inventory));
    }
    // A dark site is one problem, not one per machine.
    let mut seen_sites = std::collections::HashSet::new();
    problems.retain(|p| match p {
        DiffError::SiteUnreachable { site, .. } => seen_sites.insert(site.clone()),
        _ => true,
    });
    let transition = transition_of(model, &machines);
    let drift = machines
        .iter()
        .filter(|d| matches!(d.movement, Movement::Back { .. }))
        .filter_map(|d| {
            let inv = inventory.machines.get(&d.name)?;
            let live = inv.copies.get(d.current.as_deref()?)?;
            let original = inv.copies.get(&d.desired);
            let text = drift_text(&d.name, &d.desired, original, d.current.as_deref()?, live);
            (!text.is_empty()).then(|| Drift { machine: d.name.clone(), diff: text })
        })
        .collect();
    ChangeSet { transition, machines, drift, max_lag, problems }
}

fn transition_of(model: &Model, machines: &[MachineDiff]) -> Transition {
    if let Some(d) = machines.iter().find(|d| matches!(d.movement, Movement::Forward { .. })) {
        let Movement::Forward { from, to } = &d.movement else { unreachable!() };
        return Transition::Failover { via: model.target.via, from: from.clone(), to: to.clone() };
    }
    if let Some(d) = machines.iter().find(|d| matches!(d.movement, Movement::Back { .. })) {
        let Movement::Back { from, to } = &d.movement else { unreachable!() };
        return Transition::Failback {
            via: model.target.via,
            sync: model.target.sync,
            from: from.clone(),
            to: to.clone(),
            alternate: model.target.alternate.is_some_and(|a| model.site(a).name == *to),
        };
    }
    if machines.iter().any(MachineDiff::is_change) { Transition::Converge } else { Transition::None }
}

/// A machine already where it should be: power, commit and protection.
fn plan_stay(
    model: &Model,
    inv: &MachineInventory,
    d: &mut MachineDiff,
    current: SiteId,
    reachable: &dyn Fn(&str) -> bool,
) {
    let here = model.site(current).name.clone();
    let partner = model.site(model.partner_of(current)).name.clone();
    // A booting machine gets a start too: the provider waits there for its guest.
    d.start = matches!(inv.power_at(&here), Some(Power::Off | Power::Booting));
    let auto_commit = model.target.commit == crate::spec::CommitMode::Auto;
    d.commit = inv.commit_pending && auto_commit;
    let after_failover = current == model.protection.recovery || inv.commit_pending;
    let wants_protection = !after_failover || model.target.reprotect;
    let replicating_right_way = inv.replication.as_ref().is_some_and(|r| r.from == here && r.to == partner);
    if !wants_protection {
        if !replicating_right_way {
            d.unprotected = Some("`target.reprotect` is false".into());
        }
        return;
    }
    // Reverse replication waits for the commit: it drops the points a rollback would need.
    if inv.commit_pending && !auto_commit {
        d.unprotected = Some(format!("reverse replication {here} → {partner} starts after `drplan commit`"));
        return;
    }
    d.protection = match &inv.replication {
        Some(r) if replicating_right_way && r.health == ReplicationHealth::Inconsistent => {
            ProtectionChange::Resync { from: here.clone(), to: partner.clone() }
        }
        _ if replicating_right_way => ProtectionChange::None,
        _ if after_failover || inv.copies.contains_key(&partner) => {
            ProtectionChange::Reprotect { from: here.clone(), to: partner.clone() }
        }
        _ => ProtectionChange::Enable { from: here.clone(), to: partner.clone() },
    };
    // Replication into a dark site waits for it (apply again once it is back).
    if d.protection != ProtectionChange::None && !reachable(&partner) {
        d.protection = ProtectionChange::None;
        d.unprotected = Some(format!("replication {here} → {partner} waits for {partner} to be reachable"));
        return;
    }
    if matches!(d.protection, ProtectionChange::Reprotect { .. } | ProtectionChange::Enable { .. })
        && inv.power_at(&partner).is_some_and(Power::runs)
    {
        d.stop_stale_copy = Some(partner);
    }
}

fn plan_forward(
    model: &Model,
    inv: &MachineInventory,
    now: SystemTime,
    d: &mut MachineDiff,
    (from, to): (&str, &str),
    reachable: &dyn Fn(&str) -> bool,
    problems: &mut Vec<DiffError>,
) {
    let at = model.target.active_span;
    d.movement = Movement::Forward { from: from.to_string(), to: to.to_string() };
    let replicating = inv.replication.as_ref().filter(|r| r.from == from && r.to == to);
    let Some(replication) = replicating else {
        problems.push(DiffError::NotProtected { machine: d.name.clone(), from: from.into(), to: to.into(), at });
        return;
    };
    if !reachable(to) {
        problems.push(DiffError::SiteUnreachable {
            site: to.into(),
            what: "failover",
            help: "machines cannot start at an unreachable recovery site",
            at,
        });
    }
    match model.target.via {
        Via::Planned => {
            if !reachable(from) {
                problems.push(DiffError::SiteUnreachable {
                    site: from.into(),
                    what: "planned failover",
                    help: "a planned failover shuts the source down and syncs it; with the source site down, use `via: unplanned`",
                    at,
                });
            }
            d.expected_loss = Some(ExpectedLoss { time: Duration::ZERO, bytes: Some(0) });
            d.transfer_bytes = replication.pending_bytes;
        }
        Via::Unplanned => choose_unplanned_point(model, inv, replication, now, d, to, problems),
    }
}

fn plan_back(
    model: &Model,
    inv: &MachineInventory,
    now: SystemTime,
    d: &mut MachineDiff,
    (from, to): (&str, &str),
    reachable: &dyn Fn(&str) -> bool,
    problems: &mut Vec<DiffError>,
) {
    let at = model.target.active_span;
    d.movement = Movement::Back { from: from.to_string(), to: to.to_string() };
    if model.target.via == Via::Unplanned {
        plan_unplanned_back(model, inv, now, d, (from, to), reachable, problems);
        return;
    }
    for site in [from, to] {
        if !reachable(site) {
            problems.push(DiffError::SiteUnreachable {
                site: site.into(),
                what: "failback",
                help: "a failback moves data between both sites; wait for the site, or fail back to an alternate location",
                at,
            });
        }
    }
    let alternate = model.target.alternate.is_some_and(|a| model.site(a).name == to);
    let reverse = inv.replication.as_ref().filter(|r| r.from == from && r.to == to);
    if !alternate && (reverse.is_none() || inv.points.is_empty()) {
        problems.push(DiffError::FailbackNeedsReprotect {
            machine: d.name.clone(),
            from: from.into(),
            to: to.into(),
            at,
        });
    }
    d.expected_loss = Some(ExpectedLoss { time: Duration::ZERO, bytes: Some(0) });
    let disk_total: u64 = inv.copies.get(from).map_or(0, |c| c.disks.iter().map(|d| d.size_bytes).sum());
    d.transfer_bytes = match (model.target.sync, reverse) {
        (SyncMode::Delta, Some(r)) => r.pending_bytes,
        _ => Some(disk_total),
    };
}

/// Machines could not be found while sites are unreachable: each such site, once, at its path.
fn unreachable_sites(model: &Model, inventory: &Inventory) -> Vec<DiffError> {
    model
        .sites
        .iter()
        .filter(|s| inventory.sites.get(&s.name).is_some_and(|i| !i.reachable))
        .map(|s| DiffError::SiteUnreachable {
            site: s.name.clone(),
            what: "plan",
            help: "the plan's machines may be there: check the site's `path` (relative to the plan file) or bring the site back",
            at: s.path_span.unwrap_or(model.target.active_span),
        })
        .collect()
}

/// What can still be done for a machine whose live copy is gone: restore its newest recovery
/// point at the other site, if it has one.
fn live_copy_gone(machine: String, site: &str, inv: &MachineInventory, at: miette::SourceSpan) -> DiffError {
    let replica = inv.replication.as_ref().filter(|r| r.from == site);
    let help = match (replica, inv.points.last()) {
        (Some(r), Some(p)) => format!(
            "its newest recovery point at {} is point {} of {}: set `target.active: {}` with `via: unplanned` to restore it there (what was written after it is lost), or put its disks back at {site}",
            r.to,
            p.id,
            humantime::format_rfc3339_seconds(p.time),
            r.to
        ),
        _ => format!("nothing replicates it: put its disks back at {site}, or take it out of the plan"),
    };
    DiffError::LiveCopyGone { machine, site: site.to_string(), help, at }
}

/// Unplanned failback: the recovery site (live now) may be gone; the machine comes back from
/// the newest chosen point that reverse replication brought to the primary, losing what came
/// after it.
fn plan_unplanned_back(
    model: &Model,
    inv: &MachineInventory,
    now: SystemTime,
    d: &mut MachineDiff,
    (from, to): (&str, &str),
    reachable: &dyn Fn(&str) -> bool,
    problems: &mut Vec<DiffError>,
) {
    let at = model.target.active_span;
    if model.target.alternate.is_some_and(|a| model.site(a).name == to) {
        problems.push(DiffError::UnplannedAlternate { machine: d.name.clone(), site: to.into(), at });
        return;
    }
    if !reachable(to) {
        problems.push(DiffError::SiteUnreachable {
            site: to.into(),
            what: "failback",
            help: "machines cannot start at an unreachable site",
            at,
        });
    }
    let Some(replication) = inv.replication.as_ref().filter(|r| r.from == from && r.to == to) else {
        problems.push(DiffError::FailbackNeedsReprotect {
            machine: d.name.clone(),
            from: from.into(),
            to: to.into(),
            at,
        });
        return;
    };
    choose_unplanned_point(model, inv, replication, now, d, to, problems);
}

/// The recovery point an unplanned move uses from the replica at `to`, and the data lost by
/// using it; an inconsistent replica cannot be used at all.
fn choose_unplanned_point(
    model: &Model,
    inv: &MachineInventory,
    replication: &crate::contract::Replication,
    now: SystemTime,
    d: &mut MachineDiff,
    to: &str,
    problems: &mut Vec<DiffError>,
) {
    if replication.health == ReplicationHealth::Inconsistent {
        let at = model.target.active_span;
        problems.push(DiffError::ReplicaInconsistent { machine: d.name.clone(), site: to.into(), at });
        return;
    }
    match choose_point(&inv.points, model.target.recovery_point) {
        Some(point) => {
            d.expected_loss = Some(ExpectedLoss {
                time: now.duration_since(point.time).unwrap_or_default(),
                bytes: point.bytes_after,
            });
            d.point = Some(point.clone());
        }
        None => problems.push(DiffError::NoRecoveryPoint {
            machine: d.name.clone(),
            selector: model.target.recovery_point.to_string(),
            at: model.target.active_span,
        }),
    }
}

/// The point a selector picks, newest first.
pub fn choose_point(points: &[RecoveryPoint], selector: RecoveryPointSel) -> Option<&RecoveryPoint> {
    let mut newest_first = points.iter().rev();
    match selector {
        RecoveryPointSel::Latest => newest_first.next(),
        RecoveryPointSel::LatestAppConsistent => {
            newest_first.find(|p| p.consistency == crate::contract::Consistency::App)
        }
        RecoveryPointSel::LatestProcessed => newest_first.find(|p| p.processed),
        RecoveryPointSel::At(t) => newest_first.find(|p| p.time <= t),
    }
}
