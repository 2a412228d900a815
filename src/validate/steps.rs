//! Manual and script steps: ids, programs, timeouts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use miette::SourceSpan;

use super::checker::Checker;
use super::error::ValidationError;
use super::model::{
    ConsistencySpec, DEFAULT_CONSISTENCY_TIMEOUT, DEFAULT_SCRIPT_TIMEOUT, EnvSpec, ManualSpec, Phase, PhaseStepSpecs,
    ScriptSpec, StepKind, StepSpec,
};
use crate::spec::document::{Consistency, EnvValue};
use crate::spec::{Group, PhaseSteps, ScriptStep, Step, span_of};
use serde_saphyr::Spanned;

/// Check a group's `before` and `after` steps and give each a stable id (`GROUP/before/NAME`).
pub(super) fn check_steps(cx: &mut Checker, group: &Group, base_dir: &Path) -> Option<[Vec<StepSpec>; 2]> {
    let label = format!("group `{}`", group.name.value);
    let scope = Scope { id: &group.name.value, label: &label, kind: "group", at: span_of(&group.name) };
    check_scoped(cx, scope, [&group.before, &group.after], base_dir)
}

/// Check the steps around a phase (`phases.shutdown`); their ids are `phases/shutdown/before/NAME`.
pub(super) fn check_phase_steps(
    cx: &mut Checker,
    phase: &str,
    steps: Option<&serde_saphyr::Spanned<PhaseSteps>>,
    base_dir: &Path,
) -> Option<PhaseStepSpecs> {
    let Some(steps) = steps else { return Some(PhaseStepSpecs::default()) };
    let (id, label) = (format!("phases/{phase}"), format!("`phases.{phase}`"));
    let scope = Scope { id: &id, label: &label, kind: "phase", at: span_of(steps) };
    let [before, after] = check_scoped(cx, scope, [&steps.value.before, &steps.value.after], base_dir)?;
    Some(PhaseStepSpecs { before, after })
}

/// Where steps are: the prefix of their ids, the name messages use, where to point.
struct Scope<'a> {
    id: &'a str,
    label: &'a str,
    kind: &'static str,
    at: SourceSpan,
}

fn check_scoped(cx: &mut Checker, scope: Scope, lists: [&Vec<Step>; 2], base_dir: &Path) -> Option<[Vec<StepSpec>; 2]> {
    let mut ok = true;
    let mut ids: HashMap<String, SourceSpan> = HashMap::new();
    let mut out = [Vec::new(), Vec::new()];
    for (phase, steps) in [Phase::Before, Phase::After].into_iter().zip(lists) {
        for (i, step) in steps.iter().enumerate() {
            let name = match step {
                Step::Script(s) => s.name.as_ref(),
                Step::Manual(m) => m.name.as_ref(),
            };
            if let Some(name) = name {
                ok &= cx.check_name("step", name);
            }
            let label = name.map_or_else(|| (i + 1).to_string(), |n| n.value.clone());
            let id = format!("{}/{}/{label}", scope.id, phase.as_str());
            let at = match (name, step) {
                (Some(name), _) => span_of(name),
                (None, Step::Script(s)) => span_of(&s.run),
                (None, Step::Manual(_)) => scope.at,
            };
            if let Some(&first) = ids.get(&id) {
                ok = false;
                cx.report(ValidationError::DuplicateStep {
                    name: label,
                    scope: scope.label.to_string(),
                    prefix: scope.id.to_string(),
                    kind: scope.kind,
                    at,
                    first,
                });
                continue;
            }
            ids.insert(id.clone(), at);
            let (kind, only, direction) = match step {
                Step::Script(script) => match check_script(cx, script, base_dir) {
                    Some(spec) => (StepKind::Script(spec), &script.only, &script.direction),
                    None => {
                        ok = false;
                        continue;
                    }
                },
                Step::Manual(manual) => (
                    StepKind::Manual(ManualSpec { prompt: manual.prompt.clone(), approvers: manual.approvers.clone() }),
                    &manual.only,
                    &manual.direction,
                ),
            };
            out[phase as usize].push(StepSpec { id, kind, only: only.clone(), direction: direction.clone() });
        }
    }
    ok.then_some(out)
}

fn check_script(cx: &mut Checker, script: &ScriptStep, base_dir: &Path) -> Option<ScriptSpec> {
    let timeout = match &script.timeout {
        Some(t) => cx.positive_duration(t, "a script needs time to run; omit `timeout` for the 10m default"),
        None => Some(DEFAULT_SCRIPT_TIMEOUT),
    };
    let program = argv_program(cx, &script.run, base_dir, ("run", RUN_EXAMPLE))?;
    let argv: Vec<String> = script.run.value.iter().map(|a| a.value.clone()).collect();
    Some(ScriptSpec {
        argv,
        program,
        dir: script.dir.as_ref().map_or_else(|| base_dir.to_path_buf(), |d| base_dir.join(d)),
        env: check_env(cx, &script.env),
        timeout: timeout?,
        retries: script.retries,
        on_failure: script.on_failure,
    })
}

