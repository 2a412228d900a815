//! Moving a machine's data between sites, and its recovery points.
//!
//! The source's writes are tracked by a persistent dirty bitmap per target site
//! (`drplan.SITE.G`). A transfer adds generation G+1 and starts a backup job of the blocks
//! G marks, atomically (one QMP transaction); G is never cleared by the job, so a transfer
//! that dies midway is simply done again from G. Only when the target records G+1 is G
//! removed. Without a usable bitmap (a VM that was killed, an unplanned failover's old copy)
//! the transfer compares the images and moves only the clusters that differ: offline with
//! `qemu-img` when the source is off, else through a point-in-time view of the running disk
//! (image fleecing: a copy-before-write node exported over NBD). A first transfer copies all.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use drplan_plugin::Call;
use serde_json::{Value, json};

use crate::copy::{Copy, LastSync, Point, copy_when_different};
use crate::errors::{Answer, cancelled, failed, io};
use crate::hooks::{Hooks, PlanHooks};
use crate::img::QemuImg;
use crate::qmp::Qmp;
use crate::vm::{Hardware, Helper, Instance, Qemu, node_json};

/// How one disk reaches the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// The blocks bitmap generation G marks, into the target's head.
    Incremental(u64),
    /// No bitmap describes the target's older copy: only the clusters where the images
    /// differ (a running source is read through a point-in-time view of its disk).
    Compare,
    /// Everything, into a new image.
    Full,
}

/// One disk's part in a transfer.
#[derive(Debug, Clone)]
struct Work {
    disk: String,
    image: PathBuf,
    size: u64,
    strategy: Strategy,
    /// The bitmap generation this transfer adds.
    next: String,
    /// This target's bitmaps that no longer describe it.
    stale: Vec<String>,
}

/// A backup job, prepared: its target node exists, its actions wait for the transaction.
struct Job {
    work: Work,
    job: String,
    node: String,
    actions: Vec<Value>,
    /// A compare's copy-before-write image at the source, removed when the compare ends.
    fleece: Option<PathBuf>,
}

/// What a transfer did: the bytes moved, the instant the target's data is from, and whether
/// the guest was frozen at that instant (an app-consistent point).
pub struct Transferred {
    pub moved: u64,
    pub at: SystemTime,
    pub app_consistent: bool,
}

pub struct Mover<'a> {
    pub img: &'a QemuImg,
    pub qemu: &'a Qemu,
    /// The plan's freeze and thaw for the machine, when it gives them.
    pub hooks: Option<&'a PlanHooks>,
}

/// Where the source's disks are open for backup jobs: its running VM or a helper.
struct Access {
    qmp: Qmp,
    helper: Option<Helper>,
}

