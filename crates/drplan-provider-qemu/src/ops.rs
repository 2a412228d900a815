//! The operations of the semantics table on QEMU machines.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use drplan_plugin::Call;
use drplan_protocol::{DataLoss, NicAssignment, OpOutcome, ProviderOp, SyncMode};

use crate::copy::{Copy, CopyState, Drill, Role};
use crate::errors::{Answer, failed, failed_hint, not_found, verification};
use crate::estate::{Config, safe_name, since};
use crate::timings::Timings;
use crate::vm::{Hardware, Instance};

/// How long a drill's copy may take to print its ready line (test copies have no boot
/// timeout of their own in the protocol).
const TEST_COPY_BOOT: Duration = Duration::from_secs(300);

fn outcome(summary: String) -> OpOutcome {
    OpOutcome { summary, ..Default::default() }
}

fn done(summary: String) -> OpOutcome {
    OpOutcome { summary, already_done: true, ..Default::default() }
}

fn vm(copy: &Copy, machine: &str) -> Instance {
    Instance::vm(&copy.dir, format!("{machine}@{}", copy.site))
}

impl Config {
    pub async fn execute(&self, call: &Call, op: &ProviderOp) -> Answer<OpOutcome> {
        match op {
            ProviderOp::EnableProtection { machine, from, to } => self.enable_protection(call, machine, from, to).await,
            ProviderOp::TakePoint { machine, from, to } => self.take_point(call, machine, from, to).await,
            ProviderOp::Shutdown { machine, site, timeout } => self.shutdown(machine, site, *timeout).await,
            ProviderOp::Start { machine, site, nics, timeout } => self.start(machine, site, nics, *timeout).await,
            ProviderOp::Sync { machine, from, to, mode, final_sync } => {
                self.sync(call, machine, from, to, *mode, *final_sync).await
            }
            ProviderOp::Failover { machine, from, to, point, prefer_synced, nics } => {
                self.failover(machine, from, to, *point, *prefer_synced, nics).await
            }
            ProviderOp::Commit { machine, site } => self.commit(machine, site).await,
            ProviderOp::ChangePoint { machine, site, point } => self.change_point(machine, site, *point).await,
            ProviderOp::Revert { machine, from, to } => self.revert(machine, from, to).await,
            ProviderOp::Reprotect { machine, from, to } => self.reprotect(call, machine, from, to).await,
            ProviderOp::CreateTestCopy { machine, site, point, nics, drill } => {
                self.create_test_copy(machine, site, *point, nics, drill).await
            }
            ProviderOp::RemoveTestCopy { machine, site, drill } => self.remove_test_copy(machine, site, drill).await,
        }
    }

    /// The copy is a consistent replica of `source` under protection.
    fn replicates(target: &Copy, source: &str) -> bool {
        target.state.as_ref().is_some_and(|s| s.protected && s.from.as_deref() == Some(source) && s.consistent)
    }

    /// Make the target a new protected replica of `source` (keeping its replication records:
    /// they say which of the source's bitmaps still describe it), replicate into it and
    /// record its first point.
    async fn protect(&self, call: &Call, machine: &str, source: &Copy, target: &mut Copy) -> Answer<(u64, u64)> {
        let bitmaps = target.state.as_ref().map(|s| s.bitmaps.clone()).unwrap_or_default();
        let replica = CopyState::replica_of(&source.site, source.state().generation);
        target.state = Some(CopyState { protected: true, bitmaps, ..replica });
        let data = self.mover_for(machine).transfer(source, target, false, call).await?;
        let point = self.mover().freeze(target, self.keep_points, &data).await?;
        Ok((data.moved, point))
    }

    async fn enable_protection(&self, call: &Call, machine: &str, from: &str, to: &str) -> Answer<OpOutcome> {
        self.need(&[from, to])?;
        let source = self.live(machine, from)?;
        let mut target = self.copy(machine, to)?;
        if Self::replicates(&target, from) {
            return Ok(done(format!("{machine} already replicates {from} → {to}")));
        }
        if target.role() == Some(Role::Live) {
            return Err(failed(format!("`{machine}` is live at `{to}`; it cannot be a replica there")));
        }
        let (moved, point) = self.protect(call, machine, &source, &mut target).await?;
        Ok(OpOutcome {
            bytes_transferred: Some(moved),
            point: Some(point),
            ..outcome(format!("replicated {moved} bytes {from} → {to}; point {point}"))
        })
    }

