//! A plan opened for work: the validated document, its state store, and (while a command
//! changes anything) the plan's lock, its state and its provider.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::drill::{ExpiredDrill, expire_old_drill};
use super::error::{Failure, RunsError};
use crate::contract::{Inventory, Platform, Provider};
use crate::diff::ChangeSet;
use crate::planner::{ActionKind, ActionPlan, PlanError, PlanInput, file};
use crate::spec::FileDiagnostic;
use crate::state::{ActiveRun, FileStore, PgStore, State, StateLock, StateStore};
use crate::validate::StateBackend;
use crate::validate::{Model, validate_file};

/// A validated plan document and where its state lives.
pub struct Workspace {
    /// The plan file as given on the command line.
    pub path: PathBuf,
    pub model: Model,
    pub store: Arc<dyn StateStore>,
    /// How long taking the lock waits for another holder (zero: fail at once).
    pub lock_timeout: Cell<std::time::Duration>,
}

impl Workspace {
    /// Load and validate the plan. Warnings come back beside it; any error is a failure.
    pub fn open(path: &Path) -> Result<(Workspace, Vec<FileDiagnostic>), Failure> {
        let validation = validate_file(path);
        let Some(model) = validation.model.filter(|_| !validation.diagnostics.iter().any(FileDiagnostic::is_error))
        else {
            return Err(Failure::Plan(validation.diagnostics));
        };
        let store: Arc<dyn StateStore> = match &model.state {
            StateBackend::File => Arc::new(FileStore::for_plan(path, &model.name)),
            StateBackend::Postgres { url_env } => Arc::new(PgStore::for_plan(path, &model.name, url_env)?),
        };
        let lock_timeout = Cell::new(std::time::Duration::ZERO);
        Ok((Workspace { path: path.to_path_buf(), model, store, lock_timeout }, validation.diagnostics))
    }

    pub fn provider(&self) -> Result<Arc<dyn Provider>, Failure> {
        Ok(crate::providers::open(&self.model)?)
    }

    /// The state as saved, without the lock (state files are replaced atomically).
    pub fn load_state(&self) -> Result<State, Failure> {
        Ok(self.store.load()?)
    }

    /// The plan path as saved in plan files: absolute, so `show` and `apply` find it from
    /// anywhere.
    pub fn absolute_path(&self) -> PathBuf {
        std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone())
    }

    /// Take the plan's lock for `command`, load its state (creating it on first use) and open
    /// its provider. A drill left open past its maximum age is cleaned up first.
    pub async fn hold(&self, command: &str) -> Result<Held<'_>, Failure> {
        let mut held = self.lock(command)?;
        let provider = held.provider()?;
        held.expired = expire_old_drill(self, provider.as_ref(), &mut held.state).await?;
        Ok(held)
    }

    /// The plan's lock, waiting up to `lock_timeout` while another runner holds it.
    fn wait_for_lock(&self, command: &str) -> Result<crate::state::StateLock, Failure> {
        let deadline = std::time::Instant::now() + self.lock_timeout.get();
        let mut told = false;
        loop {
            match self.store.lock(command) {
                Err(crate::state::StateError::Locked { holder, .. }) if std::time::Instant::now() < deadline => {
                    if !told {
                        tracing::info!(target: "drplan", "waiting for the lock held by {holder}");
                        told = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                other => return Ok(other?),
            }
        }
    }

    /// Take the plan's lock and load its state, for commands that only change state
    /// (approvals, cancelling): the provider opens only if asked for.
    pub fn lock(&self, command: &str) -> Result<Held<'_>, Failure> {
        let fresh = !self.store.exists();
        let lock = self.wait_for_lock(command)?;
        // Dropped on any failure from here: a first command that fails leaves no state.
        let mut held = Held {
            workspace: self,
            _lock: lock,
            state: State::new(&self.model.name),
            provider: OnceLock::new(),
            expired: None,
            fresh,
            kept: Cell::new(false),
            secret_key: [0; 32],
        };
        held.state = self.store.load_or_init()?;
        held.secret_key = self.store.plan_key()?;
        Ok(held)
    }
}

