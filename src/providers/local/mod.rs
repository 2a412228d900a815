//! The `local` provider, the embedded default: sites are directories on this machine, a
//! machine is a set of disk images (and optionally a program that runs it). Replication is
//! real block-level copying with blake3 checksums; recovery points are real and restorable;
//! every failover is verified block by block against the point it used.

mod blocks;
pub mod fixture;
mod hook;
pub mod layout;
mod ops;
pub(crate) mod process;
pub(crate) mod records;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

pub use blocks::digest;
use blocks::{Baseline, BlockError, Hash, Transfer};
use hook::Thaw;
use layout::{SiteLayout, disks_in};
use records::{DrillRecord, MachineRecord, PointMeta, ReplicaState, Role};

use crate::contract::{Capabilities, NicAssignment, Platform, ProviderOp};
use crate::contract::{Claimant, ForeignClaim};
use crate::contract::{
    Consistency, DiskInfo, Inventory, MachineCopy, MachineInventory, NicState, Power, RecoveryPoint, Replication,
    ReplicationHealth, SiteInventory, TestCopy,
};
use crate::contract::{OpOutcome, Provider, ProviderError, ProviderFuture};
use crate::contract::{SmallMap, SyncMode};
use crate::providers::claims;
use crate::spec::ProviderKind;
use crate::spec::time_format::human_bytes;
use crate::validate::{ConsistencySpec, Model};

/// Default replication block size.
pub const DEFAULT_BLOCK_SIZE: u64 = 64 * 1024;
/// Nominal throughput for duration estimates (bytes per second).
const ESTIMATE_THROUGHPUT: f64 = 400.0 * 1024.0 * 1024.0;
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct LocalProvider {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    sites: BTreeMap<String, SiteLayout>,
    /// Plan machine name -> directory name at the sites.
    dirs: HashMap<String, String>,
    names: Vec<String>,
    keep: usize,
    block_size: u64,
    /// The plan's freeze and thaw programs, by directory name, with the machine's name.
    hooks: HashMap<String, (String, ConsistencySpec)>,
    /// Where the plan's programs run from.
    plan_dir: PathBuf,
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1024,
        "m" | "mib" | "mb" => 1024 * 1024,
        _ => return None,
    };
    Some(number * factor)
}

fn failed(e: BlockError) -> ProviderError {
    match e {
        BlockError::Cancelled => ProviderError::Cancelled,
        BlockError::Io(m) => ProviderError::failed(m),
        BlockError::Mismatch(m) => ProviderError::Verification { message: m },
    }
}

fn done(summary: String) -> OpOutcome {
    OpOutcome { summary, already_done: true, ..OpOutcome::default() }
}