const RUN_EXAMPLE: &str = "[scripts/check.sh, --quick]";

/// A machine's freeze and thaw programs: each an argv whose program resolves as a script's.
pub fn check_consistency(cx: &mut Checker, hooks: &Consistency, base_dir: &Path) -> Option<ConsistencySpec> {
    let timeout = match &hooks.timeout {
        Some(t) => cx.positive_duration(t, "a freeze needs time to run; omit `timeout` for the 1m default"),
        None => Some(DEFAULT_CONSISTENCY_TIMEOUT),
    };
    let mut argv = |run: &Spanned<Vec<Spanned<String>>>, field: (&'static str, &'static str)| {
        let program = argv_program(cx, run, base_dir, field)?;
        let rest = run.value[1..].iter().map(|a| a.value.clone());
        Some(std::iter::once(program.to_string_lossy().into_owned()).chain(rest).collect::<Vec<_>>())
    };
    let freeze = argv(&hooks.freeze, ("freeze", "[scripts/freeze-db.sh]"));
    let thaw = argv(&hooks.thaw, ("thaw", "[scripts/thaw-db.sh]"));
    let written =
        |run: &Spanned<Vec<Spanned<String>>>| run.value.iter().map(|a| a.value.as_str()).collect::<Vec<_>>().join(" ");
    let timeout = timeout?;
    let shown = format!(
        "freeze `{}`, thaw `{}`, within {}",
        written(&hooks.freeze),
        written(&hooks.thaw),
        humantime::format_duration(timeout)
    );
    Some(ConsistencySpec { freeze: freeze?, thaw: thaw?, timeout, shown })
}

fn check_env(cx: &mut Checker, env: &BTreeMap<String, EnvValue>) -> BTreeMap<String, EnvSpec> {
    env.iter()
        .map(|(name, value)| {
            let spec = match value {
                EnvValue::Literal(v) => EnvSpec::Literal(v.clone()),
                EnvValue::FromEnv(from) => {
                    let var = &from.from_env.value;
                    if !super::state::is_env_name(var) {
                        cx.report(ValidationError::BadEnvName { name: var.clone(), at: span_of(&from.from_env) });
                    }
                    EnvSpec::FromEnv(var.clone())
                }
            };
            (name.clone(), spec)
        })
        .collect()
}

/// The program of an argv (`field`, with an example for the hint when it is empty), resolved.
fn argv_program(
    cx: &mut Checker,
    run: &Spanned<Vec<Spanned<String>>>,
    base_dir: &Path,
    (field, example): (&'static str, &'static str),
) -> Option<PathBuf> {
    let Some(first) = run.value.first() else {
        cx.report(ValidationError::EmptyScript { field, example, at: span_of(run) });
        return None;
    };
    Some(resolve_program(cx, &first.value, span_of(first), base_dir, (field, example)))
}

/// A program with a `/` is a path relative to the plan; a bare name is looked up in `PATH`,
/// as a shell would. A missing program is a warning: it may exist where the plan runs.
fn resolve_program(
    cx: &mut Checker,
    program: &str,
    at: SourceSpan,
    base_dir: &Path,
    (field, example): (&'static str, &'static str),
) -> PathBuf {
    if program.is_empty() {
        cx.report(ValidationError::EmptyScript { field, example, at });
        return PathBuf::new();
    }
    if program.contains('/') {
        let path = base_dir.join(program);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() && crate::os::process::has_exec_mode(&meta) => {}
            Ok(meta) if meta.is_file() => cx.report(ValidationError::ScriptNotFound {
                field,
                program: program.to_string(),
                problem: "is not executable",
                help: format!("run `chmod +x {}`", shown(&path).display()),
                at,
            }),
            _ => cx.report(ValidationError::ScriptNotFound {
                field,
                program: program.to_string(),
                problem: "does not exist",
                help: format!("looked for `{}` (paths are relative to the plan file)", shown(&path).display()),
                at,
            }),
        }
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    if !on_path {
        let help = if base_dir.join(program).is_file() {
            format!("`{program}` is next to the plan; write `./{program}` to run it from there")
        } else {
            format!("`{program}` is not on PATH here; give a path relative to the plan, e.g. `scripts/{program}`")
        };
        cx.report(ValidationError::ScriptNotFound {
            field,
            program: program.to_string(),
            problem: "is not on PATH",
            help,
            at,
        });
    }
    PathBuf::from(program)
}

/// A path as the user best reads it: relative to the current directory when under it.
fn shown(path: &Path) -> PathBuf {
    match std::env::current_dir() {
        Ok(cwd) => path.strip_prefix(&cwd).map_or_else(|_| path.to_path_buf(), Path::to_path_buf),
        Err(_) => path.to_path_buf(),
    }
}