    async fn take_point(&self, call: &Call, machine: &str, from: &str, to: &str) -> Answer<OpOutcome> {
        self.need(&[from, to])?;
        let source = self.live(machine, from)?;
        let mut target = self.replica(machine, to, from)?;
        let data = self.mover_for(machine).transfer(&source, &mut target, false, call).await?;
        let point = self.mover().freeze(&mut target, self.keep_points, &data).await?;
        let kind = if data.app_consistent { "app-consistent" } else { "crash-consistent" };
        Ok(OpOutcome {
            bytes_transferred: Some(data.moved),
            point: Some(point),
            ..outcome(format!("point {point} ({kind}): {} bytes of changed blocks", data.moved))
        })
    }

    async fn shutdown(&self, machine: &str, site: &str, timeout: Duration) -> Answer<OpOutcome> {
        self.need(&[site])?;
        let mut copy = self.copy(machine, site)?;
        if !copy.exists() {
            return Err(not_found(machine, site));
        }
        let vm = vm(&copy, machine);
        if !vm.running().await {
            return Ok(done(format!("{machine} is already off at {site}")));
        }
        let began = Instant::now();
        let clean = vm.stop(timeout).await?;
        Timings::shutdown(&copy.dir, began.elapsed())?;
        if let Some(state) = copy.state.as_mut().filter(|s| s.boot_mark.is_some()) {
            // Its boot is over: a VM started later, by anyone, is waited for afresh.
            state.boot_mark = None;
            copy.save()?;
        }
        let how = if clean { "ACPI power-down" } else { "hard stop: the guest ignored ACPI power-down" };
        Ok(outcome(format!("{machine} shut down at {site} ({how})")))
    }

    async fn start(&self, machine: &str, site: &str, nics: &[NicAssignment], timeout: Duration) -> Answer<OpOutcome> {
        self.need(&[site])?;
        let mut copy = self.live(machine, site)?;
        let vm = vm(&copy, machine);
        let hardware = Hardware::read(&copy.dir)?;
        if vm.running().await {
            if let (Some(line), Some(mark)) = (&hardware.ready_line, copy.state().boot_mark) {
                vm.wait_ready(line, mark, timeout).await?;
                return Ok(done(format!("{machine} already runs at {site}, and its guest is up")));
            }
            return Ok(done(format!("{machine} already runs at {site}")));
        }
        // No NICs in the call: the machine stays where it is and keeps the ones it had, or
        // at its home those of its description.
        let nics = match (nics, &copy.state().nics) {
            (given, _) if !given.is_empty() => given.to_vec(),
            (_, kept) if !kept.is_empty() => kept.clone(),
            _ => hardware.nics.clone(),
        };
        let (mark, began) = (vm.console_mark(), Instant::now());
        let accel = vm.start(&self.qemu, &hardware, &copy.heads()?, &nics).await?;
        copy.state_mut().nics = nics;
        copy.state_mut().boot_mark = Some(mark);
        copy.save()?;
        eprintln!("{machine}@{site}: QEMU runs it with {accel}");
        let summary = match &hardware.ready_line {
            Some(line) => {
                let took = vm.wait_ready(line, mark, timeout).await?;
                format!("{machine} started at {site} ({accel}); guest up after {:.1}s", took.as_secs_f64())
            }
            None => format!("{machine} started at {site} ({accel})"),
        };
        Timings::boot(&copy.dir, began.elapsed())?;
        Ok(outcome(summary))
    }

