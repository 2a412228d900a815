//! The provider contract: everything the engine and a platform say to each other, in one
//! place. The planner builds [`ProviderOp`]s, the executor hands them to a [`Provider`], the
//! provider answers with an [`OpOutcome`] or a [`ProviderError`], and [`Inventory`] is what it
//! sees. The data types live in the `drplan-protocol` crate because out-of-process providers
//! (plugins) exchange exactly these as JSON; this module adds the traits and the error type,
//! and writes down the rules. The contract suite checks any provider against them.
//!
//! # The rules every provider follows
//!
//! **One provider serves all sites of a plan**: replication and failover always involve two.
//!
//! **Idempotent operations.** Every operation may be asked for again: after a crash the engine
//! does not know whether a started call took effect. Asking for something already in effect
//! succeeds with `already_done: true` and changes nothing. "In effect" per operation:
//!
//! | operation | does | already done when |
//! |---|---|---|
//! | `enable-protection {from,to}` | copy every block of the live copy at `from` to a replica at `to`, record the first recovery point | the machine already replicates `from → to` with a consistent replica |
//! | `take-point {from,to}` | move what changed since the last point, record a new point | never: each call is a new point |
//! | `shutdown {site}` | stop the copy at `site` (graceful, then forced after `timeout`) | it is off |
//! | `start {site,nics}` | start the live copy at `site` on the given networks | it runs |
//! | `sync {from,to,mode,final_sync}` | bring the copy at `to` up to the live data at `from`; `final_sync` requires `from` to be off; `full` copies everything without hashing | `to` already holds exactly the live data |
//! | `failover {from,to,point}` | make the copy at `to` the live one, from `point`, or (no point) from exactly the data synced last, refusing if that is behind the source; does not start it; the failover is then *commit pending* | the machine is already live at `to` |
//! | `commit {site}` | drop the recovery points kept for changing the point | nothing is pending |
//! | `change-point {site,point}` | before commit, put another point in place (the copy is off) | it already holds that point |
//! | `revert {from,to}` | before commit, make the untouched old copy at `to` live again | it is live at `to` with nothing pending |
//! | `reprotect {from,to}` | replicate from the live copy at `from` back to `to`, moving only the delta against the old copy there | it already replicates `from → to` |
//! | `create-test-copy {site,point,drill}` | a copy of `point`, started on drill networks only; the replica and production are never written | that drill's copy exists at `site` |
//! | `remove-test-copy {site,drill}` | stop and delete the drill's copy | there is none |
//!
//! **Data operations leave no half state.** A transfer into a copy marks it inconsistent
//! before it writes and consistent only once complete; an interrupted transfer (cancelled,
//! timed out, crashed) leaves it inconsistent, inventory says so (`consistent: false`,
//! replication health `inconsistent`), a failover from it is refused, and the next transfer
//! redoes it. The other copy is never written by a transfer into this one.
//!
//! **Errors say what kind they are.** [`ProviderError::Throttled`] is *transient*: the engine
//! retries it with backoff. [`ProviderError::Unreachable`] means a site is dark: a planned
//! operation stops, an unplanned failover does not need the source. Everything else fails the
//! step; [`ProviderError::Verification`] means the data at the target does not match what it
//! must hold, and the target was not started.
//!
//! **A dark site** is reported in inventory (`reachable: false`), never as a failed inventory:
//! the other site's copies and points stay visible so an unplanned failover can be planned.

pub mod suite;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use miette::Diagnostic;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

pub use drplan_protocol::{
    Capabilities, Claimant, Consistency, DataLoss, Directions, DiskInfo, ForeignClaim, Inventory, MachineCopy,
    MachineInventory, NicAssignment, NicState, OpKind, OpOutcome, Power, ProviderOp, RecoveryPoint, Replication,
    ReplicationHealth, SiteInventory, SmallMap, SyncMode, TestCopy,
};

use crate::spec::{Direction, ProviderKind};

/// How far a running operation has got, as the provider reports it (a plugin's `$/progress`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpProgress {
    pub bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    pub message: Option<String>,
}

/// Where a running operation reports its progress (the live display, the log).
pub type ProgressSink = std::sync::Arc<dyn Fn(OpProgress) + Send + Sync>;

pub type ProviderFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// What the planner needs to know about a platform: what it supports (checked when a plan is
/// made) and how long its operations take (for the RTO estimate).
pub trait Platform {
    fn capabilities(&self) -> Capabilities;
    fn estimate(&self, op: &ProviderOp) -> Duration;
}

