//! The operations of the contract on a simulated machine, one function each. Every one is
//! idempotent: asked again for what is already in effect, it says so and changes nothing.

use std::time::{Duration, SystemTime};

use super::provider::{did, done, fail, new_point, nic_states, refresh_copy};
use super::world::{SimFailover, SimMachine, SimReplication, SimTestCopy};
use crate::contract::{DataLoss, NicAssignment, OpOutcome, Power, ProviderError, ProviderOp, SyncMode};
use crate::spec::time_format::human_bytes;

/// Which machine an operation is for, at what simulated time.
#[derive(Clone, Copy)]
struct At<'a> {
    name: &'a str,
    now: SystemTime,
    app_every: u32,
    /// What a data operation transfers, counted when it began.
    bytes: u64,
}

/// The effect of an operation on one machine. Repeating a finished operation is a no-op.
pub(super) fn apply_op(
    m: &mut SimMachine,
    op: &ProviderOp,
    now: SystemTime,
    app_every: u32,
    bytes: u64,
) -> Result<OpOutcome, ProviderError> {
    let at = At { name: op.machine(), now, app_every, bytes };
    match op {
        ProviderOp::EnableProtection { from, to, .. } => enable_protection(m, &at, from, to),
        ProviderOp::TakePoint { from, to, .. } => take_point(m, &at, from, to),
        ProviderOp::Shutdown { site, .. } => shutdown(m, &at, site),
        ProviderOp::Start { site, nics, .. } => start(m, &at, site, nics),
        ProviderOp::Sync { from, to, mode, final_sync, .. } => sync(m, &at, from, to, *mode, *final_sync),
        ProviderOp::Failover { from, to, point, prefer_synced, nics, .. } => {
            failover(m, &at, from, to, *point, *prefer_synced, nics)
        }
        ProviderOp::Commit { site, .. } => commit(m, &at, site),
        ProviderOp::ChangePoint { site, point, .. } => change_point(m, &at, site, *point),
        ProviderOp::Revert { from, to, .. } => revert(m, &at, from, to),
        ProviderOp::Reprotect { from, to, .. } => reprotect(m, &at, from, to),
        ProviderOp::CreateTestCopy { site, point, nics, drill, .. } => {
            create_test_copy(m, &at, site, *point, nics, drill)
        }
        ProviderOp::RemoveTestCopy { site, drill, .. } => remove_test_copy(m, &at, site, drill),
    }
}

fn enable_protection(m: &mut SimMachine, at: &At, from: &str, to: &str) -> Result<OpOutcome, ProviderError> {
    let At { name, now, app_every, .. } = *at;
    if m.replication.as_ref().is_some_and(|r| r.from == from && r.to == to) {
        return Ok(done(format!("{name} already replicates {from} → {to}")));
    }
    if m.active != from {
        return Err(fail(format!("{name} runs at {}, not {from}", m.active)));
    }
    let bytes = m.disk_bytes;
    refresh_copy(m, from, to).power = Power::Off;
    m.points.clear();
    m.replication = Some(SimReplication { from: from.to_string(), to: to.to_string(), since: now, last_point: now });
    let point = new_point(m, now, app_every);
    Ok(OpOutcome {
        summary: format!("{name}: initial replication {from} → {to} ({}), point {point}", human_bytes(bytes)),
        bytes_transferred: Some(bytes),
        point: Some(point),
        ..OpOutcome::default()
    })
}

fn take_point(m: &mut SimMachine, at: &At, from: &str, to: &str) -> Result<OpOutcome, ProviderError> {
    let At { name, now, app_every, .. } = *at;
    if !m.replication.as_ref().is_some_and(|r| r.from == from && r.to == to) {
        return Err(fail(format!("{name} does not replicate {from} → {to}")));
    }
    let bytes = at.bytes;
    let point = new_point(m, now, app_every);
    if let Some(replica) = m.copies.get_mut(to) {
        replica.generation = m.written;
    }
    Ok(OpOutcome {
        summary: format!("{name}: point {point} ({} transferred)", human_bytes(bytes)),
        bytes_transferred: Some(bytes),
        point: Some(point),
        ..OpOutcome::default()
    })
}

fn shutdown(m: &mut SimMachine, at: &At, site: &str) -> Result<OpOutcome, ProviderError> {
    let At { name, .. } = *at;
    let copy = m
        .copies
        .get_mut(site)
        .ok_or_else(|| ProviderError::NotFound { machine: name.to_string(), site: site.to_string() })?;
    if copy.power == Power::Off {
        return Ok(done(format!("{name} is already off at {site}")));
    }
    copy.power = Power::Off;
    Ok(did(format!("{name} shut down at {site}")))
}