/// Copy the regular files of a machine directory (its program, scripts, settings; not its
/// disks nor its console log) from `from` to `to`.
fn copy_machine_files(from: &Path, to: &Path) -> Result<(), ProviderError> {
    let Ok(entries) = std::fs::read_dir(from) else { return Ok(()) };
    crate::os::fs::create_private_dir(to)
        .map_err(|e| ProviderError::failed(format!("cannot create {}: {e}", to.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == "console.log" || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let target = to.join(&name);
        crate::os::fs::copy_file(&entry.path(), &target)
            .map_err(|e| ProviderError::failed(format!("cannot copy {}: {e}", entry.path().display())))?;
    }
    Ok(())
}

/// A recovery point of a replica by id (retention or a commit may have dropped it).
fn point_of(replica: &ReplicaState, id: u64, machine: &str) -> Result<PointMeta, ProviderError> {
    replica
        .points
        .iter()
        .find(|p| p.id == id)
        .cloned()
        .ok_or_else(|| ProviderError::failed(format!("{machine}: recovery point {id} no longer exists")))
}

/// The outcome of putting recovery point `point` in place, its `bytes` verified by blake3.
fn restored(summary: String, point: u64, bytes: u64) -> OpOutcome {
    OpOutcome {
        summary,
        point: Some(point),
        verified: Some(format!("blake3 of {} matches point {point}", human_bytes(bytes))),
        ..OpOutcome::default()
    }
}

fn nic_states(nics: &[NicAssignment]) -> Vec<NicState> {
    nics.iter().map(|n| NicState { network: n.network.clone(), ip: n.ip }).collect()
}

impl LocalProvider {
    pub fn open(model: &Model) -> Result<Self, ProviderError> {
        let mut sites = BTreeMap::new();
        let mut block_size = DEFAULT_BLOCK_SIZE;
        for site in &model.sites {
            let root = site.path.clone().ok_or_else(|| {
                ProviderError::setup(format!("site `{}` has no path", site.name), "give local sites a `path`")
            })?;
            if let Some(text) = site.settings.get("block_size") {
                block_size = parse_size(text).filter(|b| *b >= 512 && b.is_power_of_two()).ok_or_else(|| {
                    ProviderError::setup(
                        format!(
                            "site `{}`: block_size `{text}` is not a power of two of at least 512 bytes",
                            site.name
                        ),
                        "use e.g. `block_size: 64KiB` (the default) or `4KiB`",
                    )
                })?;
            }
            // Absolute, because machine programs run with their own directory as cwd.
            let root = std::path::absolute(&root).unwrap_or(root);
            sites.insert(site.name.clone(), SiteLayout { name: site.name.clone(), root });
        }
        let provider = LocalProvider {
            inner: std::sync::Arc::new(Inner {
                sites,
                dirs: model.machines.iter().map(|m| (m.name.clone(), m.provider_id.clone())).collect(),
                names: model.machines.iter().map(|m| m.name.clone()).collect(),
                keep: model.protection.keep_points.max(1) as usize,
                block_size,
                hooks: model
                    .machines
                    .iter()
                    .filter_map(|m| Some((m.provider_id.clone(), (m.name.clone(), m.consistency.clone()?))))
                    .collect(),
                plan_dir: std::path::absolute(model.source.path())
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or_default(),
            }),
        };
        for machine in &model.machines {
            provider.inner.dir(&machine.name)?;
        }
        Ok(provider)
    }
}

impl Inner {
    fn site(&self, name: &str) -> Result<&SiteLayout, ProviderError> {
        self.sites.get(name).ok_or_else(|| ProviderError::failed(format!("unknown site `{name}`")))
    }

    fn reachable_site(&self, name: &str) -> Result<&SiteLayout, ProviderError> {
        let site = self.site(name)?;
        site.reachable().map_err(|reason| ProviderError::Unreachable { site: name.to_string(), reason })?;
        Ok(site)
    }

    /// The machine's directory name at the sites: checked again here (validation checks it
    /// first) because every path of the machine is derived from it.
    fn dir<'a>(&'a self, machine: &'a str) -> Result<&'a str, ProviderError> {
        let dir = self.dirs.get(machine).map_or(machine, String::as_str);
        if crate::os::fs::is_plain_name(dir) {
            Ok(dir)
        } else {
            Err(ProviderError::setup(
                format!("machine `{machine}`: id `{dir}` is not a plain name; its paths would leave the site"),
                "give it an `id` that is one name, without `/`, not `.`, `..` or hidden",
            ))
        }
    }

    /// Refuse to work on a machine at a site where one of its paths is a symbolic link:
    /// whatever drplan writes there would land outside the site.
    fn guard(&self, site: &SiteLayout, dir: &str) -> Result<(), ProviderError> {
        for path in
            [site.machine_dir(dir).join("disks"), site.replica_current(dir), site.record_path(dir), site.drills_root()]
        {
            crate::os::fs::no_links_below(&site.root, &path).map_err(|e| ProviderError::failed(e.to_string()))?;
        }
        Ok(())
    }

    fn record(&self, site: &SiteLayout, dir: &str) -> Result<Option<MachineRecord>, ProviderError> {
        let record: Option<MachineRecord> = records::load(&site.record_path(dir))?;
        // A machine created by hand (disks, no record yet) is live there.
        Ok(record.or_else(|| site.disks_dir(dir).is_dir().then(|| MachineRecord::live(0))))
    }

    fn replica(&self, site: &SiteLayout, dir: &str) -> Result<Option<ReplicaState>, ProviderError> {
        records::load(&site.replica_state(dir))
    }

    /// Where the machine is live: the reachable live record with the highest epoch, or, when
    /// its site is dark, the source named by a replica.
    fn live_site(&self, dir: &str) -> Result<Option<(String, MachineRecord)>, ProviderError> {
        let mut best: Option<(String, MachineRecord)> = None;
        let mut dark_source: Option<(String, u64)> = None;
        for (name, site) in &self.sites {
            if site.reachable().is_err() {
                continue;
            }
            if let Some(record) = self.record(site, dir)?
                && record.role == Role::Live
                && best.as_ref().is_none_or(|(_, b)| record.epoch > b.epoch)
            {
                best = Some((name.clone(), record));
            }
            if let Some(replica) = self.replica(site, dir)?
                && !replica.failed_over
                && self.sites.get(&replica.from).is_some_and(|s| s.reachable().is_err())
            {
                dark_source = Some((replica.from.clone(), replica.source_epoch));
            }
        }
        match (best, dark_source) {
            (Some(b), Some((dark, epoch))) if epoch >= b.1.epoch => Ok(Some((dark, MachineRecord::live(epoch)))),
            (Some(b), _) => Ok(Some(b)),
            (None, Some((dark, epoch))) => Ok(Some((dark, MachineRecord::live(epoch)))),
            (None, None) => Ok(None),
        }
    }

    /// How many disks the machine's own directory at `site` holds; a disk that is a link is
    /// an error (never silently a machine without it).
    fn own_disks(site: &SiteLayout, dir: &str) -> Result<usize, ProviderError> {
        match disks_in(&site.disks_dir(dir)) {
            Ok(disks) => Ok(disks.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(ProviderError::failed(e.to_string())),
        }
    }

    fn disks_of(dir: &Path) -> Vec<DiskInfo> {
        disks_in(dir)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, path)| DiskInfo { size_bytes: std::fs::metadata(&path).map_or(0, |m| m.len()), name })
            .collect()
    }

    /// A machine's settings, as this provider sees them: the regular files of its directory
    /// (its program, scripts, configuration; not its disks nor its console log), each by size
    /// and content hash, so a failback shows which of them changed while it ran away from home.
    fn settings_of(dir: &Path) -> SmallMap<String, String> {
        let Ok(entries) = std::fs::read_dir(dir) else { return SmallMap::new() };
        entries
            .flatten()
            .filter(|e| e.file_name() != "console.log" && e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                use std::os::unix::fs::PermissionsExt;
                let meta = e.metadata().ok()?;
                let hash = blake3::Hasher::new().update_reader(std::fs::File::open(e.path()).ok()?).ok()?.finalize();
                let mode = if meta.permissions().mode() & 0o111 != 0 { ", executable" } else { "" };
                let value = format!("{}, blake3 {}{mode}", human_bytes(meta.len()), &hash.to_hex()[..12]);
                Some((e.file_name().to_string_lossy().into_owned(), value))
            })
            .collect()
    }

    fn powered(record: &MachineRecord) -> bool {
        match &record.process {
            Some(p) => record.power && process::alive(p),
            None => record.power,
        }
    }

    fn machine_inventory(&self, name: &str, now: SystemTime) -> Result<MachineInventory, ProviderError> {
        let dir = self.dir(name)?;
        let mut inv = MachineInventory::default();
        let live = self.live_site(dir)?;
        inv.active_site = live.as_ref().map(|(s, _)| s.clone());
        if let Some((_, record)) = &live {
            inv.commit_pending = record.commit_pending;
            inv.failed_over_at = record.failed_over_at.filter(|_| record.commit_pending);
        }
        for (site_name, site) in &self.sites {
            if site.reachable().is_err() {
                continue;
            }
            // A live copy whose disks are gone (removed by hand) is not a copy any more.
            let own_disks = Self::own_disks(site, dir)?;
            let gone = |record: &MachineRecord| record.role == Role::Live && own_disks == 0;
            if let Some(record) = self.record(site, dir)?.filter(|r| !gone(r)) {
                inv.copies.insert(
                    site_name.clone(),
                    MachineCopy {
                        power: if Self::powered(&record) { Power::On } else { Power::Off },
                        consistent: true,
                        nics: record.nics.clone(),
                        settings: Self::settings_of(&site.machine_dir(dir)),
                        disks: Self::disks_of(&site.disks_dir(dir)),
                    },
                );
            }
            if let Some(replica) = self.replica(site, dir)? {
                if !replica.failed_over {
                    inv.copies.entry(site_name.clone()).or_insert_with(|| MachineCopy {
                        power: Power::Off,
                        consistent: replica.consistent,
                        nics: Vec::new(),
                        settings: Self::settings_of(&site.machine_dir(dir)),
                        disks: Self::disks_of(&site.replica_current(dir)),
                    });
                    let dark = |s: &str| self.sites.get(s).is_none_or(|l| l.reachable().is_err());
                    let health = if !replica.consistent {
                        ReplicationHealth::Inconsistent
                    } else if dark(&replica.from) {
                        ReplicationHealth::Degraded
                    } else {
                        ReplicationHealth::Healthy
                    };
                    inv.replication = Some(Replication {
                        from: replica.from.clone(),
                        to: site_name.clone(),
                        health,
                        lag: replica.points.last().map(|p| now.duration_since(p.time).unwrap_or_default()),
                        pending_bytes: None,
                    });
                }
                if !replica.failed_over || inv.commit_pending {
                    inv.points = replica
                        .points
                        .iter()
                        .map(|p| RecoveryPoint {
                            id: p.id,
                            time: p.time,
                            consistency: Consistency::of(p.app_consistent),
                            processed: true,
                            bytes_after: None,
                        })
                        .collect();
                }
            }
            for drill in std::fs::read_dir(site.drills_root()).into_iter().flatten().flatten() {
                let drill_name = drill.file_name().to_string_lossy().into_owned();
                if let Some(record) = records::load::<DrillRecord>(&site.drill_record(&drill_name, dir))? {
                    let alive = record.process.as_ref().map_or(record.power, process::alive);
                    inv.test_copies.push(TestCopy {
                        site: site_name.clone(),
                        drill: drill_name,
                        power: if alive { Power::On } else { Power::Off },
                    });
                }
            }
        }
        Ok(inv)
    }

    fn site_inventory(&self) -> BTreeMap<String, SiteInventory> {
        self.sites
            .iter()
            .map(|(name, site)| {
                let reachable = site.reachable();
                (name.clone(), SiteInventory { reachable: reachable.is_ok(), error: reachable.err() })
            })
            .collect()
    }

    fn inventory(&self) -> Result<Inventory, ProviderError> {
        let now = SystemTime::now();
        let sites = self.site_inventory();
        let mut machines = BTreeMap::new();
        for name in &self.names {
            machines.insert(name.clone(), self.machine_inventory(name, now)?);
        }
        Ok(Inventory { taken_at: now, sites, machines })
    }

    /// Make the point about to be taken app-consistent: the plan's freeze for the machine
    /// (its thaw runs when the returned guard goes, after the copy, whether it succeeded or
    /// not: the local provider has no snapshot, so the application stays frozen while its
    /// files are read), else `P/M/quiesce` if there is one. True when it succeeded.
    fn quiesce<'a>(&'a self, site: &'a SiteLayout, dir: &str) -> (bool, Option<Thaw<'a>>) {
        let machine_dir = site.machine_dir(dir);
        let Some((name, hooks)) = self.hooks.get(dir) else {
            let script = site.quiesce_script(dir);
            let quiet = process::is_executable(&script)
                && hook::run(&[script.to_string_lossy().into_owned()], &machine_dir, &[], QUIESCE_TIMEOUT);
            return (quiet, None);
        };
        let env = vec![
            ("DRPLAN_MACHINE", name.clone()),
            ("DRPLAN_SITE", site.name.clone()),
            ("DRPLAN_MACHINE_DIR", machine_dir.to_string_lossy().into_owned()),
        ];
        let frozen = hook::run(&hooks.freeze, &self.plan_dir, &env, hooks.timeout);
        (frozen, Some(Thaw { argv: &hooks.thaw, cwd: &self.plan_dir, env, timeout: hooks.timeout }))
    }

    /// The block hashes of a point, computing (and keeping) them when a full copy skipped them.
    fn point_hashes(
        &self,
        site: &SiteLayout,
        dir: &str,
        replica: &ReplicaState,
        point: &PointMeta,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, Vec<Hash>>, ProviderError> {
        let point_dir = site.point_dir(dir, point.id);
        let mut out = BTreeMap::new();
        for name in point.disks.keys() {
            let path = point_dir.join(format!("{name}.hashes"));
            let hashes = match blocks::read_hashes(&path).map_err(failed)? {
                Some(h) => h,
                None if replica.points.last().map(|p| p.id) == Some(point.id) => {
                    let (_, h) = blocks::hash_file(&site.replica_current(dir).join(name), replica.block_size, cancel)
                        .map_err(failed)?;
                    crate::os::fs::create_private_dir(&point_dir).map_err(|e| ProviderError::failed(e.to_string()))?;
                    blocks::write_hashes(&path, &h).map_err(failed)?;
                    h
                }
                None => return Err(ProviderError::failed(format!("point {} of {dir} has no block hashes", point.id))),
            };
            out.insert(name.clone(), hashes);
        }
        Ok(out)
    }

    /// Transfer the live disks at `from` into the replica at `to` and record a new point.
    fn transfer(
        &self,
        dir: &str,
        from: &str,
        to: &str,
        mode: SyncMode,
        final_sync: bool,
        cancel: &CancellationToken,
    ) -> Result<(Transfer, PointMeta), ProviderError> {
        let source = self.reachable_site(from)?;
        let target = self.reachable_site(to)?;
        let (live, record) =
            self.live_site(dir)?.ok_or_else(|| ProviderError::NotFound { machine: dir.into(), site: from.into() })?;
        if live != from {
            return Err(ProviderError::failed(format!("{dir} runs at {live}, not {from}")));
        }
        if final_sync && Self::powered(&record) {
            return Err(ProviderError::failed(format!("{dir}: a final sync needs it shut down at {from} first")));
        }
        // A source without disks (removed by hand) must not cost the target its consistency.
        if Self::own_disks(source, dir)? == 0 {
            return Err(ProviderError::NotFound { machine: dir.into(), site: from.into() });
        }
        let mut replica = match self.replica(target, dir)? {
            Some(r) if r.from == from && !r.failed_over => r,
            // A new replica (initial protection, or an alternate location): everything moves.
            _ => {
                // Points of an earlier replica would carry undo logs that no longer apply.
                let _ = std::fs::remove_dir_all(target.replica_dir(dir).join("points"));
                ReplicaState {
                    from: from.to_string(),
                    consistent: false,
                    failed_over: false,
                    block_size: self.block_size,
                    points: Vec::new(),
                    next_point: 0,
                    source_epoch: record.epoch,
                }
            }
        };
        let (app, thaw) = self.quiesce(source, dir);
        copy_machine_files(&source.machine_dir(dir), &target.replica_dir(dir).join("files"))?;
        let latest = replica.points.last().cloned();
        replica.consistent = false;
        records::save(&target.replica_state(dir), &replica)?;
        let current = target.replica_current(dir);
        let source_disks = source.disks_dir(dir);
        let (transfer, manifests) = match mode {
            SyncMode::Full => (blocks::full_copy(&source_disks, &current, cancel).map_err(failed)?, None),
            SyncMode::Delta => {
                let latest_dir = latest.as_ref().map(|p| target.point_dir(dir, p.id));
                if let (Some(p), Some(d)) = (&latest, &latest_dir) {
                    // Make sure the baseline has hashes (a full copy may have skipped them).
                    self.point_hashes(target, dir, &replica, p, cancel)?;
                    let _ = d;
                }
                let baseline = latest_dir.as_deref().map(|d| Baseline { hashes_dir: d, undo_dir: Some(d) });
                let (t, m) = blocks::delta_sync(&source_disks, &current, baseline.as_ref(), replica.block_size, cancel)
                    .map_err(failed)?;
                (t, Some(m))
            }
        };
        drop(thaw);
        replica.next_point += 1;
        let id = replica.next_point;
        let point_dir = target.point_dir(dir, id);
        let _ = std::fs::remove_dir_all(&point_dir);
        crate::os::fs::create_private_dir(&point_dir)
            .map_err(|e| ProviderError::failed(format!("cannot create {}: {e}", point_dir.display())))?;
        let mut sizes = BTreeMap::new();
        match manifests {
            Some(m) => {
                for (name, (size, hashes)) in m {
                    blocks::write_hashes(&point_dir.join(format!("{name}.hashes")), &hashes).map_err(failed)?;
                    sizes.insert(name, size);
                }
            }
            None => {
                for disk in Self::disks_of(&current) {
                    sizes.insert(disk.name, disk.size_bytes);
                }
                // A full copy starts a new history: older points' undo logs do not apply to it.
                for old in replica.points.drain(..) {
                    let _ = std::fs::remove_dir_all(target.point_dir(dir, old.id));
                }
            }
        }
        let meta = PointMeta { id, time: SystemTime::now(), app_consistent: app, disks: sizes };
        replica.points.push(meta.clone());
        replica.consistent = true;
        // Retention, except while a rollback may still need them.
        let commit_pending = self.record(target, dir)?.is_some_and(|r| r.commit_pending);
        while replica.points.len() > self.keep && !commit_pending {
            let oldest = replica.points.remove(0);
            let _ = std::fs::remove_dir_all(target.point_dir(dir, oldest.id));
        }
        records::save(&target.replica_state(dir), &replica)?;
        Ok((transfer, meta))
    }

    /// Copy point `point` of the replica at `site` into `dest` and verify it block by block.
    fn materialize(
        &self,
        site: &SiteLayout,
        dir: &str,
        replica: &ReplicaState,
        point: &PointMeta,
        dest: &Path,
        cancel: &CancellationToken,
    ) -> Result<u64, ProviderError> {
        let expected = self.point_hashes(site, dir, replica, point, cancel)?;
        let staging = dest.with_extension("incoming");
        let _ = std::fs::remove_dir_all(&staging);
        blocks::full_copy(&site.replica_current(dir), &staging, cancel).map_err(failed)?;
        let newer: Vec<PathBuf> = replica
            .points
            .iter()
            .rev()
            .filter(|p| p.id >= point.id && p.id != replica.points.last().map_or(0, |l| l.id))
            .map(|p| site.point_dir(dir, p.id))
            .collect();
        blocks::apply_undo(&staging, &newer, &point.disks, replica.block_size).map_err(failed)?;
        let verified = blocks::verify(&staging, &expected, replica.block_size, cancel).map_err(failed)?;
        let _ = std::fs::remove_dir_all(dest);
        if let Some(parent) = dest.parent() {
            crate::os::fs::create_private_dir(parent).map_err(|e| ProviderError::failed(e.to_string()))?;
        }
        std::fs::rename(&staging, dest)
            .map_err(|e| ProviderError::failed(format!("cannot move {} into place: {e}", dest.display())))?;
        // The machine's program and settings come along with its disks.
        if let Some(machine_dir) = dest.parent() {
            copy_machine_files(&site.replica_dir(dir).join("files"), machine_dir)?;
        }
        Ok(verified)
    }

    /// Start the program in `workdir` (`run`), if the machine has one.
    fn start_process(
        &self,
        site: &SiteLayout,
        dir: &str,
        workdir: &Path,
        nics: &[NicState],
        extra: &[(&str, &str)],
    ) -> Result<Option<records::ProcessId>, ProviderError> {
        let run = workdir.join("run");
        if !process::is_executable(&run) {
            return Ok(None);
        }
        let ips: Vec<String> = nics.iter().filter_map(|n| n.ip.map(|ip| ip.to_string())).collect();
        let mut env = BTreeMap::from([
            ("DRPLAN_MACHINE".to_string(), dir.to_string()),
            ("DRPLAN_SITE".to_string(), site.name.clone()),
            ("DRPLAN_IPS".to_string(), ips.join(" ")),
        ]);
        for (k, v) in extra {
            env.insert((*k).to_string(), (*v).to_string());
        }
        process::start(&run, workdir, &env).map(Some).map_err(ProviderError::failed)
    }

    /// Bytes the source changed after `point` (block granularity), when it can be read.
    fn bytes_after(
        &self,
        dir: &str,
        from: &str,
        site: &SiteLayout,
        replica: &ReplicaState,
        point: &PointMeta,
        cancel: &CancellationToken,
    ) -> Option<u64> {
        let source = self.reachable_site(from).ok()?;
        let expected = self.point_hashes(site, dir, replica, point, cancel).ok()?;
        let mut bytes = 0;
        for (name, path) in disks_in(&source.disks_dir(dir)).ok()? {
            let (_, now) = blocks::hash_file(&path, replica.block_size, cancel).ok()?;
            let then = expected.get(&name).cloned().unwrap_or_default();
            let changed = (0..now.len().max(then.len())).filter(|&i| now.get(i) != then.get(i)).count();
            bytes += changed as u64 * replica.block_size;
        }
        Some(bytes)
    }

    fn estimate(&self, op: &ProviderOp) -> Duration {
        let Ok(dir) = self.dir(op.machine()) else { return Duration::ZERO };
        let disk_bytes = |site: &str| -> u64 {
            self.sites.get(site).map_or(0, |s| Self::disks_of(&s.disks_dir(dir)).iter().map(|d| d.size_bytes).sum())
        };
        let seconds = |bytes: u64| Duration::from_secs_f64(bytes as f64 / ESTIMATE_THROUGHPUT);
        match op {
            ProviderOp::Shutdown { .. } | ProviderOp::Start { .. } => Duration::from_secs(1),
            ProviderOp::Commit { .. } | ProviderOp::RemoveTestCopy { .. } | ProviderOp::Revert { .. } => {
                Duration::from_millis(100)
            }
            // Delta transfers read everything and move little: a read at full speed.
            ProviderOp::EnableProtection { from, .. }
            | ProviderOp::TakePoint { from, .. }
            | ProviderOp::Sync { from, .. }
            | ProviderOp::Reprotect { from, .. } => seconds(disk_bytes(from)),
            ProviderOp::Failover { from, .. } => seconds(2 * disk_bytes(from)),
            ProviderOp::ChangePoint { site, .. } | ProviderOp::CreateTestCopy { site, .. } => {
                seconds(2 * disk_bytes(site))
            }
        }
    }
}