    async fn sync(
        &self,
        call: &Call,
        machine: &str,
        from: &str,
        to: &str,
        mode: SyncMode,
        final_sync: bool,
    ) -> Answer<OpOutcome> {
        self.need(&[from, to])?;
        let source = self.live(machine, from)?;
        if final_sync && vm(&source, machine).running().await {
            return Err(failed_hint(format!("a final sync needs `{machine}` off at `{from}`"), "shut it down first"));
        }
        let mut target = self.copy(machine, to)?;
        match target.state.as_mut() {
            // A site that never had the machine (alternate location): a copy, not yet protected.
            None => target.state = Some(CopyState::replica_of(from, source.state().generation)),
            Some(state) if state.role != Role::Replica || state.from.as_deref() != Some(from) => {
                if self.active(machine)?.as_deref() == Some(to) {
                    return Err(failed(format!("`{machine}` is live at `{to}`")));
                }
                state.role = Role::Replica;
                state.from = Some(from.into());
            }
            Some(_) => {}
        }
        let moved = self.mover_for(machine).transfer(&source, &mut target, mode == SyncMode::Full, call).await?.moved;
        let mode_name = if mode == SyncMode::Full { "full" } else { "delta" };
        if moved == 0 && mode != SyncMode::Full {
            return Ok(done(format!("{to} already holds {machine}'s data")));
        }
        Ok(OpOutcome {
            bytes_transferred: Some(moved),
            ..outcome(format!("synced {moved} bytes {from} → {to} ({mode_name})"))
        })
    }

    async fn failover(
        &self,
        machine: &str,
        from: &str,
        to: &str,
        point: Option<u64>,
        prefer_synced: bool,
        nics: &[NicAssignment],
    ) -> Answer<OpOutcome> {
        self.need(&[to])?;
        let target = self.copy(machine, to)?;
        if let Some(state) = &target.state
            && state.role == Role::Live
            && state.failed_over_from.as_deref() == Some(from)
            && self.active(machine)?.as_deref() == Some(to)
        {
            return Ok(done(format!("{machine} is already live at {to}")));
        }
        let mut target = self.replica(machine, to, from)?;
        if !target.state().consistent {
            return Err(verification(
                format!("the copy at `{to}` is inconsistent (a transfer was interrupted)"),
                "sync again before failing over",
            ));
        }
        let source = if self.reachable(from)? { Some(self.copy(machine, from)?) } else { None };
        let synced = match point.is_none() || prefer_synced {
            true => Some(self.synced(machine, source.as_ref(), &target).await?),
            false => None,
        };
        let lossless = matches!(synced, Some(Ok(())));
        if point.is_none()
            && let Some(Err(why)) = &synced
        {
            return Err(failed_hint(
                format!("the copy at `{to}` is behind `{from}`: {why}"),
                "shut the machine down and sync it (final) first, or fail over from a point",
            ));
        }
        let mut loss = DataLoss::default();
        let point = if lossless { None } else { point };
        if let Some(id) = point {
            let chosen = target.point(id)?.time;
            self.mover().head_on(&target, Some(id)).await?;
            let until = match (&source, &target.state().last_sync) {
                (None, Some(last)) => last.time,
                _ => SystemTime::now(),
            };
            loss.time = since(chosen, until);
        }
        let generation = target
            .state()
            .source_generation
            .max(source.as_ref().and_then(|s| s.state.as_ref()).map_or(0, |s| s.generation))
            + 1;
        let tracked = match lossless {
            true => self.track_since_failover(&target, source.as_ref()).await?,
            false => Default::default(),
        };
        let state = target.state_mut();
        state.role = Role::Live;
        state.generation = generation;
        state.nics = nics.to_vec();
        state.commit_pending = true;
        state.failed_over_at = Some(SystemTime::now());
        state.failed_over_from = Some(from.into());
        state.point = point;
        state.consistent = true;
        state.protected = false;
        state.bitmaps.clear();
        target.save()?;
        if let Some(mut source) = source.filter(|s| s.exists()) {
            let stale = source.state_mut();
            stale.role = Role::Stale;
            stale.bitmaps = tracked;
            source.save()?;
        }
        let what = point.map_or("the final sync".to_string(), |p| format!("point {p}"));
        Ok(OpOutcome {
            point,
            data_loss: Some(loss),
            ..outcome(format!("{machine} failed over {from} → {to} from {what}"))
        })
    }

