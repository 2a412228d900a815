//! The default state backend: a directory beside the plan, `.drplan/<plan name>/`.
//!
//! `state.json` is replaced atomically (the previous version is kept as `state.json.bak`);
//! run journals are append-only JSON lines under `runs/`, fsynced on every append.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use miette::{NamedSource, SourceSpan};

use super::atomic::{sync_dir, write_atomic};
use super::error::StateError;
use super::journal::JournalRecord;
use super::lock::{self, FileLock, LockHolder, TryLock};
use super::model::{STATE_FORMAT, State};
use super::{StateStore, UnlockOutcome};

pub struct FileStore {
    plan: String,
    plan_path: String,
    dir: PathBuf,
    /// Open journal files, kept open so appends cost one write and one fsync.
    journals: Mutex<HashMap<String, File>>,
}

impl FileStore {
    /// The store of plan `plan` whose file is `plan_path`: `<plan dir>/.drplan/<plan>/`.
    pub fn for_plan(plan_path: &Path, plan: &str) -> Self {
        let base = match plan_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        FileStore {
            plan: plan.to_string(),
            plan_path: plan_path.display().to_string(),
            dir: base.join(".drplan").join(plan),
            journals: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether any state was ever saved for this plan.
    pub fn exists(&self) -> bool {
        self.state_path().exists() || self.runs_dir().exists()
    }

    /// Remove a state directory that this process created and nothing needs: a first command
    /// that failed leaves nothing behind. The `.drplan` folder goes too when it is empty.
    pub fn discard_new(&self) {
        let _ = fs::remove_dir_all(&self.dir);
        if let Some(parent) = self.dir.parent() {
            let _ = fs::remove_dir(parent);
        }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    fn runs_dir(&self) -> PathBuf {
        self.dir.join("runs")
    }

    fn journal_path(&self, run: &str) -> PathBuf {
        self.runs_dir().join(format!("{run}.journal.jsonl"))
    }

    fn ensure_dir(&self, dir: &Path) -> Result<(), StateError> {
        fs::create_dir_all(dir).map_err(|e| StateError::io("create", dir, e))
    }
}

impl StateStore for FileStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn lock(&self, command: &str) -> Result<FileLock, StateError> {
        self.ensure_dir(&self.dir)?;
        match lock::try_lock(&self.lock_path(), command)? {
            TryLock::Acquired(lock) => Ok(lock),
            TryLock::HeldBy(holder) => Err(StateError::Locked {
                plan: self.plan.clone(),
                plan_path: self.plan_path.clone(),
                holder: holder.map_or_else(|| "another process (no holder recorded)".to_string(), |h| h.to_string()),
            }),
        }
    }

    fn lock_holder(&self) -> Result<Option<LockHolder>, StateError> {
        lock::holder(&self.lock_path())
    }

    fn unlock(&self, force: bool) -> Result<UnlockOutcome, StateError> {
        let path = self.lock_path();
        if !path.exists() {
            return Ok(UnlockOutcome::NotLocked);
        }
        match self.lock_holder()? {
            None => {
                fs::remove_file(&path).map_err(|e| StateError::io("remove", &path, e))?;
                Ok(UnlockOutcome::NotLocked)
            }
            Some(holder) if force => {
                // The holder keeps its lock on the unlinked file; new runs lock a new one.
                fs::remove_file(&path).map_err(|e| StateError::io("remove", &path, e))?;
                Ok(UnlockOutcome::Released(Some(holder)))
            }
            Some(holder) => Ok(UnlockOutcome::StillHeld(holder)),
        }
    }

    fn load(&self) -> Result<State, StateError> {
        let path = self.state_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::new(&self.plan)),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(StateError::Corrupt { path, reason: "not UTF-8 text".into(), source_code: None, at: None });
            }
            Err(e) => return Err(StateError::io("read", &path, e)),
        };
        // Check the format first, so a newer file gets a clear message rather than a parse error.
        if let Ok(probe) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(found) = probe.get("format").and_then(|f| f.as_u64())
            && found > STATE_FORMAT as u64
        {
            return Err(StateError::NewerFormat { path, found: found as u32, supported: STATE_FORMAT });
        }
        let state: State = serde_json::from_str(&text).map_err(|e| corrupt(&path, &text, &e))?;
        if state.plan != self.plan {
            return Err(StateError::WrongPlan { path, found: state.plan, expected: self.plan.clone() });
        }
        Ok(state)
    }

    fn save(&self, state: &mut State) -> Result<(), StateError> {
        self.ensure_dir(&self.dir)?;
        let path = self.state_path();
        state.serial += 1;
        state.updated_at = Some(SystemTime::now());
        let mut bytes = serde_json::to_vec_pretty(state)
            .map_err(|e| StateError::io("serialise", &path, std::io::Error::other(e.to_string())))?;
        bytes.push(b'\n');
        if path.exists() {
            // Keep the previous version: a corrupt state can be restored by hand.
            let backup = self.dir.join("state.json.bak");
            fs::copy(&path, &backup).map_err(|e| StateError::io("back up", &backup, e))?;
        }
        write_atomic(&path, &bytes).map_err(|e| StateError::io("write", &path, e))
    }

    fn append_journal(&self, run: &str, records: &[JournalRecord]) -> Result<(), StateError> {
        if records.is_empty() {
            return Ok(());
        }
        let path = self.journal_path(run);
        let mut text = Vec::with_capacity(records.len() * 160);
        for record in records {
            serde_json::to_writer(&mut text, record)
                .map_err(|e| StateError::io("serialise", &path, std::io::Error::other(e.to_string())))?;
            text.push(b'\n');
        }
        let mut journals = self.journals.lock().unwrap_or_else(|p| p.into_inner());
        if !journals.contains_key(run) {
            self.ensure_dir(&self.runs_dir())?;
            let created = !path.exists();
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| StateError::io("open", &path, e))?;
            if created {
                sync_dir(&self.runs_dir()).map_err(|e| StateError::io("sync", self.runs_dir(), e))?;
            }
            journals.insert(run.to_string(), file);
        }
        let file = journals.get_mut(run).expect("inserted above");
        file.write_all(&text).map_err(|e| StateError::io("append to", &path, e))?;
        file.sync_data().map_err(|e| StateError::io("fsync", &path, e))
    }

    fn read_journal(&self, run: &str) -> Result<Vec<JournalRecord>, StateError> {
        let path = self.journal_path(run);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StateError::io("read", &path, e)),
        };
        let mut lines: Vec<(usize, String)> = Vec::new();
        let mut reader = BufReader::new(file);
        let mut torn_tail = false;
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).map_err(|e| StateError::io("read", &path, e))?;
            if n == 0 {
                break;
            }
            if !line.ends_with('\n') {
                torn_tail = true;
            }
            lines.push((lines.len() + 1, line));
        }
        let last = lines.len();
        let mut records = Vec::with_capacity(lines.len());
        for (number, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<JournalRecord>(&line) {
                Ok(record) => records.push(record),
                // A crash mid-append leaves at most the last line incomplete.
                Err(_) if number == last && torn_tail => break,
                Err(e) => return Err(StateError::CorruptJournal { path, line: number, reason: e.to_string() }),
            }
        }
        Ok(records)
    }

    fn write_artifact(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.runs_dir().join(name);
        write_atomic(&path, bytes).map_err(|e| StateError::io("write", &path, e))
    }

    fn read_artifact(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.runs_dir().join(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::io("read", &path, e)),
        }
    }
}

