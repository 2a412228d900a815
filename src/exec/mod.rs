//! Executing an action plan against a provider.

mod dispatch;
pub mod engine;
pub mod journal_writer;
pub mod run_report;
pub mod script;
mod site_slot;
pub mod supervisor;
mod worker;
