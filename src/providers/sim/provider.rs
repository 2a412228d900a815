//! The sim provider: operations against the simulated world, with latencies and faults.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::ops::apply_op;
use super::rng::Rng;
use super::store::WorldStore;
use super::world::{FaultKind, SimCopy, SimMachine, World};
use crate::contract::SyncMode;
use crate::contract::{Capabilities, NicAssignment, Platform, ProviderOp};
use crate::contract::{Claimant, ForeignClaim};
use crate::contract::{
    Consistency, Inventory, MachineCopy, MachineInventory, NicState, Power, RecoveryPoint, Replication,
    ReplicationHealth, SiteInventory, TestCopy,
};
use crate::contract::{OpOutcome, Provider, ProviderError, ProviderFuture};
use crate::providers::claims::{self, ClaimFile};
use crate::spec::ProviderKind;
use crate::validate::Model;

pub struct SimProvider {
    inner: Mutex<Inner>,
    /// The world's record of which plan manages each machine.
    claims: ClaimFile,
    /// Plan machine name -> identity in the world.
    ids: HashMap<String, String>,
    /// Plan order, for the inventory.
    names: Vec<String>,
    sites: Vec<String>,
    keep: usize,
}

struct Inner {
    world: World,
    store: WorldStore,
    /// What this provider changed since the world was last written: only that is written
    /// back, so plans that share the world never undo each other's moves.
    touched: Touched,
}

#[derive(Default)]
struct Touched {
    machines: std::collections::BTreeSet<String>,
    faults: std::collections::BTreeSet<usize>,
    /// The clock or a site's reachability (fixtures move them).
    world: bool,
}

impl Touched {
    fn any(&self) -> bool {
        self.world || !self.machines.is_empty() || !self.faults.is_empty()
    }

    /// Carry this provider's changes from `mine` into `shared`, freshly read from disk.
    fn merge_into(&self, mine: &World, shared: &mut World) {
        for id in &self.machines {
            if let Some(m) = mine.machines.get(id) {
                shared.machines.insert(id.clone(), m.clone());
            }
        }
        for &index in &self.faults {
            if let (Some(fault), Some(theirs)) = (mine.faults.get(index), shared.faults.get_mut(index)) {
                theirs.triggered = theirs.triggered.max(fault.triggered);
            }
        }
        if self.world {
            shared.clock = mine.clock;
            shared.sites = mine.sites.clone();
        }
    }
}

/// What an operation needs before its latency elapses.
struct Prepared {
    latency: Duration,
    hang: bool,
    /// What the operation transfers, counted before its target was marked inconsistent
    /// (after that, the target looks like it needs everything).
    bytes: u64,
}

impl SimProvider {
    pub fn open(model: &Model) -> Result<Self, ProviderError> {
        let paths: Vec<_> = model.sites.iter().filter_map(|s| s.path.clone()).collect();
        let Some(path) = paths.first() else {
            return Err(ProviderError::setup("no sim site has a `path`", "point sim sites at a world file"));
        };
        if paths.iter().any(|p| p != path) {
            return Err(ProviderError::setup(
                "sim sites of one plan must share one world file",
                "give every sim site the same `path`: the world holds all its sites",
            ));
        }
        let store = WorldStore::new(path);
        let world = store.load()?;
        for site in &model.sites {
            if !world.sites.contains_key(&site.name) {
                return Err(ProviderError::setup(
                    format!("site `{}` is not in sim world `{}`", site.name, path.display()),
                    "add it under `sites` in the world file, or recreate the world with `drplan sim init PLAN --force`",
                ));
            }
        }
        let mut claims = path.as_os_str().to_owned();
        claims.push(".claims");
        Ok(SimProvider {
            claims: ClaimFile::new(claims.into()),
            inner: Mutex::new(Inner { world, store, touched: Touched::default() }),
            ids: model.machines.iter().map(|m| (m.name.clone(), m.provider_id.clone())).collect(),
            names: model.machines.iter().map(|m| m.name.clone()).collect(),
            sites: model.sites.iter().map(|s| s.name.clone()).collect(),
            keep: model.protection.keep_points as usize,
        })
    }

    fn claimed_machines(&self) -> Vec<claims::Machine<'_>> {
        self.names.iter().map(|name| claims::Machine { name, id: self.id(name) }).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn id<'a>(&'a self, machine: &'a str) -> &'a str {
        self.ids.get(machine).map_or(machine, String::as_str)
    }

