//! Rendering results for people and machines.

pub mod diagnostics;