fn start(m: &mut SimMachine, at: &At, site: &str, nics: &[NicAssignment]) -> Result<OpOutcome, ProviderError> {
    let At { name, .. } = *at;
    if m.active != site {
        return Err(fail(format!("{name}: the live copy is at {}, not {site}; fail over first", m.active)));
    }
    let copy = m
        .copies
        .get_mut(site)
        .ok_or_else(|| ProviderError::NotFound { machine: name.to_string(), site: site.to_string() })?;
    if !copy.consistent {
        return Err(fail(format!("{name} at {site} is inconsistent; it must be synced before it can start")));
    }
    if copy.power == Power::On {
        return Ok(done(format!("{name} is already running at {site}")));
    }
    copy.power = Power::On;
    if !nics.is_empty() {
        copy.nics = nic_states(nics);
    }
    Ok(did(format!("{name} started at {site}")))
}

fn sync(
    m: &mut SimMachine,
    at: &At,
    from: &str,
    to: &str,
    mode: SyncMode,
    final_sync: bool,
) -> Result<OpOutcome, ProviderError> {
    let At { name, .. } = *at;
    if m.active != from {
        return Err(fail(format!("{name}: sync source {from} is not the live copy ({})", m.active)));
    }
    let source_power = m.copies.get(from).map(|c| c.power);
    if final_sync && source_power.is_some_and(Power::runs) {
        return Err(fail(format!("{name}: a final sync needs {from} shut down first")));
    }
    if m.copies.get(to).is_some_and(|c| c.consistent && c.generation == m.written) {
        return Ok(done(format!("{name}: {to} already holds the latest data")));
    }
    let bytes = at.bytes;
    let written = m.written;
    refresh_copy(m, from, to).power = Power::Off;
    let kind = match mode {
        SyncMode::Delta => "delta",
        SyncMode::Full => "full copy",
    };
    let when = if final_sync { "final " } else { "" };
    Ok(OpOutcome {
        summary: format!("{name}: {when}{kind} {from} → {to}, {}", human_bytes(bytes)),
        bytes_transferred: Some(bytes),
        verified: Some(format!("generation {written} at {to} equals {from}")),
        ..OpOutcome::default()
    })
}

fn failover(
    m: &mut SimMachine,
    at: &At,
    from: &str,
    to: &str,
    point: Option<u64>,
    prefer_synced: bool,
    nics: &[NicAssignment],
) -> Result<OpOutcome, ProviderError> {
    let At { name, now, .. } = *at;
    if m.active == to {
        return Ok(done(format!("{name} already runs from {to}")));
    }
    let copy = m.copies.get(to).ok_or_else(|| fail(format!("{name} has no copy at {to}; protect it first")))?;
    if !copy.consistent {
        return Err(fail(format!("{name} at {to} is inconsistent; sync it again before failing over")));
    }
    let synced = copy.generation == m.written;
    let point = if prefer_synced && synced { None } else { point };
    let (generation, loss, used_point) = match point {
        None => {
            if copy.generation != m.written {
                return Err(fail(format!(
                    "{name}: {to} is {} behind {from}; a final sync must come first",
                    human_bytes(m.written.abs_diff(copy.generation))
                )));
            }
            (m.written, DataLoss { time: Duration::ZERO, bytes: Some(0) }, None)
        }
        Some(id) => {
            let p =
                m.points.iter().find(|p| p.id == id).ok_or_else(|| {
                    fail(format!("{name}: recovery point {id} no longer exists (retention or commit)"))
                })?;
            let loss = DataLoss {
                time: now.duration_since(p.time).unwrap_or_default(),
                bytes: Some(m.written.saturating_sub(p.generation)),
            };
            (p.generation, loss, Some(p.id))
        }
    };
    let source_written = m.written;
    let target = m.copies.get_mut(to).expect("checked above");
    target.generation = generation;
    target.power = Power::Off;
    if !nics.is_empty() {
        target.nics = nic_states(nics);
    }
    m.active = to.to_string();
    m.written = generation;
    m.written_at = now;
    m.replication = None;
    m.commit_pending = true;
    m.failed_over = Some(SimFailover { at: now, source_written });
    let verified = match used_point {
        None => format!("generation {generation} equals {from} at shutdown"),
        Some(p) => format!("generation {generation} equals point {p}"),
    };
    let what = used_point.map_or_else(|| "latest synced data".to_string(), |p| format!("point {p}"));
    Ok(OpOutcome {
        summary: format!(
            "{name} failed over {from} → {to} from {what}{}",
            if source_written > generation {
                format!(", {} lost", human_bytes(source_written - generation))
            } else {
                String::new()
            }
        ),
        point: used_point,
        data_loss: Some(loss),
        verified: Some(verified),
        ..OpOutcome::default()
    })
}

fn commit(m: &mut SimMachine, at: &At, site: &str) -> Result<OpOutcome, ProviderError> {
    let At { name, .. } = *at;
    if !m.commit_pending {
        return Ok(done(format!("{name}: nothing to commit at {site}")));
    }
    m.commit_pending = false;
    m.failed_over = None;
    m.points.clear();
    Ok(did(format!("{name}: failover committed at {site}")))
}