impl Mover<'_> {
    /// Bring the target's disks to the source's data. The target is marked inconsistent
    /// before the first byte and consistent after the last. Returns the bytes moved.
    pub async fn transfer(&self, source: &Copy, target: &mut Copy, full: bool, call: &Call) -> Answer<Transferred> {
        let vm = Instance::vm(&source.dir, String::new());
        let running = vm.running().await;
        let disks = source.heads()?;
        // A description the target could not boot from fails here, before the target changes
        // and long before a failover needs it.
        let hardware = Hardware::read(&source.dir)?;
        hardware.boot_disk(&disks)?;
        target.state_mut().consistent = false;
        target.save()?;
        copy_hardware(&hardware, &source.dir, &target.dir)?;
        let mut access = match running {
            true => {
                Some(Access { qmp: Qmp::connect_within(&vm.socket(), Duration::from_secs(5)).await?, helper: None })
            }
            false => None,
        };
        let source_at = (source.dir.as_path(), source.site.as_str());
        let result = self.transfer_disks(source_at, &disks, running, &mut access, target, full, call).await;
        if let Some(Access { qmp, helper: Some(helper) }) = access {
            helper.close(qmp).await;
        }
        let transferred = result?;
        for gone in target.disks()?.into_iter().filter(|d| !disks.iter().any(|(n, _)| n == d)) {
            let path = target.disk(&gone, "");
            std::fs::remove_file(&path).map_err(|e| io("cannot remove", &path, e))?;
            target.state_mut().bitmaps.remove(&gone);
        }
        let state = target.state_mut();
        state.consistent = true;
        // What a lossless failover needs to know when the source has gone dark since.
        state.last_sync = Some(LastSync { final_sync: !running, time: SystemTime::now() });
        target.save()?;
        Ok(transferred)
    }

    #[allow(clippy::too_many_arguments)]
    async fn transfer_disks(
        &self,
        (source_dir, source_site): (&Path, &str),
        disks: &[(String, PathBuf)],
        running: bool,
        access: &mut Option<Access>,
        target: &mut Copy,
        full: bool,
        call: &Call,
    ) -> Answer<Transferred> {
        let prefix = format!("drplan.{}.", target.site);
        let mut done = Transferred { moved: 0, at: SystemTime::now(), app_consistent: false };
        // Strategies first: images compared offline before a helper opens them all.
        let work = self.plan_work(disks, running, access, target, full, &prefix).await?;
        let mut progress = Progress { scanned: 0, total: work.iter().map(|w| w.size).sum() };
        let (offline, through_qemu): (Vec<Work>, Vec<Work>) =
            work.into_iter().partition(|w| w.strategy == Strategy::Compare && !running);
        for w in offline {
            done.moved += self.compare_offline(&w, target, &prefix, &progress, call).await?;
            progress.disk_done(call, &w.disk, w.size, done.moved);
        }
        if through_qemu.is_empty() {
            return Ok(done);
        }
        if access.is_none() {
            let (helper, qmp) = Helper::open(self.qemu, source_dir, disks).await?;
            *access = Some(Access { qmp, helper: Some(helper) });
        }
        let Some(open) = access.as_mut() else { return Err(failed("no block access")) };
        let qmp = &mut open.qmp;
        // An interrupted compare's export holds its node: gone before the nodes are reused.
        let exports = Exports { socket: source_dir.join("vm.nbd") };
        exports.stop(qmp).await;
        let hooks = Hooks::of(source_dir, source_site, self.hooks);
        let jobs = self.start_jobs(qmp, through_qemu, target, &prefix, running.then_some(&hooks), &mut done).await?;
        if jobs.iter().any(|j| j.fleece.is_some())
            && let Err(e) = exports.start(qmp).await
        {
            abandon(qmp, &jobs).await;
            return Err(e);
        }
        for (i, job) in jobs.iter().enumerate() {
            let moved = match job.fleece {
                Some(_) => self.compare_live(qmp, job, &exports, target, &progress, call).await,
                None => self.finish_backup(qmp, job, target, call).await,
            };
            done.moved += match moved {
                Ok(moved) => moved,
                Err(e) => {
                    abandon(qmp, &jobs[i..]).await;
                    exports.stop(qmp).await;
                    return Err(e);
                }
            };
            let w = &job.work;
            // Recorded before the old generation goes: a crash in between leaves a superset,
            // never a gap.
            record(target, &w.disk, &w.next, &prefix)?;
            if let Some(g) = w.strategy.generation() {
                remove_bitmap(qmp, &w.disk, &format!("{prefix}{g}")).await;
            }
            progress.disk_done(call, &w.disk, w.size, done.moved);
        }
        exports.stop(qmp).await;
        Ok(done)
    }

    /// A disk of a machine that is off, compared with `qemu-img`; its bitmap starts afresh.
    async fn compare_offline(
        &self,
        w: &Work,
        target: &mut Copy,
        prefix: &str,
        progress: &Progress,
        call: &Call,
    ) -> Answer<u64> {
        let source = std::fs::canonicalize(&w.image).map_err(|e| io("cannot resolve", &w.image, e))?;
        let head = target.disk(&w.disk, "");
        let seen = |percent| progress.comparing(call, w, percent);
        let moved = until_cancelled(call, self.copy_changes(&source.to_string_lossy(), "qcow2", &head, seen)).await?;
        for name in &w.stale {
            self.img.remove_bitmap(&w.image, name).await?;
        }
        self.img.add_bitmap(&w.image, &w.next).await?;
        record(target, &w.disk, &w.next, prefix)?;
        Ok(moved)
    }

    /// Prepare each disk's job and start them all in one transaction: one instant for every
    /// disk (the point's, written into `done`), with the guest frozen around it when `hooks`
    /// are given (a running machine) and the machine has them. Backups first, then the
    /// fleeced disks, compared while their view holds.
    async fn start_jobs(
        &self,
        qmp: &mut Qmp,
        work: Vec<Work>,
        target: &Copy,
        prefix: &str,
        hooks: Option<&Hooks<'_>>,
        done: &mut Transferred,
    ) -> Answer<Vec<Job>> {
        let mut jobs = Vec::new();
        for w in work {
            for name in &w.stale {
                remove_bitmap(qmp, &w.disk, name).await;
            }
            match self.prepare(qmp, &w, target, prefix).await {
                Ok(job) => jobs.push(job),
                Err(e) => {
                    abandon(qmp, &jobs).await;
                    return Err(e);
                }
            }
        }
        jobs.sort_by_key(|j| j.fleece.is_some());
        let frozen = match hooks {
            Some(hooks) => hooks.freeze().await,
            None => false,
        };
        let actions: Vec<Value> = jobs.iter().flat_map(|j| j.actions.clone()).collect();
        let started = qmp.execute("transaction", json!({ "actions": actions })).await;
        done.at = SystemTime::now();
        if let Some(hooks) = hooks {
            hooks.thaw().await;
        }
        if let Err(e) = started {
            abandon(qmp, &jobs).await;
            return Err(e);
        }
        done.app_consistent = frozen;
        Ok(jobs)
    }

    /// How each disk will reach the target, the bitmap generation it adds and the target's
    /// bitmaps that no longer describe it.
    async fn plan_work(
        &self,
        disks: &[(String, PathBuf)],
        running: bool,
        access: &mut Option<Access>,
        target: &Copy,
        full: bool,
        prefix: &str,
    ) -> Answer<Vec<Work>> {
        let mut work = Vec::new();
        for (disk, image) in disks {
            let size = self.img.size(image).await?;
            let bitmaps = match (running, access.as_mut()) {
                (true, Some(open)) => qmp_bitmaps(&mut open.qmp, disk).await?,
                _ => self.img.bitmaps(image).await?,
            };
            let strategy = strategy(target, disk, &bitmaps, prefix, full);
            eprintln!("transfer of {disk} to {}: {strategy:?}", target.site);
            let next =
                format!("{prefix}{}", bitmaps.iter().filter_map(|(n, _)| generation(n, prefix)).max().unwrap_or(0) + 1);
            let stale: Vec<String> = bitmaps
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| n.starts_with(prefix) && Some(generation(n, prefix)) != Some(strategy.generation()))
                .collect();
            work.push(Work { disk: disk.clone(), image: image.clone(), size, strategy, next, stale });
        }
        Ok(work)
    }

    /// Wait for a backup job; a full copy's new image replaces the head. Returns the bytes
    /// of guest data moved.
    async fn finish_backup(&self, qmp: &mut Qmp, job: &Job, target: &Copy, call: &Call) -> Answer<u64> {
        let outcome = wait_job(qmp, &job.job, call).await;
        let _ = qmp.execute("blockdev-del", json!({ "node-name": job.node })).await;
        let copied = outcome?;
        let w = &job.work;
        Ok(match w.strategy {
            Strategy::Full => {
                let (incoming, head) = (target.disk(&w.disk, "@incoming"), target.disk(&w.disk, ""));
                std::fs::rename(&incoming, &head).map_err(|e| io("cannot replace", &head, e))?;
                // Guest data only: the zeroes of a new disk are not data.
                self.img.own_bytes(&head).await?
            }
            _ => copied,
        })
    }

    /// A running disk with no bitmap that describes the target (an unplanned failover's old
    /// copy, a VM that was killed): the fleece node shows the disk as it was at the
    /// transaction while the guest goes on writing; exported over NBD, it is compared with
    /// the target's head and only the clusters that differ are written there.
    async fn compare_live(
        &self,
        qmp: &mut Qmp,
        job: &Job,
        exports: &Exports,
        target: &Copy,
        progress: &Progress,
        call: &Call,
    ) -> Answer<u64> {
        let w = &job.work;
        let backing = exports.add(qmp, &job.node, &w.disk).await?;
        let seen = |percent| progress.comparing(call, w, percent);
        let moved = until_cancelled(call, self.copy_changes(&backing, "raw", &target.disk(&w.disk, ""), seen)).await;
        exports.remove(qmp, &w.disk).await;
        leftover(qmp, &job.job, &job.node).await;
        if let Some(fleece) = &job.fleece {
            let _ = std::fs::remove_file(fleece);
        }
        moved
    }

    /// A backup job of one disk into the target (its head, a new image for a full copy, or
    /// for a compare a fleece node: copy-before-write on the source's disk, frozen at the
    /// transaction), its target node added, and the transaction actions that start it and
    /// add bitmap `next`.
    async fn prepare(&self, qmp: &mut Qmp, w: &Work, target: &Copy, prefix: &str) -> Answer<Job> {
        let (job, node) = (format!("drplan-{}", w.disk), format!("t-{}", w.disk));
        leftover(qmp, &job, &node).await;
        let (target_node, mut data, fleece) = match w.strategy {
            Strategy::Incremental(g) => (
                writable_target(&node, &target.disk(&w.disk, "")),
                json!({ "sync": "bitmap", "bitmap": format!("{prefix}{g}"), "bitmap-mode": "never" }),
                None,
            ),
            Strategy::Full => {
                let incoming = target.disk(&w.disk, "@incoming");
                let _ = std::fs::remove_file(&incoming);
                self.img.create(&incoming, w.size).await?;
                (writable_target(&node, &incoming), json!({ "sync": "full" }), None)
            }
            Strategy::Compare => {
                let fleece = w.image.with_file_name(format!("{}@fleece.qcow2", w.disk));
                let _ = std::fs::remove_file(&fleece);
                self.img.create(&fleece, w.size).await?;
                let mut fleece_node = node_json(&node, &fleece);
                fleece_node["backing"] = json!(format!("d-{}", w.disk));
                (fleece_node, json!({ "sync": "none" }), Some(fleece))
            }
        };
        qmp.execute("blockdev-add", target_node).await?;
        data["device"] = json!(format!("d-{}", w.disk));
        data["target"] = json!(node);
        data["job-id"] = json!(job);
        let actions = vec![
            json!({ "type": "block-dirty-bitmap-add", "data": { "node": format!("d-{}", w.disk), "name": w.next, "persistent": true } }),
            json!({ "type": "blockdev-backup", "data": data }),
        ];
        Ok(Job { work: w.clone(), job, node, actions, fleece })
    }

    /// Only the clusters where the source (`backing`, in `format`) and the head differ: an
    /// overlay on the source, rebased onto the head, holds exactly those; committed into the
    /// head, they make it equal. Returns the bytes written into the head.
    async fn copy_changes(&self, backing: &str, format: &str, head: &Path, seen: impl Fn(f64)) -> Answer<u64> {
        let delta = head.with_file_name(format!(
            "{}@delta.qcow2",
            head.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        let _ = std::fs::remove_file(&delta);
        self.img.overlay_named(&delta, backing, format).await?;
        let size = self.img.size(&delta).await?;
        if self.img.size(head).await? < size {
            self.img.resize(head, size).await?;
        }
        self.img.rebase_reporting(&delta, head, seen).await?;
        let moved = self.img.own_bytes(&delta).await?;
        if moved > 0 {
            self.img.commit(&delta).await?;
        }
        std::fs::remove_file(&delta).map_err(|e| io("cannot remove", &delta, e))?;
        Ok(moved)
    }

    /// The head becomes recovery point N and a new empty head is layered on it.
    pub async fn freeze(&self, copy: &mut Copy, keep: usize, data: &Transferred) -> Answer<u64> {
        let id = copy.state().points.iter().map(|p| p.id).max().unwrap_or(0) + 1;
        for disk in copy.disks()? {
            let (head, frozen) = (copy.disk(&disk, ""), copy.disk(&disk, &format!("@p{id}")));
            std::fs::rename(&head, &frozen).map_err(|e| io("cannot freeze", &head, e))?;
            self.img.overlay(&head, &frozen).await?;
        }
        copy.state_mut().points.push(Point { id, time: data.at, app_consistent: data.app_consistent });
        copy.save()?;
        self.retain(copy, keep).await?;
        Ok(id)
    }

    /// Keep `keep` points: the oldest is merged into the next. Not while a drill runs: its
    /// copy reads the chain that a merge rewrites. The next point's clusters go down into the
    /// oldest (a few MiB, not the whole base), and the merged file takes the next point's
    /// name, by which the images above it name their backing file.
    pub async fn retain(&self, copy: &mut Copy, keep: usize) -> Answer<()> {
        self.finish_merges(copy).await?;
        while copy.state().points.len() > keep.max(1) && copy.state().drills.is_empty() {
            // Dropped from the record first: a crash below leaves an unlisted file that the
            // next retain finishes merging, never a listed point with another point's data.
            copy.state_mut().points.remove(0);
            copy.save()?;
            self.finish_merges(copy).await?;
        }
        Ok(())
    }

    /// Merge every point file older than the first listed point into the first one.
    async fn finish_merges(&self, copy: &Copy) -> Answer<()> {
        let Some(first) = copy.state().points.first().map(|p| p.id) else { return Ok(()) };
        for disk in copy.disks()? {
            let newer = copy.disk(&disk, &format!("@p{first}"));
            if !newer.exists() {
                continue; // a disk the machine got after its first point
            }
            // At most one older file can back the first point: the one a merge left.
            for old_id in (1..first).rev() {
                let old = copy.disk(&disk, &format!("@p{old_id}"));
                if !old.exists() {
                    continue;
                }
                let backing = self.img.info(&newer).await?.backing_filename;
                if backing.as_deref().and_then(|b| Path::new(b).file_name()) == old.file_name() {
                    // Committing again after a crash writes the same clusters: harmless.
                    self.img.commit_keep(&newer).await?;
                    std::fs::rename(&old, &newer).map_err(|e| io("cannot replace", &newer, e))?;
                } else {
                    // A full copy started the newer point afresh: the old one backs nothing.
                    std::fs::remove_file(&old).map_err(|e| io("cannot remove", &old, e))?;
                }
                break;
            }
        }
        Ok(())
    }

    /// Each disk standalone (its chain pulled into the head, which keeps its bitmaps), then
    /// no points kept except drills'. A running VM's disks are streamed live, through QMP.
    pub async fn flatten(&self, copy: &mut Copy, running: Option<PathBuf>) -> Answer<()> {
        match running {
            Some(socket) => {
                let mut qmp = Qmp::connect_within(&socket, Duration::from_secs(5)).await?;
                for disk in copy.disks()? {
                    let job = format!("stream-{disk}");
                    qmp.execute("block-stream", json!({ "job-id": job, "device": format!("d-{disk}") })).await?;
                    wait_job(&mut qmp, &job, &Call::detached("flatten")).await?;
                }
            }
            None => {
                for disk in copy.disks()? {
                    self.img.standalone(&copy.disk(&disk, "")).await?;
                }
            }
        }
        let used: Vec<u64> = copy.state().drills.values().map(|d| d.point).collect();
        let gone: Vec<u64> = copy.state().points.iter().map(|p| p.id).filter(|id| !used.contains(id)).collect();
        for disk in copy.disks()? {
            for id in &gone {
                let _ = std::fs::remove_file(copy.disk(&disk, &format!("@p{id}")));
            }
        }
        copy.state_mut().points.retain(|p| used.contains(&p.id));
        Ok(())
    }

    /// The head becomes an empty overlay on `point` (`None`: on the newest).
    pub async fn head_on(&self, copy: &Copy, point: Option<u64>) -> Answer<()> {
        let Some(point) = point.or(copy.newest_point()) else { return Ok(()) };
        for disk in copy.disks()? {
            let head = copy.disk(&disk, "");
            std::fs::remove_file(&head).map_err(|e| io("cannot remove", &head, e))?;
            self.img.overlay(&head, &copy.disk(&disk, &format!("@p{point}"))).await?;
        }
        Ok(())
    }
}

fn strategy(target: &Copy, disk: &str, bitmaps: &[(String, bool)], prefix: &str, full: bool) -> Strategy {
    if full || !target.disk(disk, "").exists() {
        return Strategy::Full;
    }
    if let Some(g) = target.state.as_ref().and_then(|s| s.bitmaps.get(disk)) {
        let name = format!("{prefix}{g}");
        if bitmaps.iter().any(|(n, usable)| *n == name && *usable) {
            return Strategy::Incremental(*g);
        }
    }
    Strategy::Compare
}

impl Strategy {
    /// The bitmap generation the transfer reads from.
    fn generation(self) -> Option<u64> {
        match self {
            Strategy::Incremental(g) => Some(g),
            _ => None,
        }
    }
}

/// The target now equals the source as of bitmap `next`'s creation.
fn record(target: &mut Copy, disk: &str, next: &str, prefix: &str) -> Answer<()> {
    if let Some(g) = generation(next, prefix) {
        target.state_mut().bitmaps.insert(disk.to_string(), g);
    }
    target.save()
}

fn generation(name: &str, prefix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.parse().ok()
}

async fn qmp_bitmaps(qmp: &mut Qmp, disk: &str) -> Answer<Vec<(String, bool)>> {
    let nodes = qmp.execute("query-named-block-nodes", json!({ "flat": true })).await?;
    let node = format!("d-{disk}");
    let Some(found) = nodes.as_array().into_iter().flatten().find(|n| n["node-name"] == node.as_str()) else {
        return Err(failed(format!("the VM has no disk `{disk}` open")));
    };
    Ok(found["dirty-bitmaps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            let usable = !b["inconsistent"].as_bool().unwrap_or(false) && !b["busy"].as_bool().unwrap_or(false);
            Some((b["name"].as_str()?.to_string(), usable))
        })
        .collect())
}

