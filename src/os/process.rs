//! Processes drplan starts and must find again after a restart: a pid with the time it
//! started, so a reused pid is never mistaken for the process; started in a session of their
//! own, so that they outlive drplan and can be stopped as a group.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A process and when it started: together they identify it across pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub start_ticks: u64,
}

impl ProcessId {
    /// The identity of a process that runs now.
    pub fn of(pid: u32) -> Option<ProcessId> {
        Some(ProcessId { pid, start_ticks: start_ticks(pid)? })
    }
}

pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && has_exec_mode(&m))
}

/// Whether anyone may execute the file these are the metadata of.
pub fn has_exec_mode(meta: &std::fs::Metadata) -> bool {
    meta.permissions().mode() & 0o111 != 0
}

/// The executable file `program` in one of PATH's directories, as a shell would find it.
pub fn on_path(program: &Path) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

/// The executable `program` next to the running executable, else on PATH.
pub fn beside_self_or_on_path(program: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|d| d.join(program)));
    beside.filter(|p| is_executable(p)).or_else(|| on_path(Path::new(program)))
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(true)
}

/// Whether process `pid` exists and has not exited (a zombie holds nothing), whoever it is.
pub fn pid_running(pid: i32) -> bool {
    u32::try_from(pid).is_ok_and(|pid| !is_zombie(pid))
}

pub fn alive(process: &ProcessId) -> bool {
    start_ticks(process.pid) == Some(process.start_ticks) && !is_zombie(process.pid)
}

/// Make a command start in a session of its own: it leads its process group, outlives its
/// parent, and does not get the terminal's Ctrl-C.
pub fn own_session(command: &mut Command) {
    // SAFETY: setsid is async-signal-safe and only detaches the child from our session.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Signal the process group led by `process` (started with [`own_session`]).
pub fn signal_group(process: &ProcessId, signal: libc::c_int) {
    if alive(process) {
        kill_group(process.pid, signal);
    }
}

/// Signal process group `group` (one this process created).
pub fn kill_group(group: u32, signal: libc::c_int) {
    // SAFETY: kill() with the id of a process group we created.
    unsafe {
        libc::kill(-(group as i32), signal);
    }
}

/// How [`stop`] ended a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    NotRunning,
    /// It left after SIGTERM.
    ByItself,
    /// It was still there after the timeout: SIGKILL.
    Killed,
}

/// SIGTERM the process group, wait up to `timeout`, then SIGKILL.
pub fn stop(process: &ProcessId, timeout: Duration) -> Result<Stopped, String> {
    if !alive(process) {
        return Ok(Stopped::NotRunning);
    }
    signal_group(process, libc::SIGTERM);
    if wait_gone(process, timeout) {
        return Ok(Stopped::ByItself);
    }
    signal_group(process, libc::SIGKILL);
    if wait_gone(process, Duration::from_secs(5)) {
        return Ok(Stopped::Killed);
    }
    Err(format!("process {} did not stop, even after SIGKILL", process.pid))
}

/// Wait until the process is gone (true) or `timeout` passed (false).
pub fn wait_gone(process: &ProcessId, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !alive(process) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(process)
}
