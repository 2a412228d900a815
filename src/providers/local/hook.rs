//! Programs around a recovery point (the plan's freeze and thaw, a machine's `quiesce`): run
//! directly from an argv, never through a shell, and killed after their timeout.

use std::path::Path;
use std::time::{Duration, Instant};

/// Run `argv` in `cwd` with `env` added; true when it exits successfully within `timeout`.
pub fn run(argv: &[String], cwd: &Path, env: &[(&str, String)], timeout: Duration) -> bool {
    let Some((program, args)) = argv.split_first() else { return false };
    let mut command = std::process::Command::new(program);
    command.args(args).current_dir(cwd).stdin(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::warn!("{program} could not run: {e}");
            return false;
        }
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                tracing::warn!("{program} did not finish within {timeout:?}: killed");
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// The plan's thaw, run when this goes (after the point's copy, or when it failed).
pub struct Thaw<'a> {
    pub argv: &'a [String],
    pub cwd: &'a Path,
    pub env: Vec<(&'static str, String)>,
    pub timeout: Duration,
}

impl Drop for Thaw<'_> {
    fn drop(&mut self) {
        if !run(self.argv, self.cwd, &self.env, self.timeout) {
            tracing::warn!("the thaw program {:?} failed: the application may still be frozen", self.argv);
        }
    }
}
