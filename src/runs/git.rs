//! The git commit a plan file is at, for run evidence.

use std::path::Path;
use std::process::Command;

/// `git rev-parse HEAD` in the plan's directory, with `-dirty` when the plan file has
/// uncommitted changes; None outside a repository or without git.
pub fn commit_of(plan: &Path) -> Option<String> {
    let dir = match plan.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let head = Command::new("git").arg("-C").arg(dir).args(["rev-parse", "HEAD"]).output().ok()?;
    if !head.status.success() {
        return None;
    }
    let mut commit = String::from_utf8(head.stdout).ok()?.trim().to_string();
    let file = plan.file_name()?;
    let dirty = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--"])
        .arg(file)
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    if dirty {
        commit.push_str("-dirty");
    }
    Some(commit)
}
