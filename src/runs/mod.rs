//! The life of a run, below the command line: opening a plan and holding its lock, planning,
//! starting or continuing a run, recording approvals, finishing with evidence and history,
//! cancelling, and the drill lifecycle (open, clean up, expire). The command line parses
//! arguments, calls these and renders what comes back; errors come back as [`Failure`] and
//! are rendered once, there.

mod apply;
mod approve;
mod cancel;
mod drill;
mod error;
mod execute;
mod git;
mod history;
mod ownership;
mod preflight;
mod replicate;
mod workspace;

pub use apply::Prepared;
pub use drill::{DrillRequest, ExpiredDrill};
pub use error::{Failure, RunsError};
pub use execute::{RunHooks, RunOptions, RunResult, plan_checksum, status_word};
pub use history::record_history;
pub use replicate::PointTaken;
pub use workspace::{Held, Observed, Workspace};
