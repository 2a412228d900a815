//! A site's `max_parallel` across runs: slots that every runner using the same state
//! database shares, whatever plan it applies. Within one run the engine's own semaphore
//! holds the limit; a backend that several runners share adds these slots on top.

use std::future::Future;
use std::pin::Pin;

use super::StateError;

/// An answer from the backend, awaited without blocking a thread.
pub type SlotFuture<T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send>>;

/// Numbered slots per site (0 to the limit − 1), shared by every run that uses the backend.
/// A runner that dies gives its slots back with its session.
pub trait SiteSlots: Send + Sync {
    /// Take one of the `limit` slots of `site` when one is free now; which one, if any.
    fn try_take(&self, site: &str, limit: usize) -> SlotFuture<Option<u32>>;
    /// Give back a slot this runner took. Does not wait: a later `try_take` of this runner
    /// is answered after the slot is back.
    fn give_back(&self, site: &str, slot: u32);
}
