//! Helpers shared by the CLI tests: run the real binary, normalise its output.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `drplan` with a clean, deterministic environment.
pub fn drplan(cwd: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("drplan").expect("the drplan binary is built by cargo test");
    cmd.current_dir(cwd).env("NO_COLOR", "1").env_remove("COLUMNS").env("DRPLAN_LOG", "off");
    cmd
}

/// Exit code, stdout and stderr in one snapshot-friendly text.
pub fn transcript(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output.status.code().map_or("signal".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