/// A platform the engine drives: sim, local, a plugin, anything that follows the rules above.
pub trait Provider: Platform + Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// The machines of the plan as the platform sees them now.
    fn inventory(&self) -> ProviderFuture<'_, Inventory>;

    /// Whether each site of the plan can be reached now (a cheaper part of the inventory).
    fn sites(&self) -> ProviderFuture<'_, BTreeMap<String, SiteInventory>> {
        Box::pin(async move { Ok(self.inventory().await?.sites) })
    }

    /// Perform one operation. `cancel` asks a long operation to stop at a safe point (leaving
    /// a data transfer's target inconsistent).
    fn execute<'a>(&'a self, op: &'a ProviderOp, cancel: CancellationToken) -> ProviderFuture<'a, OpOutcome>;

    /// [`Provider::execute`] as step `operation` of the journal (`RUN/STEP`), the same when
    /// asked again after a crash: a plugin may use it to recognise a repeat. Progress of a
    /// long operation goes to `progress`.
    fn execute_as<'a>(
        &'a self,
        operation: &'a str,
        op: &'a ProviderOp,
        cancel: CancellationToken,
        progress: ProgressSink,
    ) -> ProviderFuture<'a, OpOutcome> {
        let _ = (operation, progress);
        self.execute(op, cancel)
    }

    /// Persist anything buffered (called at the end of a run).
    fn flush(&self) -> ProviderFuture<'_, ()>;

    /// Other plans' claims on this plan's machines: a plan reports them, and its apply is
    /// refused while they last. A provider that cannot record owners reports none.
    fn claims<'a>(&'a self, me: &'a Claimant) -> ProviderFuture<'a, Vec<ForeignClaim>> {
        let _ = me;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Make `me` the owner of this plan's machines (and let go of those it owned and the plan
    /// no longer has) before anything changes them; refuse, changing nothing, when another
    /// plan owns one. Called at the start of every run, so that two plans never drive one
    /// machine. Unreachable places are skipped: a failover must not wait for a dark site.
    fn claim<'a>(&'a self, me: &'a Claimant) -> ProviderFuture<'a, ()> {
        let _ = me;
        Box::pin(async { Ok(()) })
    }
}

/// Whether a support-matrix entry allows `direction`.
pub fn allows(directions: Directions, direction: Direction) -> bool {
    match direction {
        Direction::Forward => directions.forward,
        Direction::Back => directions.back,
    }
}

#[derive(Debug, Clone, Error, Diagnostic)]
pub enum ProviderError {
    #[error("{message}")]
    #[diagnostic(code(drplan::provider_setup), help("{help}"))]
    Setup { message: String, help: String },

    #[error("site `{site}` is unreachable: {reason}")]
    #[diagnostic(
        code(drplan::site_unreachable),
        help("a planned operation needs both sites; when the source site is down, fail over with `via: unplanned`")
    )]
    Unreachable { site: String, reason: String },

    #[error("{message}")]
    #[diagnostic(code(drplan::provider_failed))]
    Failed { message: String },

    #[error("throttled by the platform; retry after {}", crate::spec::time_format::human_duration(*retry_after))]
    #[diagnostic(code(drplan::throttled))]
    Throttled { retry_after: Duration },

    #[error("timed out after {}", crate::spec::time_format::human_duration(*after))]
    #[diagnostic(code(drplan::step_timeout))]
    TimedOut { after: Duration },

    #[error("machine `{machine}` not found at site `{site}`")]
    #[diagnostic(code(drplan::machine_not_found))]
    NotFound { machine: String, site: String },

    #[error("checksum verification failed: {message}")]
    #[diagnostic(
        code(drplan::verification_failed),
        help("the target does not hold the expected data; it was not started")
    )]
    Verification { message: String },

    #[error("cancelled")]
    #[diagnostic(code(drplan::cancelled))]
    Cancelled,
}

impl ProviderError {
    /// Worth retrying with backoff.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Throttled { .. })
    }

    pub fn failed(message: impl Into<String>) -> Self {
        ProviderError::Failed { message: message.into() }
    }

    pub fn setup(message: impl Into<String>, help: impl Into<String>) -> Self {
        ProviderError::Setup { message: message.into(), help: help.into() }
    }
}
