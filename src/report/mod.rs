//! Rendering results for people and machines.

pub mod diagnostics;
pub mod evidence;
pub mod graph;
pub mod plan;
pub mod run;
pub mod style;
