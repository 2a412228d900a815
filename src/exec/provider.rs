//! The contract between the executor and the platforms it drives.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use miette::Diagnostic;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use super::outcome::OpOutcome;
use crate::planner::{Platform, ProviderOp};
use crate::spec::ProviderKind;
use crate::state::Inventory;

pub type ProviderFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// A platform: sim, local, or anything behind the same contract. One instance serves all
/// the sites of a plan, since failover and replication always involve two of them.
pub trait Provider: Platform + Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// The machines of the plan as the platform sees them now.
    fn inventory(&self) -> ProviderFuture<'_, Inventory>;

    /// Perform one operation. Operations are idempotent: asking for something already done
    /// returns `already_done`. `cancel` asks a long operation to stop at a safe point.
    fn execute<'a>(&'a self, op: &'a ProviderOp, cancel: CancellationToken) -> ProviderFuture<'a, OpOutcome>;

    /// Persist anything buffered (called at the end of a run).
    fn flush(&self) -> ProviderFuture<'_, ()>;
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