    fn inventory_now(&self) -> Inventory {
        let mut inner = self.lock();
        let now = inner.world.now();
        let processing_delay = inner.world.replication.processing_delay;
        let sites = self.site_inventory(&inner.world);
        let mut machines = std::collections::BTreeMap::new();
        for name in &self.names {
            let id = self.id(name).to_string();
            inner.world.catch_up(&id, now, self.keep);
            let world = &inner.world;
            let Some(m) = world.machines.get(&id) else {
                machines.insert(name.clone(), MachineInventory::default());
                continue;
            };
            machines.insert(name.clone(), machine_inventory(world, m, now, processing_delay));
        }
        Inventory { taken_at: now, sites, machines }
    }

    /// Move the simulated clock forward (a fixed clock only): running machines write, and
    /// replication takes the points that fall due.
    pub fn advance(&self, by: Duration) {
        let mut inner = self.lock();
        if let Some(clock) = inner.world.clock.as_mut() {
            *clock += by;
            inner.touched.world = true;
        }
    }

    /// Take a site down (a disaster) or bring it back.
    pub fn set_reachable(&self, site: &str, reachable: bool) -> Result<(), String> {
        let mut inner = self.lock();
        let now = inner.world.now();
        let entry = inner.world.sites.get_mut(site).ok_or_else(|| format!("the world has no site `{site}`"))?;
        entry.reachable = reachable;
        entry.dark_since = (!reachable).then_some(now);
        inner.touched.world = true;
        Ok(())
    }

    /// The data generation the machine's copy at `site` holds now.
    pub fn generation(&self, machine: &str, site: &str) -> Option<u64> {
        let mut inner = self.lock();
        let id = self.id(machine).to_string();
        let now = inner.world.now();
        inner.world.catch_up(&id, now, self.keep);
        inner.world.machines.get(&id)?.copies.get(site).map(|c| c.generation)
    }

    fn site_inventory(&self, world: &World) -> std::collections::BTreeMap<String, SiteInventory> {
        self.sites
            .iter()
            .map(|s| {
                let reachable = world.reachable(s);
                let error = (!reachable).then(|| "site is dark (sim)".to_string());
                (s.clone(), SiteInventory { reachable, error })
            })
            .collect()
    }

    fn prepare(&self, op: &ProviderOp) -> Result<Prepared, ProviderError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let world = &mut inner.world;
        // Injected faults come first: they model the platform refusing the call.
        let mut hang = false;
        let matching = world.faults.iter().position(|f| {
            f.op.is_none_or(|k| k == op.kind())
                && f.machine.as_deref().is_none_or(|m| m == op.machine())
                && f.site.as_deref().is_none_or(|s| s == op.site())
                && f.times.is_none_or(|t| f.triggered < t)
        });
        if let Some(index) = matching {
            let fault = &mut world.faults[index];
            fault.triggered += 1;
            let (kind, triggered) = (fault.kind, fault.triggered);
            let message = fault.message.clone();
            inner.store.record_fault(index, triggered)?;
            inner.touched.faults.insert(index);
            match kind {
                FaultKind::Error => {
                    return Err(ProviderError::failed(message.unwrap_or_else(|| {
                        format!("injected fault: {} of {} failed", op.kind().as_str(), op.machine())
                    })));
                }
                FaultKind::Throttle => return Err(ProviderError::Throttled { retry_after: Duration::from_millis(50) }),
                FaultKind::Hang => hang = true,
            }
        }
        for site in op.sites_needed() {
            if !world.reachable(site) {
                return Err(ProviderError::Unreachable { site: site.to_string(), reason: "site is dark (sim)".into() });
            }
        }
        let id = self.id(op.machine()).to_string();
        let now = world.now();
        world.catch_up(&id, now, self.keep);
        let bytes = transfer_bytes(world, op, &id);
        let latency = latency_of(world, op, bytes);
        // A data transfer marks its target inconsistent until it completes, so a crash or a
        // cancellation in the middle is never mistaken for a finished sync.
        if let ProviderOp::Sync { to, from, final_sync, .. } = op
            && let Some(m) = world.machines.get_mut(&id)
            && m.active == *from
            && !(*final_sync && m.copies.get(from).is_some_and(|c| c.power.runs()))
            && m.copies.get(to).is_none_or(|c| c.generation != m.written || !c.consistent)
        {
            let template = m.copies.get(from).cloned();
            let target = m.copies.entry(to.clone()).or_insert_with(|| blank_copy(template.as_ref()));
            target.consistent = false;
            let snapshot = m.clone();
            inner.store.record_machine(&id, &snapshot)?;
            inner.touched.machines.insert(id.clone());
        }
        Ok(Prepared { latency, hang, bytes })
    }

    fn apply(&self, op: &ProviderOp, bytes: u64) -> Result<OpOutcome, ProviderError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let id = self.id(op.machine()).to_string();
        let now = inner.world.now();
        inner.world.catch_up(&id, now, self.keep);
        let settings = inner.world.replication.clone();
        let world = &mut inner.world;
        let Some(m) = world.machines.get_mut(&id) else {
            return Err(ProviderError::NotFound { machine: op.machine().to_string(), site: op.site().to_string() });
        };
        let outcome = apply_op(m, op, now, settings.app_consistent_every, bytes)?;
        if !outcome.already_done {
            let snapshot = m.clone();
            inner.store.record_machine(&id, &snapshot)?;
            inner.touched.machines.insert(id.clone());
        }
        Ok(outcome)
    }
}

