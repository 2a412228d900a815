//! Diagnostics as miette reports (people) or JSON records (machines).

use std::fmt::Write as _;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};
use serde::Serialize;

use crate::spec::{DiagnosticRecord, FileDiagnostic};

/// How reports are drawn: colour only for a terminal that wants it.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    pub width: usize,
}

impl Style {
    pub fn plain() -> Self {
        Style { color: false, width: 100 }
    }
}

/// Render any diagnostic as a miette report.
pub fn render(diagnostic: &dyn Diagnostic, style: Style) -> String {
    let theme = if style.color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(style.width).with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, diagnostic).is_err() {
        // Rendering into a String only fails on a broken Display impl; fall back to plain text.
        let _ = write!(out, "{diagnostic}");
    }
    out
}

#[derive(Serialize)]
struct Records<'a> {
    diagnostics: &'a [DiagnosticRecord],
}

/// `{"diagnostics":[...]}` for `--format json`.
pub fn to_json(diagnostics: &[&FileDiagnostic]) -> String {
    let records: Vec<DiagnosticRecord> = diagnostics.iter().map(|d| d.record()).collect();
    serde_json::to_string_pretty(&Records { diagnostics: &records })
        .unwrap_or_else(|e| format!("{{\"diagnostics\":[],\"error\":\"{e}\"}}"))
}

/// "2 errors, 1 warning" (or "no problems").
pub fn tally(diagnostics: &[&FileDiagnostic]) -> String {
    let errors: usize = diagnostics.iter().filter(|d| d.is_error()).map(|d| d.count()).sum();
    let warnings: usize = diagnostics.iter().filter(|d| !d.is_error()).map(|d| d.count()).sum();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => "no problems".to_string(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}
