//! Why the desired state cannot be reached from the actual one.

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

#[derive(Debug, Clone, Error, Diagnostic)]
pub enum DiffError {
    #[error("machine `{machine}` was not found at any site")]
    #[diagnostic(
        code(drplan::machine_not_found),
        help(
            "the provider has no machine with identity `{id}`; check the machine's `id:` (or, for sim, the world file)"
        )
    )]
    MachineNotFound {
        machine: String,
        id: String,
        #[label("the target needs it")]
        at: SourceSpan,
    },

    #[error("`{machine}` cannot fail over to {to}: it does not replicate {from} → {to}")]
    #[diagnostic(
        code(drplan::not_protected),
        help("protect it first: apply with `target.active: {from}` (initial replication), then change the target")
    )]
    NotProtected {
        machine: String,
        from: String,
        to: String,
        #[label("needs protection {from} → {to}")]
        at: SourceSpan,
    },

    #[error("site `{site}` is unreachable; a {what} needs it")]
    #[diagnostic(code(drplan::site_unreachable), help("{help}"))]
    SiteUnreachable {
        site: String,
        what: &'static str,
        help: &'static str,
        #[label("unreachable: {site}")]
        at: SourceSpan,
    },

    #[error("`{machine}` has no recovery point matching `{selector}`")]
    #[diagnostic(
        code(drplan::no_recovery_point),
        help("choose another `recovery_point` (e.g. `latest`), or wait for replication to take one")
    )]
    NoRecoveryPoint {
        machine: String,
        selector: String,
        #[label("requested here")]
        at: SourceSpan,
    },

    #[error("the replica of `{machine}` at {site} is inconsistent (an interrupted sync)")]
    #[diagnostic(
        code(drplan::replica_inconsistent),
        help(
            "an unplanned failover cannot use it; if the source is reachable, apply the current target first so the sync is redone"
        )
    )]
    ReplicaInconsistent {
        machine: String,
        site: String,
        #[label("cannot fail over here")]
        at: SourceSpan,
    },

    #[error("`{machine}` cannot fail back to {to}: reverse replication {from} → {to} is not in place")]
    #[diagnostic(
        code(drplan::failback_needs_reprotect),
        help(
            "a failback needs reprotection first: apply with `reprotect: true` while `target.active` is {from}, then change the target"
        )
    )]
    FailbackNeedsReprotect {
        machine: String,
        from: String,
        to: String,
        #[label("failback requested here")]
        at: SourceSpan,
    },

    #[error("`{machine}` cannot fail back unplanned to the alternate location {site}")]
    #[diagnostic(
        code(drplan::unsupported_operation),
        help(
            "an unplanned failback restores the points reverse replication brought to the primary; use `location: original`, or bring the recovery site back and fail back planned to the alternate location"
        )
    )]
    UnplannedAlternate {
        machine: String,
        site: String,
        #[label("unplanned failback requested here")]
        at: SourceSpan,
    },

    #[error("the live copy of `{machine}` at {site} is gone")]
    #[diagnostic(code(drplan::live_copy_gone), help("{help}"))]
    LiveCopyGone {
        machine: String,
        site: String,
        help: String,
        #[label("the target needs it")]
        at: SourceSpan,
    },

    #[error("`{machine}` has an uncommitted failover to {site}")]
    #[diagnostic(
        code(drplan::commit_pending),
        help(
            "run `drplan commit PLAN` to keep the failover, or `drplan rollback PLAN` to undo it, before changing direction"
        )
    )]
    CommitPending {
        machine: String,
        site: String,
        #[label("changing direction here")]
        at: SourceSpan,
    },
}
