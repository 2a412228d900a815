//! One call in flight: its cancellation and its progress.

use drplan_protocol::rpc::{self, Message, ProgressParams, method};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Handed to each `execute`: whether drplan asked to stop, and a way to report progress.
#[derive(Clone)]
pub struct Call {
    operation: String,
    out: mpsc::UnboundedSender<String>,
    cancel: CancellationToken,
}

impl Call {
    pub(crate) fn new(operation: String, out: mpsc::UnboundedSender<String>, cancel: CancellationToken) -> Call {
        Call { operation, out, cancel }
    }

    /// A call that reports nowhere and is never cancelled (for a plugin's own tests).
    pub fn detached(operation: &str) -> Call {
        let (out, _) = mpsc::unbounded_channel();
        Call::new(operation.into(), out, CancellationToken::new())
    }

    /// The journal's id of the operation (`RUN/STEP`), the same when drplan asks again.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// drplan asked to stop: stop at the next safe point with an error of kind `cancelled`.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The cancellation itself, to `select!` on while waiting.
    pub fn token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// How the operation advances (shown live, and logged).
    pub fn progress(&self, bytes: Option<u64>, total_bytes: Option<u64>, message: Option<String>) {
        let params = ProgressParams { operation: self.operation.clone(), bytes, total_bytes, message };
        if let Ok(params) = rpc::raw(&params) {
            crate::wire::queue(&self.out, &Message::notification(method::PROGRESS, params));
        }
    }
}
