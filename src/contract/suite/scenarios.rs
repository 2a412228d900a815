//! The scenarios of the contract suite. Each runs on a fresh estate and stops at the first
//! rule broken, saying which.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{ALTERNATE, BoxFuture, Estate, PRIMARY, RECOVERY};
use crate::contract::{
    Inventory, MachineInventory, OpOutcome, Power, ProviderError, ProviderOp, ReplicationHealth, SyncMode,
};

pub(super) struct Scenario {
    pub name: &'static str,
    pub checks: &'static str,
    pub machines: usize,
    pub run: for<'a> fn(&'a dyn Estate) -> BoxFuture<'a, Result<(), String>>,
}

pub(super) const ALL: &[Scenario] = &[
    Scenario {
        name: "protect",
        checks: "initial replication, a first point, and asking again is a no-op",
        machines: 2,
        run: protect,
    },
    Scenario { name: "take-point", checks: "each point is new and newer", machines: 1, run: take_point },
    Scenario { name: "power", checks: "start and shutdown, each idempotent", machines: 1, run: power },
    Scenario {
        name: "lossless-needs-final-sync",
        checks: "a failover without a point is refused while the replica is behind",
        machines: 1,
        run: lossless_needs_final_sync,
    },
    Scenario {
        name: "planned-failover",
        checks: "shutdown, final sync, failover, commit, reprotect: no byte lost, each idempotent",
        machines: 2,
        run: planned_failover,
    },
    Scenario {
        name: "unplanned-from-point",
        checks: "with the source dark, fail over to exactly the chosen point and report the loss",
        machines: 1,
        run: unplanned_from_point,
    },
    Scenario {
        name: "interrupted-transfer",
        checks: "a cancelled sync leaves its target inconsistent (or untouched), refused, then redone",
        machines: 1,
        run: interrupted_transfer,
    },
    Scenario {
        name: "dark-site",
        checks: "inventory reports a dark site; operations needing it fail as unreachable",
        machines: 1,
        run: dark_site,
    },
    Scenario {
        name: "drill",
        checks: "a test copy of a point; replica and production untouched; removal idempotent",
        machines: 1,
        run: drill,
    },
    Scenario {
        name: "change-point-and-revert",
        checks: "before commit, move to another point, then undo the failover",
        machines: 1,
        run: change_point_and_revert,
    },
    Scenario {
        name: "failback-delta",
        checks: "sync while running, then the final delta: back home with no byte lost",
        machines: 1,
        run: failback_delta,
    },
    Scenario { name: "failback-full", checks: "a full copy back home: no byte lost", machines: 1, run: failback_full },
    Scenario {
        name: "alternate-location",
        checks: "fail back to a third site that had no copy",
        machines: 1,
        run: alternate_location,
    },
];

macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(format!($($msg)*));
        }
    };
}

fn describe(op: &ProviderOp) -> String {
    format!("{} {}", op.kind().as_str(), op.machine())
}

async fn exec(e: &dyn Estate, op: ProviderOp) -> Result<OpOutcome, String> {
    e.provider().execute(&op, CancellationToken::new()).await.map_err(|err| format!("{}: {err}", describe(&op)))
}

/// The operation must fail; returns how.
async fn refused(e: &dyn Estate, op: ProviderOp) -> Result<ProviderError, String> {
    match e.provider().execute(&op, CancellationToken::new()).await {
        Ok(outcome) => Err(format!("{} should have been refused, but it reported: {}", describe(&op), outcome.summary)),
        Err(err) => Ok(err),
    }
}

/// Asking again for what is in effect succeeds and says it was already done.
async fn again(e: &dyn Estate, op: ProviderOp) -> Result<(), String> {
    let what = describe(&op);
    let outcome = exec(e, op).await?;
    ensure!(outcome.already_done, "{what} asked again must report already_done (it said: {})", outcome.summary);
    Ok(())
}

async fn inventory(e: &dyn Estate) -> Result<Inventory, String> {
    e.provider().inventory().await.map_err(|err| format!("inventory: {err}"))
}

async fn machine(e: &dyn Estate, name: &str) -> Result<MachineInventory, String> {
    inventory(e).await?.machines.get(name).cloned().ok_or_else(|| format!("inventory has no machine `{name}`"))
}

