//! Machines that are programs: `P/M/run` started detached in its own session (it outlives
//! drplan), stopped with SIGTERM and, after the timeout, SIGKILL (see [`crate::os::process`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::os::process::own_session;
pub use crate::os::process::{ProcessId, Stopped, alive, is_executable, stop};

/// Start `run` in `dir` as a new session (it outlives drplan), output to `console.log`.
pub fn start(run: &Path, dir: &Path, env: &BTreeMap<String, String>) -> Result<ProcessId, String> {
    let log = crate::os::fs::open_append(&dir.join("console.log"), crate::os::fs::PRIVATE_FILE)
        .map_err(|e| format!("cannot open {}/console.log: {e}", dir.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = Command::new(run);
    command.current_dir(dir).envs(env).stdin(Stdio::null()).stdout(log).stderr(err);
    own_session(&mut command);
    let child = command.spawn().map_err(|e| format!("cannot start {}: {e}", run.display()))?;
    let pid = child.id();
    // Reap it in the background if it ends while we still run, so it never lingers as a zombie.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    ProcessId::of(pid).ok_or_else(|| format!("{} exited at once; see {}/console.log", run.display(), dir.display()))
}
