//! Why state could not be read, written or locked.

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum StateError {
    #[error("plan `{plan}` is locked by {holder}")]
    #[diagnostic(
        code(drplan::state_locked),
        help(
            "another drplan is planning or applying this plan; wait for it to finish. If that process is gone for good, run `drplan unlock {plan_path}`"
        )
    )]
    Locked { plan: String, plan_path: String, holder: String },

    #[error("state file `{path}` is corrupt: {reason}")]
    #[diagnostic(
        code(drplan::corrupt_state),
        help("restore it from `{}.bak` (the previous version), or move it away to start afresh from the provider's inventory", path.display())
    )]
    Corrupt {
        path: PathBuf,
        reason: String,
        #[source_code]
        source_code: Option<std::sync::Arc<NamedSource<String>>>,
        #[label("here")]
        at: Option<SourceSpan>,
    },

    #[error("state file `{path}` is missing, but the plan's runs and backup are still there")]
    #[diagnostic(
        code(drplan::state_missing),
        help(
            "starting afresh would lose the unfinished run and the history; restore the previous state with `drplan state restore {plan_path}` (from `{}`), or move the whole state directory away to start a new lineage", backup.display()
        )
    )]
    Missing { path: PathBuf, backup: PathBuf, plan_path: String },

    #[error("state file `{path}` has format {found}; this drplan reads format {supported}")]
    #[diagnostic(code(drplan::state_format), help("a newer drplan wrote it; upgrade drplan"))]
    NewerFormat { path: PathBuf, found: u32, supported: u32 },

    #[error("state file `{path}` belongs to plan `{found}`, not `{expected}`")]
    #[diagnostic(
        code(drplan::state_mismatch),
        help("two plans share a name or a state directory; give each plan a unique `name`")
    )]
    WrongPlan { path: PathBuf, found: String, expected: String },

    #[error("journal `{path}` is corrupt at line {line}: {reason}")]
    #[diagnostic(
        code(drplan::corrupt_journal),
        help("every line is one JSON record; only a torn last line (after a crash) is tolerated")
    )]
    CorruptJournal { path: PathBuf, line: usize, reason: String },

    #[error("the plan-file key `{path}` is not 32 bytes")]
    #[diagnostic(
        code(drplan::bad_plan_key),
        help("remove it: the next `drplan plan --out` makes a new one (plan files saved before must be saved again)")
    )]
    BadKey { path: PathBuf },

    #[error("the state database {location} {what}: {reason}")]
    #[diagnostic(code(drplan::state_postgres), help("{hint}"))]
    Postgres { location: String, what: String, reason: String, hint: String },

    #[error("{location} keeps no previous version of the state")]
    #[diagnostic(
        code(drplan::state_no_backup),
        help("the PostgreSQL backend keeps history and journals as rows; restore the database from its own backups")
    )]
    NoBackup { location: String },

    #[error("cannot {action} `{path}`: {source}")]
    #[diagnostic(code(drplan::state_io), help("check permissions and free space of the state directory"))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StateError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StateError::Io { action, path: path.into(), source }
    }
}
