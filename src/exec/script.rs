//! Running a script step: an argv with its environment, a timeout, and its output kept.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// The last bytes of a script's output kept for the run report.
const OUTPUT_KEPT: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptResult {
    pub success: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// stdout and stderr interleaved by stream, the tail of each.
    pub output: String,
}

impl ScriptResult {
    pub fn describe(&self) -> String {
        match (self.timed_out, self.exit_code) {
            (true, _) => "timed out (killed)".to_string(),
            (false, Some(0)) => "exited 0".to_string(),
            (false, Some(code)) => format!("exited {code}"),
            (false, None) => "killed by a signal".to_string(),
        }
    }
}

/// Run `program args...` in `dir` with `env` added to the inherited environment.
/// Never through a shell: plan values are arguments, not code.
pub async fn run_script(
    program: &Path,
    args: &[String],
    dir: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<ScriptResult, String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| format!("cannot start `{}`: {e}", program.display()))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let read_all = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        (out, err)
    };
    let waited = tokio::time::timeout(timeout, async {
        let (output, status) = tokio::join!(read_all, child.wait());
        (output, status)
    })
    .await;
    match waited {
        Ok(((out, err), status)) => {
            let status = status.map_err(|e| format!("waiting for `{}`: {e}", program.display()))?;
            Ok(ScriptResult {
                success: status.success(),
                exit_code: status.code(),
                timed_out: false,
                output: tail(&out, &err),
            })
        }
        Err(_) => {
            let _ = child.kill().await;
            Ok(ScriptResult { success: false, exit_code: None, timed_out: true, output: String::new() })
        }
    }
}

fn tail(out: &[u8], err: &[u8]) -> String {
    let keep = |bytes: &[u8]| {
        let start = bytes.len().saturating_sub(OUTPUT_KEPT / 2);
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    };
    let mut text = keep(out);
    let err = keep(err);
    if !err.trim().is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&err);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_output_exit_code_and_environment() {
        let env = BTreeMap::from([("DRPLAN_GROUP".to_string(), "db".to_string())]);
        let r = run_script(
            Path::new("/bin/sh"),
            &["-c".into(), "echo group=$DRPLAN_GROUP; echo oops >&2; exit 3".into()],
            Path::new("."),
            &env,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!((r.success, r.exit_code), (false, Some(3)));
        assert_eq!(r.output, "group=db\noops\n");
    }

    #[tokio::test]
    async fn a_hanging_script_is_killed_at_its_timeout() {
        let r = run_script(
            Path::new("/bin/sleep"),
            &["30".into()],
            Path::new("."),
            &BTreeMap::new(),
            Duration::from_millis(200),
        )
        .await
        .unwrap();
        assert!(r.timed_out && !r.success);
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error() {
        let e = run_script(Path::new("/nonexistent/x"), &[], Path::new("."), &BTreeMap::new(), Duration::from_secs(1))
            .await;
        assert!(e.unwrap_err().contains("cannot start"));
    }
}
