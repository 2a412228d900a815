//! Opening a plan for a command, and rendering what went wrong: once, here.

use std::path::Path;

use miette::Diagnostic;

use super::{Ui, exit};
use crate::report::diagnostics::render;
use crate::runs::{Failure, Workspace};
use crate::spec::FileDiagnostic;

/// Print a diagnostic on stderr; the command then exits with an error.
pub fn report(ui: Ui, diagnostic: &dyn Diagnostic) -> u8 {
    if super::output::json_logs() {
        log_diagnostic(diagnostic, None);
    } else {
        err!("{}", render(diagnostic, ui.stderr_style));
    }
    exit::ERROR
}

pub fn report_all(ui: Ui, diagnostics: &[FileDiagnostic]) -> u8 {
    for d in diagnostics {
        if super::output::json_logs() {
            log_diagnostic(d, Some(d.record()));
        } else {
            err!("{}", render(d, ui.stderr_style));
        }
    }
    if diagnostics.iter().any(FileDiagnostic::is_error) { exit::ERROR } else { exit::OK }
}

/// A diagnostic as one structured event (JSON logs): code, message, help and, where it points
/// into a file, the file, line and column.
fn log_diagnostic(diagnostic: &dyn Diagnostic, record: Option<crate::spec::DiagnosticRecord>) {
    let code = diagnostic.code().map(|c| c.to_string()).unwrap_or_else(|| "drplan::error".into());
    let help = diagnostic.help().map(|h| h.to_string());
    let (file, line, column) = match &record {
        Some(r) => (Some(r.file.clone()), r.line, r.column),
        None => (None, None, None),
    };
    let warning = matches!(diagnostic.severity(), Some(miette::Severity::Warning | miette::Severity::Advice));
    if warning {
        tracing::warn!(target: "drplan", code = %code, help = help, file = file, line = line, column = column, "{diagnostic}");
    } else {
        tracing::error!(target: "drplan", code = %code, help = help, file = file, line = line, column = column, "{diagnostic}");
    }
}

/// Render a failure of the library; the command exits with an error.
pub fn fail(ui: Ui, failure: Failure) -> u8 {
    match failure {
        Failure::Plan(problems) => {
            report_all(ui, &crate::spec::collapse(problems));
            exit::ERROR
        }
        Failure::One(diagnostic) => report(ui, diagnostic.as_ref()),
    }
}

/// Load and validate the plan; warnings are printed, errors end the command.
pub fn open(path: &Path, ui: Ui) -> Result<Workspace, u8> {
    let (workspace, warnings) = Workspace::open(path).map_err(|f| fail(ui, f))?;
    report_all(ui, &warnings);
    Ok(workspace)
}