async fn remove_bitmap(qmp: &mut Qmp, disk: &str, name: &str) {
    let _ = qmp.execute("block-dirty-bitmap-remove", json!({ "node": format!("d-{disk}"), "name": name })).await;
}

/// Cancel prepared or started jobs and remove what they added (a failed transfer).
async fn abandon(qmp: &mut Qmp, jobs: &[Job]) {
    for job in jobs {
        leftover(qmp, &job.job, &job.node).await;
        remove_bitmap(qmp, &job.work.disk, &job.work.next).await;
        if let Some(fleece) = &job.fleece {
            let _ = std::fs::remove_file(fleece);
        }
    }
}

/// `work`, unless drplan cancels the call first (a compare reads whole disks: minutes for
/// large ones). Dropped, it kills the `qemu-img` it runs.
async fn until_cancelled<T>(call: &Call, work: impl std::future::Future<Output = Answer<T>>) -> Answer<T> {
    tokio::select! {
        done = work => done,
        () = call.token().cancelled() => Err(cancelled()),
    }
}

/// A backup target node: zeroes the source reads become zero clusters, not data.
fn writable_target(node: &str, image: &Path) -> Value {
    let mut target = node_json(node, image);
    target["detect-zeroes"] = json!("unmap");
    target["discard"] = json!("unmap");
    target
}

