//! What can be wrong with an Azure Site Recovery document, or with a plan exported to one.

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum AsrError {
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(code(drplan::io), help("check the path and that this user may read it"))]
    Unreadable { path: std::path::PathBuf, reason: String },

    #[error("not JSON: {reason}")]
    #[diagnostic(
        code(drplan::asr_not_json),
        help("give the recovery plan as the REST API returns it, a `value` list of them, or an ARM template")
    )]
    NotJson {
        reason: String,
        #[label("here")]
        at: SourceSpan,
    },

    #[error("no Azure Site Recovery recovery plan found here")]
    #[diagnostic(
        code(drplan::asr_no_plan),
        help(
            "expected a `Microsoft.RecoveryServices/vaults/replicationRecoveryPlans` resource (its GET body), a `value` list of them, or an ARM template with one under `resources`"
        )
    )]
    NoPlan {
        #[label("this document")]
        at: SourceSpan,
    },

    #[error("{count} recovery plans in this document: {names}")]
    #[diagnostic(code(drplan::asr_several_plans), help("choose one with `--plan NAME`"))]
    SeveralPlans {
        count: usize,
        names: String,
        #[label("the first")]
        at: SourceSpan,
    },

    #[error("no recovery plan `{name}` in this document")]
    #[diagnostic(code(drplan::asr_no_such_plan), help("{help}"))]
    NoSuchPlan {
        name: String,
        help: String,
        #[label("the plans are here")]
        at: SourceSpan,
    },

    #[error("`{path}` is missing")]
    #[diagnostic(code(drplan::asr_missing), help("{help}"))]
    Missing {
        path: String,
        help: String,
        #[label("in this object")]
        at: SourceSpan,
    },

    #[error("`{path}` must be {expected}")]
    #[diagnostic(code(drplan::asr_wrong_type), help("the REST API specification (2025-08-01) defines it so"))]
    WrongType {
        path: String,
        expected: &'static str,
        #[label("not {expected}")]
        at: SourceSpan,
    },

    #[error("`{path}` is `{value}`, which the API does not define")]
    #[diagnostic(code(drplan::asr_unknown_value), help("{help}"))]
    UnknownValue {
        path: String,
        value: String,
        help: String,
        #[label("unknown value")]
        at: SourceSpan,
    },

    #[error("the {group} group at `{path}` lists machines")]
    #[diagnostic(
        code(drplan::asr_items_outside_boot),
        help("machines belong to boot groups; the Shutdown and Failover groups cover every machine of the plan")
    )]
    ItemsOutsideBoot {
        group: &'static str,
        path: String,
        #[label("move these to a Boot group")]
        at: SourceSpan,
    },

    #[error("machine `{id}` is listed twice (`{path}` and `{first}`)")]
    #[diagnostic(
        code(drplan::asr_duplicate_item),
        help("ARM ids compare without regard to case; a machine belongs to one boot group")
    )]
    DuplicateItem {
        id: String,
        path: String,
        first: String,
        #[label("again here")]
        at: SourceSpan,
    },

    #[error("{what}")]
    #[diagnostic(code(drplan::asr_not_mapped), severity(Warning), help("{help}"))]
    NotMapped {
        what: String,
        help: String,
        #[label("here")]
        at: SourceSpan,
    },

    #[error("{what}")]
    #[diagnostic(code(drplan::asr_to_fill), severity(Warning), help("{help}"))]
    ToFill {
        what: String,
        help: String,
        #[label("here")]
        at: SourceSpan,
    },

    #[error("{what}")]
    #[diagnostic(code(drplan::asr_export), help("{help}"))]
    Export {
        what: String,
        help: String,
        #[label("here")]
        at: SourceSpan,
    },

    #[error("{what}")]
    #[diagnostic(code(drplan::asr_export_changes), severity(Warning), help("{help}"))]
    ExportChanges {
        what: String,
        help: String,
        #[label("here")]
        at: SourceSpan,
    },
}
