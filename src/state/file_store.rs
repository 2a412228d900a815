//! The default state backend: a directory beside the plan, `.drplan/<plan name>/`.
//!
//! `state.json` is replaced atomically (the previous version is kept as `state.json.bak`);
//! run journals are append-only JSON lines under `runs/`, fsynced on every append.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use miette::{NamedSource, SourceSpan};

use super::atomic::{sync_dir, write_atomic};
use super::error::StateError;
use super::journal::JournalRecord;
use super::lock::{self, LockHolder, TryLock};
use super::model::State;
use super::{StateLock, StateStore, UnlockOutcome};
use crate::os::fs as fs_os;

/// A 60,000-step run writes about 25 MB of journal; anything near this is not a journal.
const MAX_JOURNAL_BYTES: u64 = 1 << 30;

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
        FileStore {
            plan: plan.to_string(),
            plan_path: plan_path.display().to_string(),
            dir: super::local_state_dir(plan_path, plan),
            journals: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// The file names under `runs/`, sorted.
    fn run_files(&self) -> Result<Vec<String>, StateError> {
        let dir = self.runs_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StateError::io("read", &dir, e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    fn ensure_dir(&self, dir: &Path) -> Result<(), StateError> {
        fs_os::create_private_dir(dir).map_err(|e| StateError::io("create", dir, e))
    }
}

impl StateStore for FileStore {
    /// Put the previous state (`state.json.bak`) back in place, after checking that it reads
    /// and belongs to this plan. Returns its serial.
    fn restore_backup(&self) -> Result<u64, StateError> {
        let backup = self.dir.join("state.json.bak");
        let text = fs::read_to_string(&backup).map_err(|e| StateError::io("read", &backup, e))?;
        let state: State = serde_json::from_str(&text).map_err(|e| corrupt(&backup, &text, &e))?;
        if state.plan != self.plan {
            return Err(StateError::WrongPlan { path: backup, found: state.plan, expected: self.plan.clone() });
        }
        let path = self.state_path();
        write_atomic(&path, text.as_bytes()).map_err(|e| StateError::io("write", &path, e))?;
        Ok(state.serial)
    }

    /// Whether any state was ever saved for this plan.
    fn exists(&self) -> bool {
        self.state_path().exists() || self.runs_dir().exists()
    }

    /// Remove a state directory that this process created and nothing needs: a first command
    /// that failed leaves nothing behind. The `.drplan` folder goes too when it is empty.
    fn discard_new(&self) {
        let _ = fs::remove_dir_all(&self.dir);
        if let Some(parent) = self.dir.parent() {
            let _ = fs::remove_dir(parent);
        }
    }

    fn local_dir(&self) -> PathBuf {
        self.dir.clone()
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn identity(&self) -> String {
        std::path::absolute(&self.dir).unwrap_or_else(|_| self.dir.clone()).display().to_string()
    }

    fn lock(&self, command: &str) -> Result<StateLock, StateError> {
        self.ensure_dir(&self.dir)?;
        match lock::try_lock(&self.lock_path(), command)? {
            TryLock::Acquired(lock) => Ok(StateLock::File(lock)),
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
            // No state yet is a fresh start; state gone while its runs or backup remain is not.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let backup = self.dir.join("state.json.bak");
                if backup.exists() || self.runs_dir().exists() {
                    return Err(StateError::Missing { path, backup, plan_path: self.plan_path.clone() });
                }
                return Ok(State::new(&self.plan));
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(StateError::Corrupt { path, reason: "not UTF-8 text".into(), source_code: None, at: None });
            }
            Err(e) => return Err(StateError::io("read", &path, e)),
        };
        // Check the format first, so a newer file gets a clear message rather than a parse error.
        super::check_format(&text, &path)?;
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
            fs_os::copy_file(&path, &backup).map_err(|e| StateError::io("back up", &backup, e))?;
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
            if !created {
                cut_torn_tail(&path)?;
            }
            let file = fs_os::open_append(&path, fs_os::PRIVATE_FILE).map_err(|e| StateError::io("open", &path, e))?;
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
        let file = match fs_os::open_read(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StateError::io("read", &path, e)),
        };
        // Read into memory only what a journal can be: a regular file of sane size.
        let meta = file.metadata().map_err(|e| StateError::io("read", &path, e))?;
        if !meta.is_file() || meta.len() > MAX_JOURNAL_BYTES {
            let what = if meta.is_file() {
                format!("{} bytes (the limit is {MAX_JOURNAL_BYTES})", meta.len())
            } else {
                "not a regular file".into()
            };
            return Err(StateError::CorruptJournal { path, line: 0, reason: what });
        }
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

    fn import_plan_key(&self, key: [u8; 32]) -> Result<(), StateError> {
        self.ensure_dir(&self.dir)?;
        let path = self.dir.join("plan.key");
        write_atomic(&path, &key).map_err(|e| StateError::io("write", &path, e))
    }

    fn journal_runs(&self) -> Result<Vec<String>, StateError> {
        Ok(self.run_files()?.iter().filter_map(|n| n.strip_suffix(".journal.jsonl").map(str::to_string)).collect())
    }

    fn artifact_names(&self) -> Result<Vec<String>, StateError> {
        Ok(self.run_files()?.into_iter().filter(|n| !n.ends_with(".journal.jsonl") && !n.contains(".torn-")).collect())
    }

    fn plan_key(&self) -> Result<[u8; 32], StateError> {
        let path = self.dir.join("plan.key");
        let read = |path: &Path| -> Result<Option<[u8; 32]>, StateError> {
            match fs::read(path) {
                Ok(bytes) => bytes.try_into().map(Some).map_err(|_| StateError::BadKey { path: path.to_path_buf() }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StateError::io("read", path, e)),
            }
        };
        if let Some(key) = read(&path)? {
            return Ok(key);
        }
        self.ensure_dir(&self.dir)?;
        let key = super::random_key()?;
        // Written whole under another name, then linked into place: a reader never sees half a
        // key, and of two first uses at once the second takes the first one's key.
        let temp = self.dir.join(format!(".plan.key.tmp-{}", std::process::id()));
        let _ = fs::remove_file(&temp);
        let written = crate::os::fs::create_new(&temp, crate::os::fs::PRIVATE_FILE)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &key).and_then(|()| f.sync_all()));
        let linked = written.and_then(|()| fs::hard_link(&temp, &path));
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path)?.ok_or(StateError::BadKey { path }),
            Err(e) => Err(StateError::io("write", &path, e)),
        }
    }
}