/// Simulated duration: the operation's latency (seeded jitter) plus the time to move `bytes`.
fn latency_of(world: &World, op: &ProviderOp, bytes: u64) -> Duration {
    let base = world.latency.get(&op.kind()).copied().unwrap_or(super::world::Latency { mean_ms: 0, jitter_ms: 0 });
    // Keyed by what the operation does to which machine where: the same call always takes
    // the same time, so runs are reproducible.
    let mut rng = Rng::for_parts(world.seed, &[op.kind().as_str(), op.machine(), op.site()]);
    let jitter = if base.jitter_ms > 0 { rng.range(0, 2 * base.jitter_ms) as i64 - base.jitter_ms as i64 } else { 0 };
    let ms = (base.mean_ms as i64 + jitter).max(0) as u64;
    let per_s = world.replication.throughput_mib_s.max(1) * 1024 * 1024;
    Duration::from_millis(ms) + Duration::from_secs_f64(bytes as f64 / per_s as f64)
}

/// What the operation moves for machine `id` (at the provider). The operation is matched
/// before the machine is looked up: the planner asks for every action, and most move nothing.
pub(super) fn transfer_bytes(world: &World, op: &ProviderOp, id: &str) -> u64 {
    let machine = || world.machines.get(id);
    match op {
        ProviderOp::EnableProtection { .. } | ProviderOp::Sync { mode: SyncMode::Full, .. } => {
            machine().map_or(0, |m| m.disk_bytes)
        }
        ProviderOp::Sync { to, mode: SyncMode::Delta, .. } | ProviderOp::Reprotect { to, .. } => {
            machine().map_or(0, |m| match m.copies.get(to) {
                Some(c) if c.consistent => m.written.abs_diff(c.generation).min(m.disk_bytes),
                // An interrupted or missing copy is rebuilt in full.
                _ => m.disk_bytes,
            })
        }
        ProviderOp::TakePoint { .. } => machine().map_or(0, |m| {
            let last = m.points.last().map_or(0, |p| p.generation);
            m.written.saturating_sub(last).min(m.disk_bytes)
        }),
        _ => 0,
    }
}

fn blank_copy(template: Option<&SimCopy>) -> SimCopy {
    SimCopy {
        power: Power::Off,
        generation: 0,
        consistent: false,
        nics: Vec::new(),
        settings: template.map(|t| t.settings.clone()).unwrap_or_default(),
        disks: template.map(|t| t.disks.clone()).unwrap_or_default(),
    }
}

/// Bring the copy at `to` up to the live data at `from`, creating it when absent.
pub(super) fn refresh_copy<'m>(m: &'m mut SimMachine, from: &str, to: &str) -> &'m mut SimCopy {
    let template = m.copies.get(from).cloned();
    let written = m.written;
    let target = m.copies.entry(to.to_string()).or_insert_with(|| blank_copy(template.as_ref()));
    target.generation = written;
    target.consistent = true;
    target
}

pub(super) fn nic_states(nics: &[NicAssignment]) -> Vec<NicState> {
    nics.iter().map(|n| NicState { network: n.network.clone(), ip: n.ip }).collect()
}

pub(super) fn done(summary: impl Into<String>) -> OpOutcome {
    OpOutcome { summary: summary.into(), already_done: true, ..OpOutcome::default() }
}

pub(super) fn did(summary: impl Into<String>) -> OpOutcome {
    OpOutcome { summary: summary.into(), ..OpOutcome::default() }
}

pub(super) fn fail(message: impl Into<String>) -> ProviderError {
    ProviderError::failed(message)
}

/// A point of the live data, taken now.
pub(super) fn new_point(m: &mut SimMachine, now: SystemTime, app_every: u32) -> u64 {
    let id = m.push_point(now, m.written, app_every);
    if let Some(rep) = m.replication.as_mut() {
        rep.last_point = now;
    }
    id
}

