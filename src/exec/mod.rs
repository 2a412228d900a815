//! Executing an action plan against a provider.

pub mod engine;
pub mod journal_writer;
pub mod outcome;
pub mod provider;
pub mod run_report;
pub mod script;

pub use outcome::{DataLoss, OpOutcome};
pub use provider::{Provider, ProviderError, ProviderFuture};
