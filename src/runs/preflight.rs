//! Before a run starts or continues, what it will need must be there: every script it will
//! run exists and is executable (and its directory exists) and has the variables it takes
//! from drplan's environment, and every site its operations need
//! can be reached. Nothing starts that cannot finish.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use super::error::{Failure, RunsError};
use super::workspace::Held;
use crate::os::process::{has_exec_mode, on_path};
use crate::planner::{ActionKind, ActionPlan, Phase};
use crate::spec::OnFailure;

impl Held<'_> {
    /// Check the steps of `plan` that are not in `done`.
    pub(super) async fn preflight(&self, plan: &ActionPlan, done: &HashSet<String>) -> Result<(), Failure> {
        let mut problems = Vec::new();
        let mut needed: BTreeSet<&str> = BTreeSet::new();
        for action in plan.actions.iter().filter(|a| !done.contains(&a.id)) {
            match &action.kind {
                ActionKind::Script { program, dir, env, .. } => {
                    if let Some(problem) = script_problem(program, dir) {
                        problems.push(format!("{}: {problem}", action.id));
                    }
                    for var in crate::planner::script_env::unset(env) {
                        problems.push(format!(
                            "{}: drplan's environment has no `{var}` (for `from_env: {var}`)",
                            action.id
                        ));
                    }
                }
                // An unplanned move only tries to shut the source down and sync it: those
                // may fail (the source is often gone), so their site is not required.
                ActionKind::Provider { op }
                    if !(action.on_failure == OnFailure::Continue
                        && matches!(action.phase, Phase::Shutdown | Phase::FinalSync)) =>
                {
                    needed.extend(op.sites_needed());
                }
                _ => {}
            }
        }
        if !needed.is_empty() {
            let sites = self.provider()?.sites().await?;
            for site in needed {
                if let Some(status) = sites.get(site).filter(|s| !s.reachable) {
                    let why = status.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
                    problems.push(format!("site `{site}` is unreachable{why}"));
                }
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(RunsError::Preflight { kind: plan.run, problems: problems.iter().map(|p| format!("\n  - {p}")).collect() }
            .into())
    }
}

/// Why a script could not run here, if it could not: a program with a `/` must be an
/// executable file, a bare name must be found on PATH, and its working directory must exist.
fn script_problem(program: &Path, dir: &Path) -> Option<String> {
    if !dir.is_dir() {
        return Some(format!("its working directory `{}` does not exist", dir.display()));
    }
    if program.components().count() > 1 || program.is_absolute() {
        return match std::fs::metadata(program) {
            Ok(meta) if meta.is_file() && has_exec_mode(&meta) => None,
            Ok(meta) if meta.is_file() => Some(format!("`{}` is not executable", program.display())),
            _ => Some(format!("`{}` does not exist", program.display())),
        };
    }
    on_path(program).is_none().then(|| format!("`{}` is not on PATH", program.display()))
}
