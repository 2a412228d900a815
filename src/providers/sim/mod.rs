//! The `sim` provider: a simulated datacenter kept in a file.

pub mod generate;