/// The transfer's progress over all disks.
struct Progress {
    scanned: u64,
    total: u64,
}

impl Progress {
    /// A compare of `w`'s disk got `percent` through it.
    fn comparing(&self, call: &Call, w: &Work, percent: f64) {
        let within = (w.size as f64 * percent.clamp(0.0, 100.0) / 100.0) as u64;
        call.progress(Some(self.scanned + within), Some(self.total), Some(format!("comparing disk {}", w.disk)));
    }

    fn disk_done(&mut self, call: &Call, disk: &str, size: u64, moved: u64) {
        self.scanned += size;
        call.progress(
            Some(self.scanned),
            Some(self.total),
            Some(format!("disk {disk} done, {moved} bytes moved so far")),
        );
    }
}

/// The running VM's NBD server, on a socket in the machine's folder: it exports fleece
/// nodes, read-only, to `qemu-img` for a compare.
struct Exports {
    socket: PathBuf,
}

impl Exports {
    async fn start(&self, qmp: &mut Qmp) -> Answer<()> {
        let path = self.socket.to_string_lossy();
        qmp.execute("nbd-server-start", json!({ "addr": { "type": "unix", "data": { "path": path } } })).await?;
        Ok(())
    }

    /// Export `node` as `name`; returns it as a backing file name `qemu-img` opens.
    async fn add(&self, qmp: &mut Qmp, node: &str, name: &str) -> Answer<String> {
        qmp.execute(
            "block-export-add",
            json!({ "type": "nbd", "id": format!("x-{name}"), "node-name": node, "name": name, "writable": false }),
        )
        .await?;
        // A json: name, not a URI: the socket's path needs no escaping. The export is the
        // protocol layer under the raw format `qemu-img` is told of.
        let spec =
            json!({ "file": { "driver": "nbd", "export": name, "server": { "type": "unix", "path": self.socket } } });
        Ok(format!("json:{spec}"))
    }