fn m(i: usize) -> String {
    format!("m{i}")
}

fn enable(name: &str, from: &str, to: &str) -> ProviderOp {
    ProviderOp::EnableProtection { machine: name.into(), from: from.into(), to: to.into() }
}

fn take(name: &str, from: &str, to: &str) -> ProviderOp {
    ProviderOp::TakePoint { machine: name.into(), from: from.into(), to: to.into() }
}

fn start(name: &str, site: &str) -> ProviderOp {
    ProviderOp::Start { machine: name.into(), site: site.into(), nics: Vec::new(), timeout: Duration::from_secs(60) }
}

/// A short power-down timeout: a test estate's machines may have no guest OS to honour it, and
/// the hard stop after the timeout is part of the contract.
fn shutdown(name: &str, site: &str) -> ProviderOp {
    ProviderOp::Shutdown { machine: name.into(), site: site.into(), timeout: Duration::from_secs(5) }
}

fn sync(name: &str, from: &str, to: &str, mode: SyncMode, final_sync: bool) -> ProviderOp {
    ProviderOp::Sync { machine: name.into(), from: from.into(), to: to.into(), mode, final_sync }
}

fn failover(name: &str, from: &str, to: &str, point: Option<u64>) -> ProviderOp {
    ProviderOp::Failover {
        machine: name.into(),
        from: from.into(),
        to: to.into(),
        point,
        prefer_synced: false,
        nics: Vec::new(),
    }
}

fn commit(name: &str, site: &str) -> ProviderOp {
    ProviderOp::Commit { machine: name.into(), site: site.into() }
}

fn reprotect(name: &str, from: &str, to: &str) -> ProviderOp {
    ProviderOp::Reprotect { machine: name.into(), from: from.into(), to: to.into() }
}

/// Protect a machine from the primary and check what inventory says about it.
async fn protected(e: &dyn Estate, name: &str) -> Result<(), String> {
    exec(e, start(name, PRIMARY)).await?;
    exec(e, enable(name, PRIMARY, RECOVERY)).await?;
    let inv = machine(e, name).await?;
    let r = inv.replication.as_ref().ok_or("after enable-protection, inventory shows no replication")?;
    ensure!(r.from == PRIMARY && r.to == RECOVERY, "replication is {} → {}, not {PRIMARY} → {RECOVERY}", r.from, r.to);
    ensure!(r.health == ReplicationHealth::Healthy, "replication is {:?} right after protection", r.health);
    ensure!(!inv.points.is_empty(), "protection recorded no recovery point");
    Ok(())
}

/// Fail over with no byte lost and commit: the machine is live at the recovery site.
async fn failed_over(e: &dyn Estate, name: &str) -> Result<(), String> {
    protected(e, name).await?;
    e.write(name).await?;
    exec(e, shutdown(name, PRIMARY)).await?;
    exec(e, sync(name, PRIMARY, RECOVERY, SyncMode::Delta, true)).await?;
    exec(e, failover(name, PRIMARY, RECOVERY, None)).await?;
    exec(e, start(name, RECOVERY)).await?;
    exec(e, commit(name, RECOVERY)).await?;
    Ok(())
}

fn protect(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        for i in 1..=2 {
            protected(e, &m(i)).await?;
            again(e, enable(&m(i), PRIMARY, RECOVERY)).await?;
        }
        let inv = machine(e, "m1").await?;
        ensure!(inv.active_site.as_deref() == Some(PRIMARY), "m1 should still be live at {PRIMARY}");
        let replica = inv.copies.get(RECOVERY).ok_or("no copy at the recovery site after protection")?;
        ensure!(replica.consistent, "the replica is not consistent after protection");
        Ok(())
    })
}

fn take_point(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        protected(e, "m1").await?;
        let before = machine(e, "m1").await?.points;
        e.write("m1").await?;
        let outcome = exec(e, take("m1", PRIMARY, RECOVERY)).await?;
        let after = machine(e, "m1").await?.points;
        let newest = after.last().ok_or("no points after take-point")?;
        ensure!(
            before.last().is_none_or(|p| newest.id > p.id && newest.time >= p.time),
            "the new point ({}) is not newer than the last one",
            newest.id
        );
        ensure!(outcome.point.is_none_or(|p| p == newest.id), "take-point reported point {:?}", outcome.point);
        ensure!(!outcome.already_done, "a new point is never already done");
        Ok(())
    })
}