/// A crash in the middle of an append leaves the last line without its end. Appending to it
/// would turn it into a corrupt line in the middle of the journal, so it is cut off first,
/// and kept beside the journal (`.torn-<ms>`) for whoever wants to look.
fn cut_torn_tail(path: &Path) -> Result<(), StateError> {
    let io = |e| StateError::io("repair", path, e);
    let file = fs_os::open_write(path, fs_os::PRIVATE_FILE).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1).map_err(io)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    // Find the end of the last whole line, reading backwards.
    let mut end = len;
    let mut keep = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.read_exact_at(part, start).map_err(io)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    let mut torn = vec![0u8; (len - keep) as usize];
    file.read_exact_at(&mut torn, keep).map_err(io)?;
    let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut copy = path.as_os_str().to_owned();
    copy.push(format!(".torn-{stamp}"));
    crate::state::atomic::write_atomic(Path::new(&copy), &torn).map_err(io)?;
    file.set_len(keep).map_err(io)?;
    file.sync_all().map_err(io)
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
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"run\":\"r1\",\"se").unwrap();
        assert_eq!(store.read_journal("r1").unwrap().len(), 2);
        let text = fs::read_to_string(&path).unwrap().replacen("\"seq\":1", "\"seq\":x", 1);
        fs::write(&path, text).unwrap();
        assert!(matches!(store.read_journal("r1"), Err(StateError::CorruptJournal { line: 1, .. })));
    }
}
