//! The simulated datacenter: its file format and how time passes in it (stored by
//! [`super::store`]).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::contract::{Capabilities, OpKind};
use crate::contract::{DiskInfo, NicState, Power, SmallMap};
use crate::spec::time_format::{self, duration_ms, opt_time};

pub const WORLD_FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    pub format: u32,
    #[serde(default)]
    pub seed: u64,
    /// Simulated "now". Set it for reproducible rehearsals (`drplan sim advance` moves it);
    /// leave it out to follow the wall clock.
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub clock: Option<SystemTime>,
    /// Real seconds slept per simulated second of operation latency.
    #[serde(default = "default_time_scale")]
    pub time_scale: f64,
    #[serde(default)]
    pub replication: ReplicationSettings,
    /// Per-operation latency (simulated time).
    #[serde(default = "default_latencies")]
    pub latency: BTreeMap<OpKind, Latency>,
    #[serde(default)]
    pub support: Capabilities,
    pub sites: BTreeMap<String, SimSite>,
    /// Keyed by the machine's identity at the provider (`id` in the plan, else its name).
    pub machines: BTreeMap<String, SimMachine>,
    #[serde(default)]
    pub faults: Vec<Fault>,
}

fn default_time_scale() -> f64 {
    0.001
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationSettings {
    /// A recovery point is taken this often while replication is healthy.
    #[serde(with = "duration_ms")]
    pub point_interval: Duration,
    /// Every n-th point is app-consistent.
    pub app_consistent_every: u32,
    /// Points younger than this are not processed yet at the recovery site.
    #[serde(with = "duration_ms")]
    pub processing_delay: Duration,
    /// Transfer speed for syncs, in MiB per simulated second.
    pub throughput_mib_s: u64,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        ReplicationSettings {
            point_interval: Duration::from_secs(300),
            app_consistent_every: 6,
            processing_delay: Duration::from_secs(120),
            throughput_mib_s: 200,
        }
    }
}

/// Latency of an operation: a mean and a seeded, uniform jitter around it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    pub mean_ms: u64,
    #[serde(default)]
    pub jitter_ms: u64,
}