    /// After a lossless failover the old copy equals the new live one: a bitmap on the new
    /// one's disks from now on lets reprotect move only what the VM writes at its new site.
    /// Returns the old copy's replication records.
    async fn track_since_failover(&self, target: &Copy, source: Option<&Copy>) -> Answer<BTreeMap<String, u64>> {
        let mut records = BTreeMap::new();
        let Some(source) = source.filter(|s| s.exists()) else { return Ok(records) };
        let name = format!("drplan.{}.1", source.site);
        for (disk, image) in target.heads()? {
            for (existing, _) in self.img.bitmaps(&image).await? {
                if existing.starts_with("drplan.") {
                    self.img.remove_bitmap(&image, &existing).await?;
                }
            }
            self.img.add_bitmap(&image, &name).await?;
            records.insert(disk, 1);
        }
        Ok(records)
    }

    /// Whether the target holds exactly the source's last data, or why not.
    async fn synced(&self, machine: &str, source: Option<&Copy>, target: &Copy) -> Answer<Result<(), String>> {
        let final_sync = target.state().last_sync.as_ref().is_some_and(|l| l.final_sync);
        let Some(source) = source.filter(|s| s.exists()) else {
            return Ok(if final_sync { Ok(()) } else { Err("the source is dark and no final sync completed".into()) });
        };
        if vm(source, machine).running().await {
            return Ok(Err("the source still runs".into()));
        }
        if !final_sync {
            return Ok(Err("no final sync since it was shut down".into()));
        }
        if self.verify {
            for (disk, image) in source.heads()? {
                let head = target.disk(&disk, "");
                if !head.exists() || !self.img.same(&image, &head).await? {
                    return Ok(Err(format!("disk {disk} differs")));
                }
            }
        }
        Ok(Ok(()))
    }

    async fn commit(&self, machine: &str, site: &str) -> Answer<OpOutcome> {
        self.need(&[site])?;
        let mut copy = self.live(machine, site)?;
        if !copy.state().commit_pending {
            return Ok(done(format!("nothing to commit for {machine} at {site}")));
        }
        let vm = vm(&copy, machine);
        let running = vm.running().await.then(|| vm.socket());
        self.mover().flatten(&mut copy, running).await?;
        let state = copy.state_mut();
        state.commit_pending = false;
        state.failed_over_at = None;
        copy.save()?;
        Ok(outcome(format!("committed {machine} at {site}")))
    }

    async fn change_point(&self, machine: &str, site: &str, point: u64) -> Answer<OpOutcome> {
        self.need(&[site])?;
        let mut copy = self.live(machine, site)?;
        if !copy.state().commit_pending {
            return Err(failed(format!("the failover of `{machine}` is committed; its points are gone")));
        }
        if copy.state().point == Some(point) {
            return Ok(OpOutcome { point: Some(point), ..done(format!("{machine} already holds point {point}")) });
        }
        if vm(&copy, machine).running().await {
            return Err(failed_hint(
                format!("`{machine}` must be off at `{site}` to change its point"),
                "shut it down first",
            ));
        }
        let chosen = copy.point(point)?.time;
        self.mover().head_on(&copy, Some(point)).await?;
        let failed_over_at = copy.state().failed_over_at.unwrap_or_else(SystemTime::now);
        copy.state_mut().point = Some(point);
        copy.save()?;
        Ok(OpOutcome {
            point: Some(point),
            data_loss: Some(DataLoss { time: since(chosen, failed_over_at), bytes: None }),
            ..outcome(format!("{machine} now holds point {point}"))
        })
    }

    async fn revert(&self, machine: &str, from: &str, to: &str) -> Answer<OpOutcome> {
        self.need(&[from, to])?;
        let mut old = self.copy(machine, to)?;
        let current = self.copy(machine, from)?;
        let pending = current.state.as_ref().is_some_and(|s| s.commit_pending);
        if self.active(machine)?.as_deref() == Some(to) && !pending {
            return Ok(done(format!("{machine} is live at {to} again")));
        }
        let mut current = self.live(machine, from)?;
        let state = current.state().clone();
        if !state.commit_pending || state.failed_over_from.as_deref() != Some(to) {
            return Err(failed(format!("`{machine}` has no failover from `{to}` to undo")));
        }
        // What the failed-over VM wrote is discarded: stop it first.
        vm(&current, machine).stop(Duration::from_secs(30)).await?;
        let old_state = old.state_mut();
        old_state.role = Role::Live;
        old_state.generation = state.generation + 1;
        old.save()?;
        self.mover().head_on(&current, None).await?;
        current.state = Some(CopyState {
            protected: true,
            points: state.points.clone(),
            ..CopyState::replica_of(to, state.generation + 1)
        });
        current.save()?;
        Ok(outcome(format!("{machine} is live at {to} again; the copy at {from} is a replica")))
    }

