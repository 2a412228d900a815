//! drplan: disaster recovery as code.
//!
//! Data flows one way through the layers:
//! `spec` -> `validate` -> `graph` -> `state` -> `diff` -> `planner` -> `exec` -> `providers`,
//! with `report` rendering results and `cli` wiring commands to them.

pub mod cli;
pub mod compare;
pub mod contract;
pub mod diff;
pub mod exec;
pub mod graph;
pub mod interop;
pub mod lab;
pub mod os;
pub mod planner;
pub mod providers;
pub mod readiness;
pub mod report;
pub mod runs;
pub mod spec;
pub mod state;
pub mod validate;
