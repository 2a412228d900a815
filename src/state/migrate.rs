//! Moving a plan's state between backends (`drplan state migrate`): everything is copied —
//! state, every journal, every run artifact, the plan key — then read back from the target and
//! compared with the source. The source is left as it was.

use super::{StateError, StateStore};

/// What was moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub serial: u64,
    pub history: usize,
    pub journals: usize,
    pub journal_records: usize,
    pub artifacts: usize,
}

/// Copy the state of `from` into `to` (both locked by the caller) and verify it.
pub fn migrate(from: &dyn StateStore, to: &dyn StateStore) -> Result<Migrated, MigrateError> {
    let state = from.load()?;
    if let Some(run) = &state.run {
        return Err(MigrateError::RunOpen { run: super::short_id(&run.id) });
    }
    if to.exists() {
        return Err(MigrateError::TargetHasState { location: to.location() });
    }
    let runs = from.journal_runs()?;
    let mut records = 0;
    for run in &runs {
        let journal = from.read_journal(run)?;
        records += journal.len();
        to.append_journal(run, &journal)?;
    }
    let artifacts = from.artifact_names()?;
    for name in &artifacts {
        if let Some(bytes) = from.read_artifact(name)? {
            to.write_artifact(name, &bytes)?;
        }
    }
    to.import_plan_key(from.plan_key()?)?;
    // Saved last, with the source's serial: a target with state is a finished migration.
    let mut copy = state.clone();
    copy.serial = state.serial.saturating_sub(1);
    // The providers know the machines' owner by where its state was: that name stays.
    copy.claims_as = Some(state.claims_as.clone().unwrap_or_else(|| from.identity()));
    to.save(&mut copy)?;
    verify(from, to, &runs, &artifacts)?;
    Ok(Migrated {
        serial: copy.serial,
        history: state.history.len(),
        journals: runs.len(),
        journal_records: records,
        artifacts: artifacts.len(),
    })
}

/// Read everything back from the target and compare it with the source.
fn verify(
    from: &dyn StateStore,
    to: &dyn StateStore,
    runs: &[String],
    artifacts: &[String],
) -> Result<(), MigrateError> {
    let differs = |what: String| Err(MigrateError::Differs { what, location: to.location() });
    let (a, b) = (from.load()?, to.load()?);
    let json = |s: &super::State| {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        // When it was written, and under which name it claims, are not what it says.
        if let Some(o) = v.as_object_mut() {
            o.remove("updated_at");
            o.remove("claims_as");
        }
        v
    };
    if json(&a) != json(&b) || a.serial != b.serial {
        return differs("the state".into());
    }
    if to.journal_runs()? != runs {
        return differs("the list of journals".into());
    }
    for run in runs {
        let (x, y) = (from.read_journal(run)?, to.read_journal(run)?);
        let (x, y) = (serde_json::to_value(&x).unwrap_or_default(), serde_json::to_value(&y).unwrap_or_default());
        if x != y {
            return differs(format!("the journal of run {}", super::short_id(run)));
        }
    }
    for name in artifacts {
        if from.read_artifact(name)? != to.read_artifact(name)? {
            return differs(format!("run artifact {name}"));
        }
    }
    if from.plan_key()? != to.plan_key()? {
        return differs("the plan key".into());
    }
    Ok(())
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum MigrateError {
    #[error("run {run} is open; its state cannot move while it may still change")]
    #[diagnostic(
        code(drplan::migrate_run_open),
        help("finish it (`drplan resume`) or abandon it (`drplan cancel`) first")
    )]
    RunOpen { run: String },

    #[error("{location} already holds state for this plan")]
    #[diagnostic(
        code(drplan::migrate_target_not_empty),
        help("a migration never overwrites state; remove the target's state first if it is a leftover")
    )]
    TargetHasState { location: String },

    #[error("after copying, {what} at {location} differs from the source")]
    #[diagnostic(
        code(drplan::migrate_verify),
        help("the source is unchanged; do not switch the plan's `state:` block, and report this")
    )]
    Differs { what: String, location: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
}
