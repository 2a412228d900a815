//! Write a drplan provider in Rust.
//!
//! Implement [`Plugin`] (the protocol's methods with their parameter and result types from
//! [`drplan_protocol`]) and call [`serve_stdio`] from `main`. The loop answers calls
//! concurrently, checks the protocol version `initialize` offers, turns `$/cancelRequest`
//! into the call's [`Call::cancelled`] and sends [`Call::progress`] as `$/progress`.
//!
//! `drplan provider test -- YOUR-PLUGIN` runs the contract suite against the result.

mod call;
mod errors;
mod serve;
mod wire;

pub use call::Call;
pub use drplan_protocol as protocol;
pub use errors::{not_implemented, provider_error};
pub use serve::{Plugin, serve, serve_stdio};
pub use wire::{queue, write_lines};