    async fn reprotect(&self, call: &Call, machine: &str, from: &str, to: &str) -> Answer<OpOutcome> {
        self.need(&[from, to])?;
        let source = self.live(machine, from)?;
        if source.state().commit_pending {
            return Err(failed_hint(format!("the failover of `{machine}` is not committed"), "commit it first"));
        }
        let mut target = self.copy(machine, to)?;
        if Self::replicates(&target, from) {
            return Ok(done(format!("{machine} already replicates {from} → {to}")));
        }
        // The old copy's disks standalone first, then the points of an older protection go:
        // this one starts its own.
        if target.exists() {
            self.mover().flatten(&mut target, None).await?;
        }
        let (moved, point) = self.protect(call, machine, &source, &mut target).await?;
        Ok(OpOutcome {
            bytes_transferred: Some(moved),
            point: Some(point),
            ..outcome(format!("reprotected {from} → {to}: {moved} bytes of changed blocks"))
        })
    }

    async fn create_test_copy(
        &self,
        machine: &str,
        site: &str,
        point: u64,
        nics: &[NicAssignment],
        drill: &str,
    ) -> Answer<OpOutcome> {
        self.need(&[site])?;
        safe_name("drill", drill)?;
        let mut copy = self.copy(machine, site)?;
        if !copy.exists() {
            return Err(not_found(machine, site));
        }
        let instance = Instance::drill(&copy.dir, drill, format!("{machine}@{site}-drill-{drill}"));
        if copy.state().drills.contains_key(drill) && instance.running().await {
            return Ok(OpOutcome {
                point: Some(point),
                ..done(format!("drill {drill} already runs its copy of {machine} at {site}"))
            });
        }
        copy.point(point)?;
        let mut disks = Vec::new();
        for disk in copy.disks()? {
            let overlay = copy.disk(&disk, &format!("@drill-{drill}"));
            if !overlay.exists() {
                self.img.overlay(&overlay, &copy.disk(&disk, &format!("@p{point}"))).await?;
            }
            disks.push((disk, overlay));
        }
        // Recorded before the VM starts: retention leaves the chain alone from now on.
        copy.state_mut().drills.insert(drill.into(), Drill { point, nics: nics.to_vec() });
        copy.save()?;
        let hardware = Hardware::read(&copy.dir)?;
        let (mark, began) = (instance.console_mark(), Instant::now());
        let accel = instance.start(&self.qemu, &hardware, &disks, nics).await?;
        if let Some(line) = &hardware.ready_line {
            instance.wait_ready(line, mark, TEST_COPY_BOOT).await?;
        }
        Timings::boot(&copy.dir, began.elapsed())?;
        Ok(OpOutcome {
            point: Some(point),
            ..outcome(format!("test copy of {machine} from point {point} runs at {site} for {drill} ({accel})"))
        })
    }

    async fn remove_test_copy(&self, machine: &str, site: &str, drill: &str) -> Answer<OpOutcome> {
        self.need(&[site])?;
        safe_name("drill", drill)?;
        let mut copy = self.copy(machine, site)?;
        if !copy.exists() || !copy.state().drills.contains_key(drill) {
            return Ok(done(format!("drill {drill} has no copy of {machine} at {site}")));
        }
        let instance = Instance::drill(&copy.dir, drill, String::new());
        instance.quit().await;
        for disk in copy.disks()? {
            let overlay = copy.disk(&disk, &format!("@drill-{drill}"));
            if overlay.exists() {
                std::fs::remove_file(&overlay).map_err(|e| crate::errors::io("cannot remove", &overlay, e))?;
            }
        }
        let _ = std::fs::remove_file(instance.console());
        copy.state_mut().drills.remove(drill);
        copy.save()?;
        self.mover().retain(&mut copy, self.keep_points).await?;
        Ok(outcome(format!("removed drill {drill}'s copy of {machine} at {site}")))
    }
}