impl Platform for LocalProvider {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn estimate(&self, op: &ProviderOp) -> Duration {
        self.inner.estimate(op)
    }
}

impl Provider for LocalProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    fn inventory(&self) -> ProviderFuture<'_, Inventory> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || inner.inventory())
                .await
                .map_err(|e| ProviderError::failed(format!("inventory task failed: {e}")))?
        })
    }

    fn sites(&self) -> ProviderFuture<'_, BTreeMap<String, SiteInventory>> {
        Box::pin(async move { Ok(self.inner.site_inventory()) })
    }

    fn execute<'a>(&'a self, op: &'a ProviderOp, cancel: CancellationToken) -> ProviderFuture<'a, OpOutcome> {
        let inner = self.inner.clone();
        let op = op.clone();
        Box::pin(async move {
            // Dropping this future (a timeout) cannot stop the thread: cancel it so the
            // transfer stops at its next block and leaves its target marked inconsistent.
            let guard = cancel.clone().drop_guard();
            let result = tokio::task::spawn_blocking(move || inner.execute(&op, &cancel))
                .await
                .map_err(|e| ProviderError::failed(format!("operation task failed: {e}")))?;
            guard.disarm();
            result
        })
    }

    fn flush(&self) -> ProviderFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn claims<'a>(&'a self, me: &'a Claimant) -> ProviderFuture<'a, Vec<ForeignClaim>> {
        Box::pin(async move { claims::foreign(&self.inner.claim_files(), me, &self.inner.claimed_machines()) })
    }

    fn claim<'a>(&'a self, me: &'a Claimant) -> ProviderFuture<'a, ()> {
        Box::pin(async move { claims::claim(&self.inner.claim_files(), me, &self.inner.claimed_machines()) })
    }
}