/// A plan held for a state-changing command.
pub struct Held<'w> {
    pub workspace: &'w Workspace,
    _lock: StateLock,
    pub state: State,
    provider: OnceLock<Arc<dyn Provider>>,
    /// A drill that `hold` force-cleaned because it was open too long.
    pub expired: Option<ExpiredDrill>,
    /// The state did not exist before this command: unless something is kept, it goes again.
    fresh: bool,
    kept: Cell<bool>,
    /// The state's secret (see `StateStore::plan_key`), read once when the lock is taken.
    pub(super) secret_key: [u8; 32],
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.fresh && !self.kept.get() {
            self.workspace.store.discard_new();
        }
    }
}

/// The world as observed for planning: inventory and change set.
pub struct Observed {
    pub inventory: Inventory,
    pub changes: ChangeSet,
    pub plan_path: PathBuf,
    provider: Arc<dyn Provider>,
}

impl Held<'_> {
    pub fn model(&self) -> &Model {
        &self.workspace.model
    }

    /// Put the document's literal environment values back into a plan read from a file (plan
    /// files keep only their digests); refused when the document no longer has one.
    pub fn refill_env(&self, plan: &mut ActionPlan) -> Result<(), Failure> {
        use crate::planner::script_env::{literals, refill};
        let specs =
            self.model().groups.iter().flat_map(|g| g.before.iter().chain(&g.after)).filter_map(|s| match &s.kind {
                crate::validate::StepKind::Script(script) => Some(script.env.values()),
                _ => None,
            });
        let known = literals(specs.flatten(), &self.secret_key);
        for action in &mut plan.actions {
            if let ActionKind::Script { env, .. } = &mut action.kind {
                let missing = refill(env, &known);
                if !missing.is_empty() {
                    return Err(PlanError::EnvGone { step: action.id.clone(), names: missing.join(", ") }.into());
                }
            }
        }
        Ok(())
    }

    /// The plan's provider, opened on first use.
    pub fn provider(&self) -> Result<Arc<dyn Provider>, Failure> {
        if let Some(provider) = self.provider.get() {
            return Ok(provider.clone());
        }
        let provider = self.workspace.provider()?;
        Ok(self.provider.get_or_init(|| provider).clone())
    }

    pub async fn inventory(&self) -> Result<Inventory, Failure> {
        Ok(self.provider()?.inventory().await?)
    }

    /// What the provider sees now, and how that differs from the plan's target.
    pub async fn observe(&self) -> Result<Observed, Failure> {
        let provider = self.provider()?;
        let inventory = provider.inventory().await?;
        let changes = crate::diff::diff(self.model(), &inventory);
        Ok(Observed { inventory, changes, plan_path: self.workspace.absolute_path(), provider })
    }

    /// The planner's input for what was observed (the provider is open once observed).
    pub fn input<'a>(&'a self, observed: &'a Observed, parallelism: usize) -> PlanInput<'a> {
        PlanInput {
            model: self.model(),
            plan_path: &observed.plan_path,
            changes: &observed.changes,
            inventory: &observed.inventory,
            state: &self.state,
            platform: observed.provider.as_ref() as &dyn Platform,
            parallelism,
            now: std::time::SystemTime::now(),
            secret_key: self.secret_key,
        }
    }

    /// Refuse to start anything while another run is unfinished.
    pub fn refuse_unfinished(&self) -> Result<(), Failure> {
        match &self.state.run {
            Some(active) => Err(self.in_progress(active).into()),
            None => Ok(()),
        }
    }

    pub fn in_progress(&self, active: &ActiveRun) -> RunsError {
        RunsError::InProgress {
            plan: self.model().name.clone(),
            run: crate::state::short_id(&active.id),
            kind: active.kind,
            state: format!("{:?}", active.status).to_lowercase(),
            path: self.workspace.path.display().to_string(),
        }
    }

    /// The plan an unfinished run executes, as stored when it started.
    pub fn run_plan(&self, run: &str) -> Result<ActionPlan, Failure> {
        let name = format!("{run}.plan");
        let path = PathBuf::from(format!("{} {name}", self.workspace.store.location()));
        let bytes = self
            .workspace
            .store
            .read_artifact(&name)?
            .ok_or_else(|| RunsError::RunPlanMissing { path: path.display().to_string() })?;
        Ok(file::from_bytes(&path, &bytes)?)
    }

    pub fn save(&mut self) -> Result<(), Failure> {
        self.keep();
        Ok(self.workspace.store.save(&mut self.state)?)
    }

    /// The state this command created is worth keeping (a plan was made against it, a run
    /// was recorded in it).
    pub fn keep(&self) {
        self.kept.set(true);
    }
}
