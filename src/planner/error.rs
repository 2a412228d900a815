//! Problems found while planning, and with saved plan files.

use std::path::PathBuf;

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum PlanError {
    #[error("the {provider} provider does not support {what}")]
    #[diagnostic(code(drplan::unsupported_operation), help("{help}"))]
    Unsupported {
        provider: &'static str,
        what: String,
        help: String,
        #[label("requested here")]
        at: SourceSpan,
    },

    #[error("a {what} cannot use recovery point `{point}`")]
    #[diagnostic(
        code(drplan::recovery_point_not_used),
        help(
            "a {what} shuts the source down and syncs it, so it loses nothing and restores no recovery point; to restore `{point}` (losing what came after it) use `via: unplanned`, or remove `recovery_point` (a drill takes `--point`)"
        )
    )]
    PointNotUsed {
        what: &'static str,
        point: String,
        #[label("not used by a {what}")]
        at: SourceSpan,
    },

    #[error("plan file `{path}` is corrupt: {reason}")]
    #[diagnostic(code(drplan::corrupt_plan_file), help("make the plan again with `drplan plan PLAN --out FILE`"))]
    CorruptFile { path: PathBuf, reason: String },

    #[error("plan file `{path}` is not one `drplan plan` made for this state: {reason}")]
    #[diagnostic(
        code(drplan::unauthenticated_plan),
        help(
            "apply runs only plan files `drplan plan PLAN --out FILE` wrote with this plan's state (they carry a \
             code keyed with the state's secret); review and save a fresh one"
        )
    )]
    Unauthenticated { path: PathBuf, reason: String },

    #[error("the plan document no longer holds the value of {names} for step `{step}`")]
    #[diagnostic(
        code(drplan::env_gone),
        help(
            "plan files keep only digests of environment values; the document they came from changed. Plan again, or \
             `drplan cancel` the unfinished run"
        )
    )]
    EnvGone { step: String, names: String },

    #[error("plan file `{path}` has format {found}; this drplan reads format {supported}")]
    #[diagnostic(
        code(drplan::plan_file_version),
        help("make the plan again with this drplan: `drplan plan PLAN --out FILE`")
    )]
    WrongVersion { path: PathBuf, found: String, supported: u32 },

    #[error("cannot read plan file `{path}`: {reason}")]
    #[diagnostic(code(drplan::file_not_found), help("check the path of the saved plan"))]
    Unreadable { path: PathBuf, reason: String },

    #[error("cannot write plan file `{path}`: {reason}")]
    #[diagnostic(code(drplan::io), help("check that the directory exists and is writable"))]
    Unwritable { path: PathBuf, reason: String },

    #[error("saved plan `{path}` is stale: {reasons}")]
    #[diagnostic(
        code(drplan::stale_plan),
        help("the world changed since the plan was made; review a fresh one: `drplan plan PLAN --out FILE`")
    )]
    Stale { path: PathBuf, reasons: String },
}
