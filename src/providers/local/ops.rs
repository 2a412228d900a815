//! The operations of the contract on a local site, one function each. Every one is
//! idempotent: asked again for what is already in effect, it says so and changes nothing.

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::records::{self, DrillRecord, MachineRecord, Role};
use super::{Inner, done, nic_states, point_of, process, restored};
use crate::contract::{DataLoss, NicAssignment, OpOutcome, ProviderError, ProviderOp, SyncMode};
use crate::spec::time_format::{human_bytes, human_duration};

/// Who an operation is for, and how to stop it early.
#[derive(Clone, Copy)]
pub(super) struct Call<'a> {
    name: &'a str,
    dir: &'a str,
    cancel: &'a CancellationToken,
}

impl Inner {
    pub(super) fn execute(&self, op: &ProviderOp, cancel: &CancellationToken) -> Result<OpOutcome, ProviderError> {
        let name = op.machine();
        let call = Call { name, dir: self.dir(name)?, cancel };
        for layout in self.sites.values().filter(|s| s.reachable().is_ok()) {
            self.guard(layout, call.dir)?;
        }
        if let ProviderOp::CreateTestCopy { drill, .. } | ProviderOp::RemoveTestCopy { drill, .. } = op
            && !crate::os::fs::is_plain_name(drill)
        {
            return Err(ProviderError::failed(format!("drill id `{drill}` is not a plain name")));
        }
        match op {
            ProviderOp::EnableProtection { from, to, .. } => self.enable_protection(&call, from, to),
            ProviderOp::TakePoint { from, to, .. } => self.take_point(&call, from, to),
            ProviderOp::Shutdown { site, timeout, .. } => self.shutdown(&call, site, *timeout),
            ProviderOp::Start { site, nics, .. } => self.start(&call, site, nics),
            ProviderOp::Sync { from, to, mode, final_sync, .. } => self.sync(&call, from, to, *mode, *final_sync),
            ProviderOp::Failover { from, to, point, prefer_synced, nics, .. } => {
                self.failover(&call, from, to, *point, *prefer_synced, nics)
            }
            ProviderOp::Commit { site, .. } => self.commit(&call, site),
            ProviderOp::ChangePoint { site, point, .. } => self.change_point(&call, site, *point),
            ProviderOp::Revert { from, to, .. } => self.revert(&call, from, to),
            ProviderOp::Reprotect { from, to, .. } => self.reprotect(&call, from, to),
            ProviderOp::CreateTestCopy { site, point, nics, drill, .. } => {
                self.create_test_copy(&call, site, *point, nics, drill)
            }
            ProviderOp::RemoveTestCopy { site, drill, .. } => self.remove_test_copy(&call, site, drill),
        }
    }

    /// Replication `from → to` is already in place, with a consistent replica.
    fn already_replicates(&self, call: &Call, from: &str, to: &str) -> Result<Option<OpOutcome>, ProviderError> {
        let target = self.reachable_site(to)?;
        let in_place =
            self.replica(target, call.dir)?.is_some_and(|r| r.from == *from && r.consistent && !r.failed_over);
        Ok(in_place.then(|| done(format!("{} already replicates {from} → {to}", call.name))))
    }

