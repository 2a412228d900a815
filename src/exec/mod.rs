//! Executing an action plan against a provider.

pub mod outcome;
pub mod provider;

pub use outcome::{DataLoss, OpOutcome};
pub use provider::{Provider, ProviderError, ProviderFuture};
