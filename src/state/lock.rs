//! The per-plan exclusive lock held while a plan or apply runs.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::error::StateError;
use crate::spec::time_format;

/// Who holds the lock, written into the lock file for the next would-be holder to read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub command: String,
    #[serde(with = "time_format")]
    pub since: SystemTime,
}

impl LockHolder {
    pub fn current(command: &str) -> Self {
        LockHolder {
            pid: std::process::id(),
            host: crate::os::host_name(),
            user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()),
            command: command.to_string(),
            since: SystemTime::now(),
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{} (pid {}, `{}`) since {}",
            self.user,
            self.host,
            self.pid,
            self.command,
            humantime::format_rfc3339_seconds(self.since)
        )
    }
}

/// Held while it lives; the OS releases it if the process dies, so a crash never leaves a
/// stale lock behind on a local filesystem.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub enum TryLock {
    Acquired(FileLock),
    HeldBy(Option<LockHolder>),
}

/// How long a would-be holder keeps trying before it reports the lock as held: long enough
/// to ride out a moment's probe (`drplan unlock`, a status check), far shorter than any run.
const SETTLE: Duration = Duration::from_millis(1500);

pub fn try_lock(path: &Path, command: &str) -> Result<TryLock, StateError> {
    let mut file = crate::os::fs::open_write(path, crate::os::fs::PRIVATE_FILE)
        .map_err(|e| StateError::io("open lock file", path, e))?;
    let deadline = Instant::now() + SETTLE;
    loop {
        match file.try_lock() {
            Ok(()) => {
                let holder = serde_json::to_vec_pretty(&LockHolder::current(command)).unwrap_or_default();
                file.set_len(0).map_err(|e| StateError::io("write lock file", path, e))?;
                file.seek(SeekFrom::Start(0)).map_err(|e| StateError::io("write lock file", path, e))?;
                file.write_all(&holder).map_err(|e| StateError::io("write lock file", path, e))?;
                return Ok(TryLock::Acquired(FileLock { _file: file, path: path.to_path_buf() }));
            }
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Ok(TryLock::HeldBy(read_holder(&mut file))),
            Err(std::fs::TryLockError::Error(e)) => return Err(StateError::io("lock", path, e)),
        }
    }
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Who holds the lock at `path` right now, if anyone. A probe: it never writes the file, and
/// holds it (shared) only for an instant, which a would-be holder rides out.
pub fn holder(path: &Path) -> Result<Option<LockHolder>, StateError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::io("open lock file", path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file).unwrap_or_else(|| LockHolder {
            pid: 0,
            host: "unknown-host".into(),
            user: "unknown".into(),
            command: "unknown".into(),
            since: SystemTime::UNIX_EPOCH,
        }))),
        Err(std::fs::TryLockError::Error(e)) => Err(StateError::io("lock", path, e)),
    }
}
