//! Problems of the run-level commands (apply, resume, approve, cancel).

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum RunError {
    #[error("plan `{plan}` has an unfinished {kind} run ({run}, {state})")]
    #[diagnostic(
        code(drplan::run_in_progress),
        help("continue it with `drplan resume {path}`, or abandon it with `drplan cancel {path}` and plan again")
    )]
    InProgress { plan: String, run: String, kind: String, state: String, path: String },

    #[error("plan `{plan}` has no unfinished run")]
    #[diagnostic(code(drplan::no_active_run), help("start one with `drplan apply`"))]
    NoActiveRun { plan: String },

    #[error("`{step}` is not a manual step of the current run")]
    #[diagnostic(code(drplan::unknown_step))]
    UnknownStep {
        step: String,
        #[help]
        help: String,
    },

    #[error("{by} may not approve `{step}`")]
    #[diagnostic(
        code(drplan::not_an_approver),
        help("the approvers of this step are: {approvers}; pass --by with one of them")
    )]
    NotAnApprover { step: String, by: String, approvers: String },

    #[error("no run `{run}` in the history of `{plan}`")]
    #[diagnostic(code(drplan::unknown_run))]
    UnknownRun {
        run: String,
        plan: String,
        #[help]
        help: String,
    },

    #[error("refusing to apply without confirmation")]
    #[diagnostic(
        code(drplan::confirmation_required),
        help("stdin is not a terminal; review the plan and pass --auto-approve, or apply a saved plan file")
    )]
    NeedsAutoApprove,
}
