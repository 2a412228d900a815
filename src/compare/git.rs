//! A plan file as it was at a git revision (`drplan diff PLAN --git REV`).

use std::path::Path;
use std::process::Command;

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum GitError {
    #[error("cannot read `{path}` at revision `{rev}`: {reason}")]
    #[diagnostic(
        code(drplan::git_revision),
        help("the plan must be in a git repository and exist at that revision (`git log -- {path}`)")
    )]
    Show { path: String, rev: String, reason: String },
}

/// The text of `path` at `rev`, read with `git show` (argv, no shell) from the file's folder.
pub fn text_at(path: &Path, rev: &str) -> Result<String, GitError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let fail = |reason: String| GitError::Show { path: path.display().to_string(), rev: rev.into(), reason };
    if rev.starts_with('-') {
        return Err(fail("a revision does not start with `-`".into()));
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .arg("show")
        .arg(format!("{rev}:./{name}"))
        .output()
        .map_err(|e| fail(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    String::from_utf8(out.stdout).map_err(|_| fail("it is not UTF-8 text".into()))
}