fn power(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        exec(e, start("m1", PRIMARY)).await?;
        again(e, start("m1", PRIMARY)).await?;
        exec(e, shutdown("m1", PRIMARY)).await?;
        ensure!(machine(e, "m1").await?.power_at(PRIMARY) == Some(Power::Off), "m1 is not off after shutdown");
        again(e, shutdown("m1", PRIMARY)).await?;
        exec(e, start("m1", PRIMARY)).await?;
        ensure!(machine(e, "m1").await?.power_at(PRIMARY) == Some(Power::On), "m1 is not on after start");
        Ok(())
    })
}

fn lossless_needs_final_sync(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        protected(e, "m1").await?;
        e.write("m1").await?;
        exec(e, shutdown("m1", PRIMARY)).await?;
        refused(e, failover("m1", PRIMARY, RECOVERY, None)).await?;
        ensure!(
            machine(e, "m1").await?.active_site.as_deref() == Some(PRIMARY),
            "a refused failover must leave the machine where it was"
        );
        exec(e, sync("m1", PRIMARY, RECOVERY, SyncMode::Delta, true)).await?;
        let at_shutdown = e.content("m1", PRIMARY).await?;
        exec(e, failover("m1", PRIMARY, RECOVERY, None)).await?;
        ensure!(e.content("m1", RECOVERY).await? == at_shutdown, "the failed-over copy differs from the source");
        Ok(())
    })
}

fn planned_failover(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        for i in 1..=2 {
            let name = m(i);
            protected(e, &name).await?;
            e.write(&name).await?;
            exec(e, shutdown(&name, PRIMARY)).await?;
            exec(e, sync(&name, PRIMARY, RECOVERY, SyncMode::Delta, true)).await?;
            let at_shutdown = e.content(&name, PRIMARY).await?;
            let outcome = exec(e, failover(&name, PRIMARY, RECOVERY, None)).await?;
            if let Some(loss) = outcome.data_loss {
                ensure!(loss.bytes.unwrap_or(0) == 0, "a lossless failover reported {loss:?} lost");
            }
            again(e, failover(&name, PRIMARY, RECOVERY, None)).await?;
            ensure!(
                e.content(&name, RECOVERY).await? == at_shutdown,
                "{name}: the recovery copy differs from the source"
            );
            let inv = machine(e, &name).await?;
            ensure!(inv.active_site.as_deref() == Some(RECOVERY), "{name} is not live at {RECOVERY}");
            ensure!(inv.commit_pending, "{name}: a failover is pending commit until committed");
            exec(e, start(&name, RECOVERY)).await?;
            exec(e, commit(&name, RECOVERY)).await?;
            again(e, commit(&name, RECOVERY)).await?;
            ensure!(!machine(e, &name).await?.commit_pending, "{name}: still pending after commit");
            exec(e, reprotect(&name, RECOVERY, PRIMARY)).await?;
            again(e, reprotect(&name, RECOVERY, PRIMARY)).await?;
            let r = machine(e, &name).await?.replication.ok_or("no replication after reprotect")?;
            ensure!(r.from == RECOVERY && r.to == PRIMARY, "reverse replication is {} → {}", r.from, r.to);
        }
        Ok(())
    })
}

fn unplanned_from_point(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        protected(e, "m1").await?;
        e.write("m1").await?;
        exec(e, take("m1", PRIMARY, RECOVERY)).await?;
        let at_point = e.content("m1", PRIMARY).await?;
        let point = machine(e, "m1").await?.points.last().map(|p| p.id).ok_or("no point")?;
        e.write("m1").await?;
        e.set_reachable(PRIMARY, false).await?;
        let inv = inventory(e).await?;
        ensure!(inv.sites.get(PRIMARY).is_some_and(|s| !s.reachable), "inventory does not report {PRIMARY} as dark");
        let m1 = inv.machines.get("m1").ok_or("no m1")?;
        ensure!(m1.points.iter().any(|p| p.id == point), "point {point} is not visible with the source dark");
        let outcome = exec(e, failover("m1", PRIMARY, RECOVERY, Some(point))).await?;
        ensure!(outcome.data_loss.is_some(), "an unplanned failover must report its data loss");
        ensure!(e.content("m1", RECOVERY).await? == at_point, "the failed-over copy is not exactly point {point}");
        ensure!(machine(e, "m1").await?.active_site.as_deref() == Some(RECOVERY), "m1 is not live at {RECOVERY}");
        exec(e, start("m1", RECOVERY)).await?;
        e.set_reachable(PRIMARY, true).await?;
        Ok(())
    })
}

