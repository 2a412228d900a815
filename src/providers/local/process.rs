//! Machines that are programs: `P/M/run` started detached in its own session, stopped with
//! SIGTERM and, after the timeout, SIGKILL. Liveness survives drplan restarts: the pid and
//! its start time are recorded, so a reused pid is never mistaken for the machine.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::records::ProcessId;

pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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

pub fn alive(process: &ProcessId) -> bool {
    start_ticks(process.pid) == Some(process.start_ticks) && !is_zombie(process.pid)
}

/// Start `run` in `dir` as a new session (it outlives drplan), output to `console.log`.
pub fn start(run: &Path, dir: &Path, env: &BTreeMap<String, String>) -> Result<ProcessId, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("console.log"))
        .map_err(|e| format!("cannot open {}/console.log: {e}", dir.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = Command::new(run);
    command.current_dir(dir).envs(env).stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: setsid is async-signal-safe and only detaches the child from our session.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| format!("cannot start {}: {e}", run.display()))?;
    let pid = child.id();
    // Reap it in the background if it ends while we still run, so it never lingers as a zombie.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    let start_ticks = start_ticks(pid)
        .ok_or_else(|| format!("{} exited at once; see {}/console.log", run.display(), dir.display()))?;
    Ok(ProcessId { pid, start_ticks })
}

/// SIGTERM the machine's process group, wait up to `timeout`, then SIGKILL.
pub fn stop(process: &ProcessId, timeout: Duration) -> Result<bool, String> {
    if !alive(process) {
        return Ok(false);
    }
    let pgid = process.pid as i32;
    // SAFETY: kill() with a process-group id we created via setsid.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !alive(process) {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !alive(process) {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("process {} did not stop, even after SIGKILL", process.pid))
}