fn machine_inventory(world: &World, m: &SimMachine, now: SystemTime, processing_delay: Duration) -> MachineInventory {
    let copies = m
        .copies
        .iter()
        .map(|(site, c)| {
            let power = if world.reachable(site) { c.power } else { Power::Unknown };
            let copy = MachineCopy {
                power,
                consistent: c.consistent,
                nics: c.nics.clone(),
                settings: c.settings.clone(),
                disks: c.disks.clone(),
            };
            (site.clone(), copy)
        })
        .collect();
    let newest = m.points.last();
    let replication = m.replication.as_ref().map(|r| {
        let health = if !m.copies.get(&r.to).is_some_and(|c| c.consistent) {
            ReplicationHealth::Inconsistent
        } else if !world.reachable(&r.from) || !world.reachable(&r.to) {
            ReplicationHealth::Degraded
        } else {
            ReplicationHealth::Healthy
        };
        Replication {
            from: r.from.clone(),
            to: r.to.clone(),
            health,
            lag: newest.map(|p| now.duration_since(p.time).unwrap_or_default()),
            pending_bytes: Some(m.written.saturating_sub(newest.map_or(0, |p| p.generation))),
        }
    });
    let points = m
        .points
        .iter()
        .map(|p| RecoveryPoint {
            id: p.id,
            time: p.time,
            consistency: Consistency::of(p.app),
            processed: now.duration_since(p.time).unwrap_or_default() >= processing_delay,
            bytes_after: Some(m.written.saturating_sub(p.generation)),
        })
        .collect();
    MachineInventory {
        active_site: Some(m.active.clone()),
        copies,
        replication,
        points,
        commit_pending: m.commit_pending,
        failed_over_at: m.failed_over.as_ref().map(|f| f.at),
        test_copies: m
            .test_copies
            .iter()
            .map(|t| TestCopy { site: t.site.clone(), drill: t.drill.clone(), power: t.power })
            .collect(),
    }
}

impl Platform for SimProvider {
    fn capabilities(&self) -> Capabilities {
        self.lock().world.support.clone()
    }

    fn estimate(&self, op: &ProviderOp) -> Duration {
        let inner = self.lock();
        latency_of(&inner.world, op, transfer_bytes(&inner.world, op, self.id(op.machine())))
    }
}

impl Provider for SimProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sim
    }

    fn inventory(&self) -> ProviderFuture<'_, Inventory> {
        Box::pin(async move { Ok(self.inventory_now()) })
    }

    fn sites(&self) -> ProviderFuture<'_, std::collections::BTreeMap<String, SiteInventory>> {
        Box::pin(async move { Ok(self.site_inventory(&self.lock().world)) })
    }

    fn execute<'a>(&'a self, op: &'a ProviderOp, cancel: CancellationToken) -> ProviderFuture<'a, OpOutcome> {
        Box::pin(async move {
            let prepared = self.prepare(op)?;
            let scale = self.lock().world.time_scale.max(0.0);
            if prepared.hang {
                cancel.cancelled().await;
                return Err(ProviderError::Cancelled);
            }
            let real = prepared.latency.mul_f64(scale);
            if cancel.is_cancelled() {
                return Err(ProviderError::Cancelled);
            }
            if !real.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(real) => {}
                    _ = cancel.cancelled() => return Err(ProviderError::Cancelled),
                }
            }
            self.apply(op, prepared.bytes)
        })
    }

    fn claims<'a>(&'a self, me: &'a Claimant) -> ProviderFuture<'a, Vec<ForeignClaim>> {
        Box::pin(async move { claims::foreign(std::slice::from_ref(&self.claims), me, &self.claimed_machines()) })
    }

    fn claim<'a>(&'a self, me: &'a Claimant) -> ProviderFuture<'a, ()> {
        Box::pin(async move { claims::claim(std::slice::from_ref(&self.claims), me, &self.claimed_machines()) })
    }

    fn flush(&self) -> ProviderFuture<'_, ()> {
        Box::pin(async move {
            let mut guard = self.lock();
            let inner = &mut *guard;
            if inner.touched.any() {
                let (touched, mine) = (&inner.touched, &inner.world);
                // The written world replaces this one: two worlds in memory at once, not three.
                let (_, merged) = inner.store.update_keeping(|shared| {
                    touched.merge_into(mine, shared);
                    Ok::<_, std::convert::Infallible>(())
                })?;
                inner.world = merged;
                inner.touched = Touched::default();
            }
            Ok(())
        })
    }
}