fn interrupted_transfer(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        protected(e, "m1").await?;
        let replica_before = e.content("m1", RECOVERY).await?;
        e.write("m1").await?;
        let cancel = CancellationToken::new();
        cancel.cancel();
        let op = sync("m1", PRIMARY, RECOVERY, SyncMode::Delta, false);
        let result = e.provider().execute(&op, cancel).await;
        ensure!(result.is_err(), "a sync cancelled before it began reported success");
        let inv = machine(e, "m1").await?;
        let consistent = inv.copies.get(RECOVERY).is_some_and(|c| c.consistent);
        if consistent {
            ensure!(
                e.content("m1", RECOVERY).await? == replica_before,
                "the replica says it is consistent but was changed by the interrupted sync"
            );
        } else {
            ensure!(
                inv.replication.as_ref().is_some_and(|r| r.health == ReplicationHealth::Inconsistent),
                "an inconsistent replica must make replication health `inconsistent`"
            );
            let point = inv.points.last().map(|p| p.id);
            refused(e, failover("m1", PRIMARY, RECOVERY, point)).await?;
        }
        exec(e, sync("m1", PRIMARY, RECOVERY, SyncMode::Delta, false)).await?;
        let inv = machine(e, "m1").await?;
        ensure!(inv.copies.get(RECOVERY).is_some_and(|c| c.consistent), "the sync that redid it left it inconsistent");
        Ok(())
    })
}

fn dark_site(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        protected(e, "m1").await?;
        e.set_reachable(RECOVERY, false).await?;
        let inv = inventory(e).await?;
        ensure!(inv.sites.get(RECOVERY).is_some_and(|s| !s.reachable), "inventory does not report {RECOVERY} as dark");
        ensure!(inv.machines.contains_key("m1"), "a dark site must not hide the machine");
        let err = refused(e, take("m1", PRIMARY, RECOVERY)).await?;
        ensure!(matches!(err, ProviderError::Unreachable { .. }), "an operation needing a dark site failed as: {err}");
        e.set_reachable(RECOVERY, true).await?;
        exec(e, take("m1", PRIMARY, RECOVERY)).await?;
        Ok(())
    })
}

fn drill(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        protected(e, "m1").await?;
        e.write("m1").await?;
        exec(e, take("m1", PRIMARY, RECOVERY)).await?;
        let point = machine(e, "m1").await?.points.last().map(|p| p.id).ok_or("no point")?;
        let (replica, production) = (e.content("m1", RECOVERY).await?, e.content("m1", PRIMARY).await?);
        let create = |point| ProviderOp::CreateTestCopy {
            machine: "m1".into(),
            site: RECOVERY.into(),
            point,
            nics: Vec::new(),
            drill: "drill-suite".into(),
        };
        exec(e, create(point)).await?;
        let inv = machine(e, "m1").await?;
        ensure!(
            inv.test_copies.iter().any(|t| t.drill == "drill-suite" && t.site == RECOVERY),
            "inventory does not list the test copy"
        );
        again(e, create(point)).await?;
        ensure!(e.content("m1", RECOVERY).await? == replica, "creating a test copy changed the replica");
        ensure!(e.content("m1", PRIMARY).await? == production, "creating a test copy changed production");
        let remove =
            || ProviderOp::RemoveTestCopy { machine: "m1".into(), site: RECOVERY.into(), drill: "drill-suite".into() };
        exec(e, remove()).await?;
        ensure!(machine(e, "m1").await?.test_copies.is_empty(), "the test copy is still listed after its removal");
        again(e, remove()).await?;
        ensure!(e.content("m1", RECOVERY).await? == replica, "removing the test copy changed the replica");
        Ok(())
    })
}

