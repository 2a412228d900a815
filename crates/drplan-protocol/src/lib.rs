//! The data of the drplan provider contract: what the engine asks a provider to do
//! ([`ProviderOp`]), what the provider reports back ([`OpOutcome`]), what it sees
//! ([`Inventory`]) and what it supports ([`Capabilities`]).
//!
//! These types are the same in the engine and on the wire: an out-of-process provider (a
//! plugin) receives and returns them as JSON. The engine's own contract module documents the
//! rules each operation must follow (idempotency, which errors are transient).

pub mod capabilities;
pub mod claims;
pub mod inventory;
pub mod ops;
pub mod outcome;
pub mod rpc;
pub mod time;

pub use capabilities::{Capabilities, Directions};
pub use claims::{Claimant, ForeignClaim};
pub use inventory::*;
pub use ops::{NicAssignment, OpKind, ProviderOp, SyncMode};
pub use outcome::{DataLoss, OpOutcome};
