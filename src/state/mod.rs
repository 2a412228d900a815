//! What is actually there, as the engine records it: its own state (lineage, serial, runs, drills, history, the journal) behind [`StateStore`].

pub mod atomic;
pub mod error;
pub mod file_store;
pub mod journal;
pub mod lock;
pub mod migrate;
mod model;
pub mod postgres;
mod site_slots;

pub use error::StateError;
pub use file_store::FileStore;
pub use journal::{JournalEvent, JournalRecord, StepOutcome};
pub use lock::{FileLock, LockHolder};
pub use postgres::PgStore;
pub use site_slots::SiteSlots;

/// A new plan key: 32 random bytes.
pub(crate) fn random_key() -> Result<[u8; 32], StateError> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
        .map_err(|e| StateError::io("read random bytes from", "/dev/urandom", e))?;
    Ok(key)
}

/// Refuse a state a newer drplan wrote, by its `format`, before parsing it (a clear message
/// rather than a parse error); `path` names where it was read.
pub(crate) fn check_format(text: &str, path: &std::path::Path) -> Result<(), StateError> {
    if let Ok(probe) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(found) = probe.get("format").and_then(|f| f.as_u64())
        && found > STATE_FORMAT as u64
    {
        return Err(StateError::NewerFormat { path: path.to_path_buf(), found: found as u32, supported: STATE_FORMAT });
    }
    Ok(())
}

/// The folder of a plan's local state: `<plan dir>/.drplan/<plan>/` (the file backend's
/// state; every backend's runner-local files).
pub(crate) fn local_state_dir(plan_path: &std::path::Path, plan: &str) -> std::path::PathBuf {
    let base = match plan_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    base.join(".drplan").join(plan)
}

/// The plan's lock, held while it lives, whichever backend took it.
#[derive(Debug)]
pub enum StateLock {
    File(FileLock),
    Postgres(postgres::PgLock),
}
pub use model::*;

/// Where the engine keeps its state. The default is a directory beside the plan
/// ([`FileStore`]); other backends implement the same contract.
pub trait StateStore: Send + Sync {
    /// For messages: where the state lives.
    fn location(&self) -> String;
    /// Where the state lives, the same from any working directory: with the lineage, it
    /// names this plan's state as the owner of its machines.
    fn identity(&self) -> String {
        self.location()
    }
    /// Where this runner keeps its own files for the plan (running scripts' status): always
    /// on this machine, whatever the backend.
    fn local_dir(&self) -> std::path::PathBuf;
    /// Whether any state was ever saved for this plan.
    fn exists(&self) -> bool;
    /// Remove state that this process created and nothing needs: a first command that
    /// failed leaves nothing behind.
    fn discard_new(&self);
    /// Put the previous state back (the file backend keeps one version).
    fn restore_backup(&self) -> Result<u64, StateError> {
        Err(StateError::NoBackup { location: self.location() })
    }
    /// Take the plan's exclusive lock, or fail with who holds it.
    fn lock(&self, command: &str) -> Result<StateLock, StateError>;
    /// Who holds the lock, if anyone.
    fn lock_holder(&self) -> Result<Option<LockHolder>, StateError>;
    /// Break a lock whose holder is gone (or, with `force`, one that looks alive).
    fn unlock(&self, force: bool) -> Result<UnlockOutcome, StateError>;
    /// The current state; a fresh one (new lineage, serial 0) when none was saved yet.
    fn load(&self) -> Result<State, StateError>;
    /// Save atomically, bumping the serial.
    fn save(&self, state: &mut State) -> Result<(), StateError>;
    /// The current state, saving a fresh one first if none exists, so that its lineage is
    /// fixed from the first plan on. Call with the lock held.
    fn load_or_init(&self) -> Result<State, StateError> {
        let mut state = self.load()?;
        if state.serial == 0 {
            self.save(&mut state)?;
        }
        Ok(state)
    }
    /// Append journal records durably (fsynced before returning).
    fn append_journal(&self, run: &str, records: &[JournalRecord]) -> Result<(), StateError>;
    /// A run's journal; a torn last line (crash during a write) is ignored.
    fn read_journal(&self, run: &str) -> Result<Vec<JournalRecord>, StateError>;
    /// Store a run artifact (saved plan, report) atomically.
    fn write_artifact(&self, name: &str, bytes: &[u8]) -> Result<(), StateError>;
    fn read_artifact(&self, name: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// The secret that authenticates this plan's saved plan files, made on first use. It
    /// lives with the state so that whoever may apply (can read the state) can check a file.
    fn plan_key(&self) -> Result<[u8; 32], StateError>;
    /// Set the plan key (a migration brings the old one, so saved plan files stay valid).
    fn import_plan_key(&self, key: [u8; 32]) -> Result<(), StateError>;
    /// The runs that have a journal here.
    fn journal_runs(&self) -> Result<Vec<String>, StateError>;
    /// The names of the stored run artifacts.
    fn artifact_names(&self) -> Result<Vec<String>, StateError>;
    /// Slots that hold sites' `max_parallel` across every runner sharing this backend; none
    /// when the backend is one runner's own (the run's limit is then the only one). Nothing
    /// is reached until a slot is asked for.
    fn site_slots(&self) -> Option<std::sync::Arc<dyn SiteSlots>> {
        None
    }
}

#[derive(Debug)]
pub enum UnlockOutcome {
    NotLocked,
    Released(Option<LockHolder>),
    StillHeld(LockHolder),
}