fn corrupt(path: &Path, text: &str, error: &serde_json::Error) -> StateError {
    let offset = byte_offset(text, error.line(), error.column());
    StateError::Corrupt {
        path: path.to_path_buf(),
        reason: error.to_string(),
        source_code: Some(std::sync::Arc::new(
            NamedSource::new(path.display().to_string(), text.to_string()).with_language("json"),
        )),
        at: offset.map(|o| SourceSpan::new(o.into(), 0)),
    }
}

/// serde_json reports 1-based lines and columns; miette wants a byte offset.
pub fn byte_offset(text: &str, line: usize, column: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let start: usize = text.split_inclusive('\n').take(line - 1).map(str::len).sum();
    Some((start + column.saturating_sub(1)).min(text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::journal::JournalEvent;

    fn store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::for_plan(&dir.path().join("plan.yaml"), "shop");
        (dir, store)
    }

    #[test]
    fn save_bumps_serial_and_keeps_lineage() {
        let (_dir, store) = store();
        let mut state = store.load().unwrap();
        assert_eq!(state.serial, 0);
        let lineage = state.lineage.clone();
        store.save(&mut state).unwrap();
        store.save(&mut state).unwrap();
        let again = store.load().unwrap();
        assert_eq!((again.serial, again.lineage), (2, lineage));
    }

    #[test]
    fn corrupt_state_points_at_the_problem() {
        let (_dir, store) = store();
        let mut state = store.load().unwrap();
        store.save(&mut state).unwrap();
        fs::write(store.state_path(), "{\n  \"format\": 1,\n  \"lineage\": oops\n}").unwrap();
        match store.load() {
            Err(StateError::Corrupt { at: Some(at), .. }) => assert_eq!(at.offset(), 30), // the `o` of `oops`,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn second_lock_is_refused_with_the_holder() {
        let (_dir, store) = store();
        let _held = store.lock("drplan apply").unwrap();
        match store.lock("drplan plan") {
            Err(StateError::Locked { holder, .. }) => assert!(holder.contains("drplan apply"), "{holder}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn torn_last_journal_line_is_ignored_but_corruption_elsewhere_is_not() {
        let (_dir, store) = store();
        let record = |seq| JournalRecord {
            run: "r1".into(),
            seq,
            at: SystemTime::UNIX_EPOCH,
            step: "start/db1".into(),
            event: JournalEvent::Started { attempt: 1 },
        };
        store.append_journal("r1", &[record(1), record(2)]).unwrap();
        let path = store.journal_path("r1");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"run\":\"r1\",\"se").unwrap();
        assert_eq!(store.read_journal("r1").unwrap().len(), 2);
        let text = fs::read_to_string(&path).unwrap().replacen("\"seq\":1", "\"seq\":x", 1);
        fs::write(&path, text).unwrap();
        assert!(matches!(store.read_journal("r1"), Err(StateError::CorruptJournal { line: 1, .. })));
    }
}