fn change_point(m: &mut SimMachine, at: &At, site: &str, point: u64) -> Result<OpOutcome, ProviderError> {
    let At { name, now, .. } = *at;
    if m.active != site || !m.commit_pending {
        return Err(fail(format!("{name} has no uncommitted failover at {site}")));
    }
    if m.copies.get(site).is_some_and(|c| c.power.runs()) {
        return Err(fail(format!("{name} is running at {site}; shut it down before changing its recovery point")));
    }
    let p = m
        .points
        .iter()
        .find(|p| p.id == point)
        .cloned()
        .ok_or_else(|| fail(format!("{name}: recovery point {point} does not exist")))?;
    if m.copies.get(site).is_some_and(|c| c.generation == p.generation) && m.written == p.generation {
        return Ok(done(format!("{name} already runs from point {point}")));
    }
    if let Some(copy) = m.copies.get_mut(site) {
        copy.generation = p.generation;
    }
    m.written = p.generation;
    m.written_at = now;
    // The loss is what the source had written at the failover and this point lacks.
    let data_loss = m.failed_over.as_ref().map(|f| DataLoss {
        time: f.at.duration_since(p.time).unwrap_or_default(),
        bytes: Some(f.source_written.saturating_sub(p.generation)),
    });
    Ok(OpOutcome {
        summary: format!("{name} at {site} now holds point {point}"),
        point: Some(point),
        data_loss,
        verified: Some(format!("generation {} equals point {point}", p.generation)),
        ..OpOutcome::default()
    })
}

fn revert(m: &mut SimMachine, at: &At, from: &str, to: &str) -> Result<OpOutcome, ProviderError> {
    let At { name, now, .. } = *at;
    if m.active == to && !m.commit_pending {
        return Ok(done(format!("{name} already runs from {to}")));
    }
    if m.active != from || !m.commit_pending {
        return Err(fail(format!("{name} has no uncommitted failover to {from} to revert")));
    }
    let old = m.copies.get(to).ok_or_else(|| fail(format!("{name} has no copy at {to} to return to")))?.clone();
    if m.copies.get(from).is_some_and(|c| c.power.runs()) {
        return Err(fail(format!("{name} is running at {from}; shut it down first")));
    }
    m.active = to.to_string();
    m.written = old.generation;
    m.written_at = now;
    m.commit_pending = false;
    m.failed_over = None;
    m.points.clear();
    m.replication = None;
    if let Some(discarded) = m.copies.get_mut(from) {
        discarded.consistent = false;
    }
    Ok(did(format!("{name}: failover to {from} undone; {to} is live again")))
}

fn reprotect(m: &mut SimMachine, at: &At, from: &str, to: &str) -> Result<OpOutcome, ProviderError> {
    let At { name, now, app_every, .. } = *at;
    if m.replication.as_ref().is_some_and(|r| r.from == from && r.to == to) {
        return Ok(done(format!("{name} already replicates {from} → {to}")));
    }
    if m.active != from {
        return Err(fail(format!("{name} runs at {}, not {from}", m.active)));
    }
    if m.copies.get(to).is_some_and(|c| c.power.runs()) {
        return Err(fail(format!("{name}: the old copy at {to} is running; shut it down before reprotecting")));
    }
    let bytes = at.bytes;
    refresh_copy(m, from, to);
    m.points.clear();
    m.commit_pending = false;
    m.replication = Some(SimReplication { from: from.to_string(), to: to.to_string(), since: now, last_point: now });
    let point = new_point(m, now, app_every);
    Ok(OpOutcome {
        summary: format!("{name}: reverse replication {from} → {to} ({} delta), point {point}", human_bytes(bytes)),
        bytes_transferred: Some(bytes),
        point: Some(point),
        ..OpOutcome::default()
    })
}

fn create_test_copy(
    m: &mut SimMachine,
    at: &At,
    site: &str,
    point: u64,
    nics: &[NicAssignment],
    drill: &str,
) -> Result<OpOutcome, ProviderError> {
    let At { name, .. } = *at;
    if m.test_copies.iter().any(|t| t.drill == drill && t.site == site) {
        return Ok(done(format!("{name}: test copy for drill {drill} exists at {site}")));
    }
    if m.replication.as_ref().is_none_or(|r| r.to != site) {
        return Err(fail(format!("{name} has no replica at {site}")));
    }
    if !m.points.iter().any(|p| p.id == point) {
        return Err(fail(format!("{name}: recovery point {point} no longer exists")));
    }
    m.test_copies.push(SimTestCopy {
        site: site.to_string(),
        drill: drill.to_string(),
        point,
        nics: nic_states(nics),
        power: Power::On,
    });
    Ok(OpOutcome {
        summary: format!("{name}: test copy from point {point} running at {site}"),
        point: Some(point),
        ..OpOutcome::default()
    })
}

fn remove_test_copy(m: &mut SimMachine, at: &At, site: &str, drill: &str) -> Result<OpOutcome, ProviderError> {
    let At { name, .. } = *at;
    let before = m.test_copies.len();
    m.test_copies.retain(|t| !(t.drill == drill && t.site == site));
    if m.test_copies.len() == before {
        return Ok(done(format!("{name}: no test copy of drill {drill} at {site}")));
    }
    Ok(did(format!("{name}: test copy of drill {drill} removed from {site}")))
}
