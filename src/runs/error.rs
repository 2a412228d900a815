//! Why a run-level command cannot go on. Rendered once, by the command line.

use miette::Diagnostic;
use thiserror::Error;

use crate::contract::ProviderError;
use crate::planner::PlanError;
use crate::spec::FileDiagnostic;
use crate::state::{RunKind, StateError};

#[derive(Debug, Error, Diagnostic)]
pub enum RunsError {
    #[error("plan `{plan}` has an unfinished {kind} run ({run}, {state})")]
    #[diagnostic(
        code(drplan::run_in_progress),
        help("continue it with `drplan resume {path}`, or abandon it with `drplan cancel {path}` and plan again")
    )]
    InProgress { plan: String, run: String, kind: RunKind, state: String, path: String },

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

    #[error("`{step}` has no attempt of unknown outcome to run again")]
    #[diagnostic(code(drplan::not_rerunnable))]
    NotRerunnable {
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

    #[error("drill {id} of `{plan}` is still open (started {started})")]
    #[diagnostic(
        code(drplan::drill_in_progress),
        help("one drill per plan at a time: finish it with `drplan drill complete {path}`")
    )]
    DrillInProgress { id: String, plan: String, started: String, path: String },

    #[error("`{name}` is not a group of `{plan}`")]
    #[diagnostic(code(drplan::unknown_group))]
    UnknownGroup {
        name: String,
        plan: String,
        #[help]
        help: String,
    },

    #[error("`{name}` is not a machine of `{plan}`")]
    #[diagnostic(code(drplan::unknown_machine))]
    UnknownMachine {
        name: String,
        plan: String,
        #[help]
        help: String,
    },

    #[error("`{plan}` has no open drill")]
    #[diagnostic(code(drplan::no_open_drill), help("start one with `drplan drill {path}`"))]
    NoOpenDrill { plan: String, path: String },

    #[error("refusing to apply without confirmation")]
    #[diagnostic(
        code(drplan::confirmation_required),
        help("stdin is not a terminal; review the plan and pass --auto-approve, or apply a saved plan file")
    )]
    NeedsAutoApprove,

    #[error("the {kind} cannot start: {problems}")]
    #[diagnostic(
        code(drplan::preflight_failed),
        help("nothing was started; fix what is listed (or wait for the site) and run the same command again")
    )]
    Preflight { kind: RunKind, problems: String },

    #[error("the run's saved plan `{path}` is missing")]
    #[diagnostic(
        code(drplan::corrupt_state),
        help("the state names a run whose plan is gone; `drplan cancel PLAN` abandons the run")
    )]
    RunPlanMissing { path: String },

    #[error("the run's evidence for `{run}` was not kept")]
    #[diagnostic(code(drplan::unknown_run), help("only runs that started with this drplan keep a report"))]
    ReportMissing { run: String },
}

/// Everything a run-level command can fail with: problems in the plan document (each
/// pointing into the file), or one diagnostic.
#[derive(Debug)]
pub enum Failure {
    Plan(Vec<FileDiagnostic>),
    One(Box<dyn Diagnostic + Send + Sync + 'static>),
}

impl Failure {
    pub fn one(diagnostic: impl Diagnostic + Send + Sync + 'static) -> Self {
        Failure::One(Box::new(diagnostic))
    }
}

macro_rules! failure_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::one(e)
            }
        }
    )*};
}

failure_from!(RunsError, StateError, ProviderError, PlanError, FileDiagnostic);

impl From<Vec<FileDiagnostic>> for Failure {
    fn from(problems: Vec<FileDiagnostic>) -> Self {
        Failure::Plan(problems)
    }
}
