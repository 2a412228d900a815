//! What most commands start with: a validated plan, its state store and its provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::Diagnostic;

use super::{Ui, exit};
use crate::contract::Inventory;
use crate::contract::Provider;
use crate::report::diagnostics::render;
use crate::spec::FileDiagnostic;
use crate::state::{FileLock, FileStore, StateStore};
use crate::validate::{Model, validate_file};

pub struct Session {
    pub path: PathBuf,
    pub model: Model,
    pub store: Arc<FileStore>,
    pub ui: Ui,
}

/// Print a diagnostic on stderr; the command then exits with an error.
pub fn report(ui: Ui, diagnostic: &dyn Diagnostic) -> u8 {
    err!("{}", render(diagnostic, ui.stderr_style));
    exit::ERROR
}

pub fn report_all(ui: Ui, diagnostics: &[FileDiagnostic]) -> u8 {
    for d in diagnostics {
        err!("{}", render(d, ui.stderr_style));
    }
    if diagnostics.iter().any(FileDiagnostic::is_error) { exit::ERROR } else { exit::OK }
}

impl Session {
    /// Load and validate the plan; warnings are printed, errors end the command.
    pub fn open(path: &Path, ui: Ui) -> Result<Session, u8> {
        let validation = validate_file(path);
        if validation.has_errors() || validation.model.is_none() {
            report_all(ui, &validation.diagnostics);
            return Err(exit::ERROR);
        }
        report_all(ui, &validation.diagnostics);
        let model = validation.model.expect("checked above");
        let store = Arc::new(FileStore::for_plan(path, &model.name));
        Ok(Session { path: path.to_path_buf(), model, store, ui })
    }

    pub fn lock(&self, command: &str) -> Result<FileLock, u8> {
        self.store.lock(command).map_err(|e| report(self.ui, &e))
    }

    pub fn provider(&self) -> Result<Arc<dyn Provider>, u8> {
        crate::providers::open(&self.model).map_err(|e| report(self.ui, &e))
    }

    pub async fn inventory(&self, provider: &dyn Provider) -> Result<Inventory, u8> {
        provider.inventory().await.map_err(|e| report(self.ui, &e))
    }

    /// What the provider sees now, and how that differs from the plan's target.
    pub async fn observe(&self, provider: &dyn Provider) -> Result<Observed, u8> {
        let inventory = self.inventory(provider).await?;
        let changes = crate::diff::diff(&self.model, &inventory);
        Ok(Observed { inventory, changes, plan_path: self.absolute_path() })
    }

    /// The plan path as saved in plan files: absolute, so `show` and `apply` find it from
    /// anywhere.
    pub fn absolute_path(&self) -> PathBuf {
        std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone())
    }
}

/// The world as observed for planning: inventory and change set.
pub struct Observed {
    pub inventory: Inventory,
    pub changes: crate::diff::ChangeSet,
    pub plan_path: PathBuf,
}

impl Observed {
    pub fn input<'a>(
        &'a self,
        session: &'a Session,
        state: &'a crate::state::State,
        platform: &'a dyn crate::contract::Platform,
        parallelism: usize,
    ) -> crate::planner::PlanInput<'a> {
        crate::planner::PlanInput {
            model: &session.model,
            plan_path: &self.plan_path,
            changes: &self.changes,
            inventory: &self.inventory,
            state,
            platform,
            parallelism,
            now: std::time::SystemTime::now(),
        }
    }
}
