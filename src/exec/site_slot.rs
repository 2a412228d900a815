//! A site's slot shared with other runs (see [`SiteSlots`]): a step at a limited site waits
//! for one after it got the run's own slot, and gives it back once its end is journalled,
//! so that the journals of all runs never show more than the limit in flight at the site.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::SiteSlots;

/// Between tries while the site's slots are all in use elsewhere.
const FIRST_WAIT: Duration = Duration::from_millis(20);
const LONGEST_WAIT: Duration = Duration::from_millis(500);

/// What a step at a limited site needs before it starts.
pub(super) struct SharedSite {
    pub(super) slots: Arc<dyn SiteSlots>,
    pub(super) site: String,
    pub(super) limit: usize,
    /// A graceful stop while waiting: the step does not start.
    pub(super) stop: CancellationToken,
}

/// A slot this step holds.
pub(super) struct HeldSlot {
    slots: Arc<dyn SiteSlots>,
    site: String,
    slot: u32,
}

pub(super) enum Wait {
    Taken(HeldSlot),
    /// The run stopped (or was aborted) before a slot was free.
    Stopped,
    Failed(String),
}

impl SharedSite {
    /// Wait for a free slot; `waiting` is called once, when the first try finds none.
    pub(super) async fn take(self, abort: &CancellationToken, waiting: impl FnOnce()) -> Wait {
        let mut waiting = Some(waiting);
        let mut pause = FIRST_WAIT;
        loop {
            match self.slots.try_take(&self.site, self.limit).await {
                Ok(Some(slot)) => return Wait::Taken(HeldSlot { slots: self.slots, site: self.site, slot }),
                Ok(None) => {}
                Err(e) => return Wait::Failed(e.to_string()),
            }
            if let Some(waiting) = waiting.take() {
                waiting();
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.stop.cancelled() => return Wait::Stopped,
                _ = abort.cancelled() => return Wait::Stopped,
            }
            pause = (pause * 2).min(LONGEST_WAIT);
        }
    }
}

impl HeldSlot {
    /// Give the slot back (after the step's end is journalled).
    pub(super) fn give_back(self) {
        self.slots.give_back(&self.site, self.slot);
    }
}