    /// Remove the export once its reader is gone (its node can be deleted after that).
    async fn remove(&self, qmp: &mut Qmp, name: &str) {
        let id = format!("x-{name}");
        if qmp.execute("block-export-del", json!({ "id": id })).await.is_ok() {
            let _ = qmp
                .event(Duration::from_secs(30), |e| {
                    e["event"] == "BLOCK_EXPORT_DELETED" && e["data"]["id"] == id.as_str()
                })
                .await;
        }
    }

    async fn stop(&self, qmp: &mut Qmp) {
        let _ = qmp.execute("nbd-server-stop", json!({})).await;
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A job or target node an interrupted transfer left in a running VM.
async fn leftover(qmp: &mut Qmp, job: &str, node: &str) {
    let jobs = qmp.execute("query-block-jobs", json!({})).await.unwrap_or(Value::Null);
    if jobs.as_array().into_iter().flatten().any(|j| j["device"] == job) {
        let _ = qmp.execute("block-job-cancel", json!({ "device": job, "force": true })).await;
        let _ = qmp
            .event(Duration::from_secs(30), |e| {
                e["data"]["device"] == job
                    && matches!(e["event"].as_str(), Some("BLOCK_JOB_CANCELLED" | "BLOCK_JOB_COMPLETED"))
            })
            .await;
    }
    let _ = qmp.execute("blockdev-del", json!({ "node-name": node })).await;
}

/// Wait for the job, reporting its progress; cancel it when drplan asks.
async fn wait_job(qmp: &mut Qmp, job: &str, call: &Call) -> Answer<u64> {
    let done = |e: &Value| {
        e["data"]["device"] == job && matches!(e["event"].as_str(), Some("BLOCK_JOB_COMPLETED" | "BLOCK_JOB_CANCELLED"))
    };
    let mut cancelling = false;
    loop {
        if let Some(event) = qmp.event(Duration::from_millis(500), done).await? {
            if event["event"] == "BLOCK_JOB_CANCELLED" || cancelling {
                return Err(cancelled());
            }
            if let Some(error) = event["data"]["error"].as_str() {
                return Err(failed(format!("the backup job of {job} failed: {error}")));
            }
            return Ok(event["data"]["len"].as_u64().unwrap_or(0));
        }
        if call.is_cancelled() && !cancelling {
            cancelling = true;
            let _ = qmp.execute("block-job-cancel", json!({ "device": job, "force": true })).await;
            continue;
        }
        let jobs = qmp.execute("query-jobs", json!({})).await?;
        if let Some(j) = jobs.as_array().into_iter().flatten().find(|j| j["id"] == job) {
            let (done, total) = (j["current-progress"].as_u64(), j["total-progress"].as_u64());
            call.progress(done, total, Some(format!("backup of {job}")));
        }
    }
}

/// The machine's description (`hardware`, as read from `from`), boot files and freeze/thaw
/// programs go with its disks (small; copied when they differ, permissions included).
fn copy_hardware(hardware: &Hardware, from: &Path, to: &Path) -> Answer<()> {
    std::fs::create_dir_all(to).map_err(|e| io("cannot create", to, e))?;
    for name in hardware.travelling_files(from) {
        copy_when_different(&crate::vm::inside(from, &name)?, &crate::vm::inside(to, &name)?)?;
    }
    crate::kvm::carry(from, to);
    Ok(())
}