    fn enable_protection(&self, call: &Call, from: &str, to: &str) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, cancel } = *call;
        if let Some(done) = self.already_replicates(call, from, to)? {
            return Ok(done);
        }
        let (t, point) = self.transfer(dir, from, to, SyncMode::Delta, false, cancel)?;
        Ok(OpOutcome {
            summary: format!(
                "{name}: initial replication {from} → {to}, {} copied, point {}",
                human_bytes(t.bytes_transferred),
                point.id
            ),
            bytes_transferred: Some(t.bytes_transferred),
            point: Some(point.id),
            ..OpOutcome::default()
        })
    }

    fn take_point(&self, call: &Call, from: &str, to: &str) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, cancel } = *call;
        let target = self.reachable_site(to)?;
        if !self.replica(target, dir)?.is_some_and(|r| r.from == *from && !r.failed_over) {
            return Err(ProviderError::failed(format!("{name} does not replicate {from} → {to}")));
        }
        let (t, point) = self.transfer(dir, from, to, SyncMode::Delta, false, cancel)?;
        let kind = if point.app_consistent { "app-consistent" } else { "crash-consistent" };
        Ok(OpOutcome {
            summary: format!(
                "{name}: point {} ({kind}), {} of {} transferred",
                point.id,
                human_bytes(t.bytes_transferred),
                human_bytes(t.bytes_total)
            ),
            bytes_transferred: Some(t.bytes_transferred),
            point: Some(point.id),
            ..OpOutcome::default()
        })
    }

    fn shutdown(&self, call: &Call, site: &str, timeout: Duration) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, .. } = *call;
        let layout = self.reachable_site(site)?;
        let Some(mut record) = self.record(layout, dir)? else {
            return Err(ProviderError::NotFound { machine: name.into(), site: site.to_string() });
        };
        if !Self::powered(&record) {
            if record.power {
                record.power = false;
                record.process = None;
                records::save(&layout.record_path(dir), &record)?;
            }
            return Ok(done(format!("{name} is already off at {site}")));
        }
        let stopped = match &record.process {
            Some(p) => process::stop(p, timeout).map_err(ProviderError::failed)?,
            None => process::Stopped::NotRunning,
        };
        record.power = false;
        record.process = None;
        records::save(&layout.record_path(dir), &record)?;
        let how = if stopped == process::Stopped::Killed {
            format!(" (killed: its program ignored SIGTERM for {})", human_duration(timeout))
        } else {
            String::new()
        };
        Ok(OpOutcome { summary: format!("{name} shut down at {site}{how}"), ..OpOutcome::default() })
    }

    fn start(&self, call: &Call, site: &str, nics: &[NicAssignment]) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, .. } = *call;
        let layout = self.reachable_site(site)?;
        let live = self.live_site(dir)?.map(|(s, _)| s);
        if live.as_deref() != Some(site) {
            return Err(ProviderError::failed(format!(
                "{name}: the live copy is at {}, not {site}; fail over first",
                live.unwrap_or_else(|| "no site".into())
            )));
        }
        let mut record = self.record(layout, dir)?.unwrap_or_else(|| MachineRecord::live(0));
        if Self::powered(&record) {
            return Ok(done(format!("{name} is already running at {site}")));
        }
        if !nics.is_empty() {
            record.nics = nic_states(nics);
        }
        record.process = self.start_process(layout, dir, &layout.machine_dir(dir), &record.nics, &[])?;
        record.power = true;
        records::save(&layout.record_path(dir), &record)?;
        let how = record.process.map_or_else(|| "powered on".to_string(), |p| format!("running as pid {}", p.pid));
        Ok(OpOutcome { summary: format!("{name} started at {site}, {how}"), ..OpOutcome::default() })
    }

    fn sync(
        &self,
        call: &Call,
        from: &str,
        to: &str,
        mode: SyncMode,
        final_sync: bool,
    ) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, cancel } = *call;
        let (t, point) = self.transfer(dir, from, to, mode, final_sync, cancel)?;
        let what = match mode {
            SyncMode::Delta => {
                format!("{} of {} changed", human_bytes(t.bytes_transferred), human_bytes(t.bytes_total))
            }
            SyncMode::Full => format!("full copy of {}", human_bytes(t.bytes_transferred)),
        };
        Ok(OpOutcome {
            summary: format!(
                "{name}: {}sync {from} → {to}, {what}, point {}",
                if final_sync { "final " } else { "" },
                point.id
            ),
            bytes_transferred: Some(t.bytes_transferred),
            point: Some(point.id),
            ..OpOutcome::default()
        })
    }

    fn failover(
        &self,
        call: &Call,
        from: &str,
        to: &str,
        point: Option<u64>,
        prefer_synced: bool,
        nics: &[NicAssignment],
    ) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, cancel } = *call;
        let target = self.reachable_site(to)?;
        if self.live_site(dir)?.is_some_and(|(s, _)| s == *to) {
            return Ok(done(format!("{name} already runs from {to}")));
        }
        let mut replica = self.replica(target, dir)?.filter(|r| r.from == *from).ok_or_else(|| {
            ProviderError::failed(format!("{name} has no replica of {from} at {to}; protect it first"))
        })?;
        if !replica.consistent {
            return Err(ProviderError::failed(format!(
                "{name}: the replica at {to} is inconsistent (an interrupted sync); sync it again"
            )));
        }
        let latest = replica
            .points
            .last()
            .cloned()
            .ok_or_else(|| ProviderError::failed(format!("{name} has no recovery point at {to}")))?;
        let source_off = self.sites.get(from).is_some_and(|s| s.reachable().is_ok())
            && self.record(self.site(from)?, dir)?.is_some_and(|r| !Self::powered(&r));
        // Does the newest point hold everything the (stopped) source wrote? Checked by
        // hashing the source, so "no data lost" is a measurement, not an assumption.
        let synced =
            |this: &Self| source_off && this.bytes_after(dir, from, target, &replica, &latest, cancel) == Some(0);
        let (chosen, loss) = match point {
            None => {
                if self.sites.get(from).is_some_and(|s| s.reachable().is_ok()) && !synced(self) {
                    return Err(ProviderError::failed(format!(
                        "{name}: the replica at {to} is behind {from}; the final sync must complete before a lossless failover"
                    )));
                }
                (latest.clone(), DataLoss { time: Duration::ZERO, bytes: Some(0) })
            }
            Some(_) if prefer_synced && synced(self) => {
                (latest.clone(), DataLoss { time: Duration::ZERO, bytes: Some(0) })
            }
            Some(id) => {
                let chosen = point_of(&replica, id, name)?;
                // What the source wrote after the point, when it can still be read.
                let time = SystemTime::now().duration_since(chosen.time).unwrap_or_default();
                let bytes = self.bytes_after(dir, from, target, &replica, &chosen, cancel);
                (chosen, DataLoss { time, bytes })
            }
        };
        let verified = self.materialize(target, dir, &replica, &chosen, &target.disks_dir(dir), cancel)?;
        let epoch = replica.source_epoch + 1;
        records::save(
            &target.record_path(dir),
            &MachineRecord {
                role: Role::Live,
                epoch,
                power: false,
                process: None,
                nics: nic_states(nics),
                commit_pending: true,
                failed_over_from: Some(from.to_string()),
                failed_over_at: Some(SystemTime::now()),
                holds_point: Some(chosen.id),
            },
        )?;
        replica.failed_over = true;
        records::save(&target.replica_state(dir), &replica)?;
        if let Ok(source) = self.reachable_site(from)
            && let Some(mut old) = self.record(source, dir)?
        {
            old.role = Role::Stale;
            records::save(&source.record_path(dir), &old)?;
        }
        let summary = format!("{name} failed over {from} → {to} from point {}", chosen.id);
        Ok(OpOutcome { data_loss: Some(loss), ..restored(summary, chosen.id, verified) })
    }

    fn commit(&self, call: &Call, site: &str) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, .. } = *call;
        let layout = self.reachable_site(site)?;
        let Some(mut record) = self.record(layout, dir)? else {
            return Err(ProviderError::NotFound { machine: name.into(), site: site.to_string() });
        };
        if !record.commit_pending {
            return Ok(done(format!("{name}: nothing to commit at {site}")));
        }
        // The replica it ran from is spent: its points only served a rollback.
        let _ = std::fs::remove_dir_all(layout.replica_dir(dir));
        record.commit_pending = false;
        record.failed_over_from = None;
        record.failed_over_at = None;
        record.holds_point = None;
        records::save(&layout.record_path(dir), &record)?;
        Ok(OpOutcome { summary: format!("{name}: failover committed at {site}"), ..OpOutcome::default() })
    }

    fn change_point(&self, call: &Call, site: &str, point: u64) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, cancel } = *call;
        let layout = self.reachable_site(site)?;
        let record = self
            .record(layout, dir)?
            .filter(|r| r.commit_pending)
            .ok_or_else(|| ProviderError::failed(format!("{name} has no uncommitted failover at {site}")))?;
        if Self::powered(&record) {
            return Err(ProviderError::failed(format!("{name} is running at {site}; shut it down first")));
        }
        let replica =
            self.replica(layout, dir)?.ok_or_else(|| ProviderError::failed(format!("{name}: no replica at {site}")))?;
        if record.holds_point == Some(point) {
            return Ok(done(format!("{name} at {site} already holds point {point}")));
        }
        let chosen = point_of(&replica, point, name)?;
        let verified = self.materialize(layout, dir, &replica, &chosen, &layout.disks_dir(dir), cancel)?;
        let mut record = record;
        record.holds_point = Some(point);
        records::save(&layout.record_path(dir), &record)?;
        // The loss counts from the failover: what the old source held then (it has not been
        // written since) and this point lacks.
        let data_loss = record.failed_over_at.map(|at| DataLoss {
            time: at.duration_since(chosen.time).unwrap_or_default(),
            bytes: record
                .failed_over_from
                .as_deref()
                .and_then(|from| self.bytes_after(dir, from, layout, &replica, &chosen, cancel)),
        });
        let summary = format!("{name} at {site} now holds point {point}");
        Ok(OpOutcome { data_loss, ..restored(summary, point, verified) })
    }

    fn revert(&self, call: &Call, from: &str, to: &str) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, .. } = *call;
        let failed_over = self.reachable_site(from)?;
        let back = self.reachable_site(to)?;
        let Some(mut record) = self.record(failed_over, dir)?.filter(|r| r.commit_pending) else {
            return Ok(done(format!("{name} has no uncommitted failover at {from}")));
        };
        if Self::powered(&record) {
            return Err(ProviderError::failed(format!("{name} is running at {from}; shut it down first")));
        }
        let mut old =
            self.record(back, dir)?.ok_or_else(|| ProviderError::failed(format!("{name} has no copy at {to}")))?;
        old.role = Role::Live;
        old.epoch = record.epoch + 1;
        old.power = false;
        old.process = None;
        records::save(&back.record_path(dir), &old)?;
        record.role = Role::Stale;
        record.commit_pending = false;
        records::save(&failed_over.record_path(dir), &record)?;
        // The replica was copied from, never written: replication simply resumes.
        if let Some(mut replica) = self.replica(failed_over, dir)? {
            replica.failed_over = false;
            replica.source_epoch = old.epoch;
            records::save(&failed_over.replica_state(dir), &replica)?;
        }
        let _ = std::fs::remove_dir_all(failed_over.disks_dir(dir));
        Ok(OpOutcome {
            summary: format!("{name}: failover to {from} undone; {to} is live again"),
            ..OpOutcome::default()
        })
    }

    fn reprotect(&self, call: &Call, from: &str, to: &str) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, cancel } = *call;
        if let Some(done) = self.already_replicates(call, from, to)? {
            return Ok(done);
        }
        let target = self.reachable_site(to)?;
        // An old copy whose disks were removed runs nothing unless its program still does.
        let has_disks = super::layout::disks_in(&target.disks_dir(dir)).is_ok_and(|d| !d.is_empty());
        if let Some(old) = self.record(target, dir)?
            && old.role == Role::Stale
            && Self::powered(&old)
            && (has_disks || old.process.is_some())
        {
            return Err(ProviderError::failed(format!(
                "{name}: the old copy at {to} is running; shut it down before reprotecting"
            )));
        }
        // The old copy becomes the replica's starting point: only what differs moves.
        let current = target.replica_current(dir);
        let old_disks = target.disks_dir(dir);
        if old_disks.is_dir() && !current.is_dir() {
            let _ = std::fs::remove_dir_all(target.replica_dir(dir));
            crate::os::fs::create_private_dir(&target.replica_dir(dir))
                .map_err(|e| ProviderError::failed(e.to_string()))?;
            std::fs::rename(&old_disks, &current)
                .map_err(|e| ProviderError::failed(format!("cannot reuse {}: {e}", old_disks.display())))?;
        }
        let (t, point) = self.transfer(dir, from, to, SyncMode::Delta, false, cancel)?;
        let _ = std::fs::remove_file(target.record_path(dir));
        Ok(OpOutcome {
            summary: format!(
                "{name}: reverse replication {from} → {to}, {} of {} moved, point {}",
                human_bytes(t.bytes_transferred),
                human_bytes(t.bytes_total),
                point.id
            ),
            bytes_transferred: Some(t.bytes_transferred),
            point: Some(point.id),
            ..OpOutcome::default()
        })
    }

    fn create_test_copy(
        &self,
        call: &Call,
        site: &str,
        point: u64,
        nics: &[NicAssignment],
        drill: &str,
    ) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, cancel } = *call;
        let layout = self.reachable_site(site)?;
        if records::load::<DrillRecord>(&layout.drill_record(drill, dir))?.is_some() {
            return Ok(done(format!("{name}: test copy for drill {drill} exists at {site}")));
        }
        let replica = self
            .replica(layout, dir)?
            .filter(|r| r.consistent)
            .ok_or_else(|| ProviderError::failed(format!("{name} has no consistent replica at {site}")))?;
        let chosen = point_of(&replica, point, name)?;
        let copy_dir = layout.drill_dir(drill, dir);
        let verified = self.materialize(layout, dir, &replica, &chosen, &copy_dir.join("disks"), cancel)?;
        let nics = nic_states(nics);
        let process = self.start_process(layout, dir, &copy_dir, &nics, &[("DRPLAN_DRILL", drill)])?;
        records::save(
            &layout.drill_record(drill, dir),
            &DrillRecord { point, power: true, process, nics, created_at: Some(SystemTime::now()) },
        )?;
        Ok(restored(format!("{name}: test copy from point {point} running at {site}"), point, verified))
    }

    fn remove_test_copy(&self, call: &Call, site: &str, drill: &str) -> Result<OpOutcome, ProviderError> {
        let Call { name, dir, .. } = *call;
        let layout = self.reachable_site(site)?;
        let record = records::load::<DrillRecord>(&layout.drill_record(drill, dir))?;
        let copy_dir = layout.drill_dir(drill, dir);
        if record.is_none() && !copy_dir.exists() {
            return Ok(done(format!("{name}: no test copy of drill {drill} at {site}")));
        }
        if let Some(p) = record.as_ref().and_then(|r| r.process.as_ref()) {
            process::stop(p, Duration::from_secs(30)).map_err(ProviderError::failed)?;
        }
        let _ = std::fs::remove_dir_all(&copy_dir);
        let _ = std::fs::remove_file(layout.drill_record(drill, dir));
        let drill_root = layout.drills_root().join(drill);
        if std::fs::read_dir(&drill_root).is_ok_and(|mut d| d.next().is_none()) {
            let _ = std::fs::remove_dir(&drill_root);
        }
        Ok(OpOutcome {
            summary: format!("{name}: test copy of drill {drill} removed from {site}"),
            ..OpOutcome::default()
        })
    }
}