impl Inner {
    /// Every reachable site keeps a record of owners: a machine lives at several sites, and
    /// another plan may share any of them.
    fn claim_files(&self) -> Vec<claims::ClaimFile> {
        self.sites
            .values()
            .filter(|site| site.reachable().is_ok())
            .map(|site| claims::ClaimFile::new(site.claims()))
            .collect()
    }

    fn claimed_machines(&self) -> Vec<claims::Machine<'_>> {
        self.names
            .iter()
            .map(|name| claims::Machine { name, id: self.dirs.get(name).map_or(name, String::as_str) })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::contract::suite::{ScratchDir, estate_model, estate_plan};

    /// Validation refuses such an id; the provider checks it again before deriving any path.
    #[test]
    fn an_id_that_would_leave_the_site_is_refused_by_the_provider_too() {
        let dir = ScratchDir::new("drplan-local-id").unwrap();
        let mut model = estate_model(&dir.0, &estate_plan("local", ["a", "b", "c"], 1)).unwrap();
        for id in ["../escape", "/abs", ".drplan", ""] {
            model.machines[0].provider_id = id.to_string();
            let refused = super::LocalProvider::open(&model).err().map(|e| e.to_string());
            assert!(refused.is_some_and(|e| e.contains("not a plain name")), "{id:?}");
        }
    }
}
