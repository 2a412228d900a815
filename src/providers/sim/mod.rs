//! The `sim` provider: a simulated datacenter kept in a file, for rehearsals, chaos tests and
//! scale benchmarks.

pub mod fixture;
pub mod generate;
mod ops;
pub mod provider;
mod rng;
pub mod store;
pub mod world;

pub use provider::SimProvider;
pub use store::WorldStore;
pub use world::World;