pub fn default_latencies() -> BTreeMap<OpKind, Latency> {
    use OpKind::*;
    let l = |mean_s: u64, jitter_s: u64| Latency { mean_ms: mean_s * 1000, jitter_ms: jitter_s * 1000 };
    BTreeMap::from([
        (EnableProtection, l(60, 10)),
        (TakePoint, l(5, 1)),
        (Shutdown, l(30, 10)),
        (Start, l(90, 30)),
        (Sync, l(20, 5)),
        (Failover, l(45, 15)),
        (Commit, l(5, 1)),
        (ChangePoint, l(30, 5)),
        (Revert, l(30, 5)),
        (Reprotect, l(60, 10)),
        (CreateTestCopy, l(90, 30)),
        (RemoveTestCopy, l(20, 5)),
    ])
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSite {
    pub reachable: bool,
    /// When the site went dark: writes at its machines stop counting from then on.
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub dark_since: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimMachine {
    pub disk_bytes: u64,
    /// Bytes per second the live copy writes while it runs.
    pub write_rate: u64,
    /// Site of the live copy.
    pub active: String,
    /// Total bytes written by the live copy so far: the data's "generation".
    pub written: u64,
    #[serde(with = "time_format")]
    pub written_at: SystemTime,
    pub copies: SmallMap<String, SimCopy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<SimReplication>,
    #[serde(default)]
    pub points: Vec<SimPoint>,
    #[serde(default)]
    pub next_point: u64,
    #[serde(default)]
    pub commit_pending: bool,
    /// The uncommitted failover: when, and how much the source had written by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_over: Option<SimFailover>,
    #[serde(default)]
    pub test_copies: Vec<SimTestCopy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimFailover {
    #[serde(with = "time_format")]
    pub at: SystemTime,
    pub source_written: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimCopy {
    pub power: Power,
    /// The generation of the data this copy holds.
    pub generation: u64,
    pub consistent: bool,
    #[serde(default)]
    pub nics: Vec<NicState>,
    #[serde(default)]
    pub settings: SmallMap<String, String>,
    #[serde(default)]
    pub disks: Vec<DiskInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimReplication {
    pub from: String,
    pub to: String,
    #[serde(with = "time_format")]
    pub since: SystemTime,
    /// Time of the newest point: the next one is due one interval later.
    #[serde(with = "time_format")]
    pub last_point: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimPoint {
    pub id: u64,
    #[serde(with = "time_format")]
    pub time: SystemTime,
    pub generation: u64,
    pub app: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimTestCopy {
    pub site: String,
    pub drill: String,
    pub point: u64,
    pub nics: Vec<NicState>,
    pub power: Power,
}

/// An injected fault: the matching operation fails, hangs or is throttled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Operation kind to match (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OpKind>,
    /// Machine name (as in the plan) to match (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// Site to match (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    pub kind: FaultKind,
    /// Trigger at most this many times (always when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    #[serde(default)]
    pub triggered: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Error,
    /// The operation never returns; the step's timeout ends it.
    Hang,
    Throttle,
}

impl SimMachine {
    /// Record a recovery point; every `app_every`-th one is app-consistent.
    pub fn push_point(&mut self, time: SystemTime, generation: u64, app_every: u32) -> u64 {
        self.next_point += 1;
        let app = app_every > 0 && self.next_point.is_multiple_of(app_every as u64);
        self.points.push(SimPoint { id: self.next_point, time, generation, app });
        self.next_point
    }
}

impl World {
    /// The simulated present.
    pub fn now(&self) -> SystemTime {
        self.clock.unwrap_or_else(SystemTime::now)
    }

    pub fn reachable(&self, site: &str) -> bool {
        self.sites.get(site).is_some_and(|s| s.reachable)
    }

    /// Bring a machine up to `now`: points that replication took meanwhile, bytes written.
    /// Deterministic, so a read-only look computes the same as a persisted one.
    pub fn catch_up(&mut self, id: &str, now: SystemTime, keep: usize) {
        let settings = self.replication.clone();
        // Unreachable sites and when they went dark (unknown: from the start of time).
        let dark: BTreeMap<String, SystemTime> = self
            .sites
            .iter()
            .filter(|(_, s)| !s.reachable)
            .map(|(k, s)| (k.clone(), s.dark_since.unwrap_or(SystemTime::UNIX_EPOCH)))
            .collect();
        let Some(m) = self.machines.get_mut(id) else { return };
        // Writes stop counting when the live copy's site went dark.
        let effective_now = match dark.get(&m.active) {
            Some(&t) => now.min(t.max(m.written_at)),
            None => now,
        };
        let running = m.copies.get(&m.active).is_some_and(|c| c.power.runs());
        let generation_at = |m: &SimMachine, t: SystemTime| -> u64 {
            let t = t.min(effective_now);
            if !running || t <= m.written_at {
                return m.written;
            }
            let secs = t.duration_since(m.written_at).unwrap_or_default().as_secs_f64();
            m.written.saturating_add((secs * m.write_rate as f64) as u64)
        };
        if let Some(rep) = m.replication.clone() {
            let replica_ok = m.copies.get(&rep.to).is_some_and(|c| c.consistent);
            let interval = settings.point_interval.max(Duration::from_secs(1));
            // No points while either end is dark.
            let stop = [&rep.from, &rep.to].iter().filter_map(|s| dark.get(*s)).fold(now, |acc, &t| acc.min(t));
            if rep.from == m.active && replica_ok && stop > rep.last_point {
                let due = stop.duration_since(rep.last_point).unwrap_or_default().as_millis() / interval.as_millis();
                // Only the last `keep` points can survive retention; skip computing the rest.
                let skip = due.saturating_sub(keep as u128) as u32;
                let mut last = rep.last_point;
                for k in (skip + 1)..=(due as u32) {
                    let t = rep.last_point + interval * k;
                    let generation = generation_at(m, t);
                    m.push_point(t, generation, settings.app_consistent_every);
                    last = t;
                }
                if let Some(r) = m.replication.as_mut() {
                    r.last_point = if due > 0 { rep.last_point + interval * due as u32 } else { last };
                }
                if let Some(newest) = m.points.last().map(|p| p.generation)
                    && let Some(replica) = m.copies.get_mut(&rep.to)
                {
                    replica.generation = replica.generation.max(newest);
                }
            }
        }
        // Retention: keep the newest points, except while a failover awaits commit.
        if !m.commit_pending && m.points.len() > keep {
            let excess = m.points.len() - keep;
            m.points.drain(..excess);
        }
        let generation = generation_at(m, now);
        m.written = generation;
        m.written_at = now.max(m.written_at);
        if let Some(live) = m.copies.get_mut(&m.active) {
            live.generation = m.written;
        }
    }
}