fn change_point_and_revert(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        protected(e, "m1").await?;
        e.write("m1").await?;
        exec(e, take("m1", PRIMARY, RECOVERY)).await?;
        let first = e.content("m1", PRIMARY).await?;
        let p1 = machine(e, "m1").await?.points.last().map(|p| p.id).ok_or("no point")?;
        e.write("m1").await?;
        exec(e, take("m1", PRIMARY, RECOVERY)).await?;
        let p2 = machine(e, "m1").await?.points.last().map(|p| p.id).ok_or("no point")?;
        exec(e, shutdown("m1", PRIMARY)).await?;
        let source = e.content("m1", PRIMARY).await?;
        exec(e, failover("m1", PRIMARY, RECOVERY, Some(p2))).await?;
        let change = ProviderOp::ChangePoint { machine: "m1".into(), site: RECOVERY.into(), point: p1 };
        let outcome = exec(e, change.clone()).await?;
        ensure!(outcome.point == Some(p1), "change-point reported point {:?}, not {p1}", outcome.point);
        ensure!(e.content("m1", RECOVERY).await? == first, "after change-point the copy is not point {p1}");
        again(e, change).await?;
        exec(e, ProviderOp::Revert { machine: "m1".into(), from: RECOVERY.into(), to: PRIMARY.into() }).await?;
        let inv = machine(e, "m1").await?;
        ensure!(inv.active_site.as_deref() == Some(PRIMARY), "after revert m1 is not live at {PRIMARY}");
        ensure!(!inv.commit_pending, "after revert nothing is pending");
        ensure!(e.content("m1", PRIMARY).await? == source, "revert changed the old source");
        Ok(())
    })
}

/// Fail back from the recovery site with `mode`, and check no byte was lost.
async fn fail_back(e: &dyn Estate, mode: SyncMode) -> Result<(), String> {
    failed_over(e, "m1").await?;
    exec(e, reprotect("m1", RECOVERY, PRIMARY)).await?;
    e.write("m1").await?;
    if mode == SyncMode::Delta {
        exec(e, sync("m1", RECOVERY, PRIMARY, SyncMode::Delta, false)).await?;
        e.write("m1").await?;
    }
    exec(e, shutdown("m1", RECOVERY)).await?;
    exec(e, sync("m1", RECOVERY, PRIMARY, mode, true)).await?;
    let at_shutdown = e.content("m1", RECOVERY).await?;
    exec(e, failover("m1", RECOVERY, PRIMARY, None)).await?;
    ensure!(e.content("m1", PRIMARY).await? == at_shutdown, "back home the data differs from the recovery copy");
    exec(e, start("m1", PRIMARY)).await?;
    exec(e, commit("m1", PRIMARY)).await?;
    exec(e, reprotect("m1", PRIMARY, RECOVERY)).await?;
    ensure!(machine(e, "m1").await?.active_site.as_deref() == Some(PRIMARY), "m1 is not live at home");
    Ok(())
}

fn failback_delta(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(fail_back(e, SyncMode::Delta))
}

fn failback_full(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(fail_back(e, SyncMode::Full))
}

fn alternate_location(e: &dyn Estate) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        failed_over(e, "m1").await?;
        e.write("m1").await?;
        exec(e, shutdown("m1", RECOVERY)).await?;
        exec(e, sync("m1", RECOVERY, ALTERNATE, SyncMode::Full, true)).await?;
        let at_shutdown = e.content("m1", RECOVERY).await?;
        exec(e, failover("m1", RECOVERY, ALTERNATE, None)).await?;
        ensure!(e.content("m1", ALTERNATE).await? == at_shutdown, "the alternate copy differs from the source");
        exec(e, start("m1", ALTERNATE)).await?;
        ensure!(machine(e, "m1").await?.active_site.as_deref() == Some(ALTERNATE), "m1 is not live at {ALTERNATE}");
        Ok(())
    })
}

/// Every scenario's name, in the order they run.
pub fn scenario_names() -> Vec<&'static str> {
    ALL.iter().map(|s| s.name).collect()
}
