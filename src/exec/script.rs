//! Running a script step: an argv with its environment and a timeout, under a supervisor of
//! its own (see [`super::supervisor`]) so that its outcome outlives drplan, and found again by
//! a resumed run instead of being started a second time.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::supervisor::{self, Ending, StepFiles};
use crate::os::process::{ProcessId, alive, signal_group};

/// The last bytes of each output stream kept for the run report.
const OUTPUT_KEPT: usize = 4 * 1024;

/// A script to run: never through a shell; plan values are arguments, not code.
pub struct Script<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub dir: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptResult {
    pub ending: Ending,
    /// stdout then stderr, the tail of each.
    pub output: String,
    /// Started by an earlier drplan, which did not see it end.
    pub reattached: bool,
}

impl ScriptResult {
    pub fn success(&self) -> bool {
        self.ending == Ending::Exited { code: 0 }
    }

    pub fn describe(&self) -> String {
        let ending = self.ending_words();
        match self.reattached {
            true => format!("{ending} (started before drplan was restarted; not run again)"),
            false => ending,
        }
    }

    fn ending_words(&self) -> String {
        match &self.ending {
            Ending::Exited { code } => format!("exited {code}"),
            Ending::Signalled { signal } => format!("killed by signal {signal}"),
            Ending::TimedOut => "timed out (killed)".to_string(),
            Ending::Stopped => "stopped (aborted)".to_string(),
            Ending::NotStarted => "not started".to_string(),
            Ending::CannotStart { error } => error.clone(),
        }
    }

    /// What the files of a finished attempt say; None while no outcome is written.
    pub fn read(files: &StepFiles) -> Option<ScriptResult> {
        let ending = files.ending()?;
        Some(ScriptResult { ending, output: tail(&files.stdout, &files.stderr), reattached: false })
    }
}

/// A script whose supervisor runs, waiting for the go-ahead.
pub struct Spawned {
    child: tokio::process::Child,
    pub process: ProcessId,
    pub files: StepFiles,
}

/// Start the supervisor of `script` (the `drplan` binary at `supervisor`), in a session of its
/// own so that neither a Ctrl-C at the terminal nor drplan's death stops it. The script itself
/// starts only at [`Spawned::go`].
pub fn spawn(supervisor: &Path, script: &Script, files: StepFiles) -> Result<Spawned, String> {
    if let Some(dir) = files.status.parent() {
        crate::os::fs::create_private_dir(dir)
            .map_err(|e| format!("cannot create the step directory {}: {e}", dir.display()))?;
    }
    files.remove();
    let mut command = std::process::Command::new(supervisor);
    command
        .args(supervisor::args(&files, script.timeout, script.dir, script.program, script.args))
        .envs(script.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    crate::os::process::own_session(&mut command);
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(false);
    let child = command.spawn().map_err(|e| format!("cannot start the script supervisor: {e}"))?;
    let process = child
        .id()
        .and_then(ProcessId::of)
        .ok_or_else(|| "the script supervisor ended before it was told to start".to_string())?;
    Ok(Spawned { child, process, files })
}

impl Spawned {
    /// Let the script start (call once its start is journalled).
    pub async fn go(&mut self) -> Result<(), String> {
        let mut stdin = self.child.stdin.take().ok_or_else(|| "the supervisor's stdin is gone".to_string())?;
        stdin.write_all(supervisor::GO).await.map_err(|e| format!("cannot start the script: {e}"))?;
        Ok(())
    }

    /// Wait for the script to end; an abort asks the supervisor to stop it.
    pub async fn wait(mut self, abort: &CancellationToken) -> ScriptResult {
        // Closing stdin without a go-ahead makes the supervisor exit without running anything.
        drop(self.child.stdin.take());
        tokio::select! {
            _ = self.child.wait() => {}
            _ = abort.cancelled() => {
                terminate(&self.process);
                let _ = self.child.wait().await;
            }
        }
        ScriptResult::read(&self.files).unwrap_or(ScriptResult {
            ending: Ending::CannotStart {
                error: "the script supervisor ended without saying how the script did".into(),
            },
            output: String::new(),
            reattached: false,
        })
    }
}

/// What became of an attempt a previous drplan started and did not see end.
pub enum Reattached {
    Finished(ScriptResult),
    /// It never started: running it now runs it once.
    NotStarted,
    /// Nobody knows whether it ran (its supervisor is gone without a word).
    Unknown(String),
}

/// Wait for an attempt started by an earlier drplan (still running, or already done).
pub async fn reattach(process: &ProcessId, files: &StepFiles, abort: &CancellationToken) -> Reattached {
    let mut asked_to_stop = false;
    while alive(process) {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = abort.cancelled(), if !asked_to_stop => {
                terminate(process);
                asked_to_stop = true;
            }
        }
    }
    match ScriptResult::read(files) {
        Some(ScriptResult { ending: Ending::NotStarted, .. }) => Reattached::NotStarted,
        Some(result) => Reattached::Finished(result),
        None => Reattached::Unknown(format!(
            "its supervisor (pid {}) ended without recording an outcome (was the host restarted?)",
            process.pid
        )),
    }
}

/// Ask a supervisor to stop its script (it records the script as stopped). It leads a session
/// of its own, and its group holds only itself: the script has a group of its own.
fn terminate(process: &ProcessId) {
    signal_group(process, libc::SIGTERM);
}

fn tail(stdout: &PathBuf, stderr: &PathBuf) -> String {
    let keep = |path: &PathBuf| {
        let Ok(mut file) = std::fs::File::open(path) else { return String::new() };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(OUTPUT_KEPT as u64)));
        let mut bytes = Vec::new();
        let _ = file.take(OUTPUT_KEPT as u64).read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let mut text = keep(stdout);
    let err = keep(stderr);
    if !err.trim().is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&err);
    }
    text
}
