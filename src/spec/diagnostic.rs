//! A diagnostic bound to the file it is about, so it can be rendered anywhere.

use std::fmt;
use std::path::{Path, PathBuf};

use miette::{Diagnostic, LabeledSpan, Severity, SourceCode};
use serde::Serialize;

use super::source::SourceFile;

/// Any diagnostic plus the plan file it points into.
pub struct FileDiagnostic {
    path: PathBuf,
    source: Option<SourceFile>,
    inner: Box<dyn Diagnostic + Send + Sync>,
}

impl FileDiagnostic {
    pub fn new(source: SourceFile, inner: impl Diagnostic + Send + Sync + 'static) -> Self {
        FileDiagnostic { path: source.path().to_path_buf(), source: Some(source), inner: Box::new(inner) }
    }

    /// For failures before any text exists (a missing file).
    pub fn without_source(path: &Path, inner: impl Diagnostic + Send + Sync + 'static) -> Self {
        FileDiagnostic { path: path.to_path_buf(), source: None, inner: Box::new(inner) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_error(&self) -> bool {
        !matches!(self.inner.severity(), Some(Severity::Warning | Severity::Advice))
    }

    pub fn code_str(&self) -> String {
        self.inner.code().map(|c| c.to_string()).unwrap_or_else(|| "drplan::error".into())
    }

    /// The primary label (or the first one): where the offending node starts.
    fn primary_label(&self) -> Option<LabeledSpan> {
        let labels: Vec<LabeledSpan> = self.inner.labels()?.collect();
        let primary = labels.iter().position(|l| l.primary()).unwrap_or(0);
        labels.into_iter().nth(primary)
    }

    /// 1-based line and column of the offending node, when the diagnostic points into the file.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let source = self.source.as_ref()?;
        let label = self.primary_label()?;
        Some(source.line_col(label.offset()))
    }

    /// The machine-readable form used by `--format json`.
    pub fn record(&self) -> DiagnosticRecord {
        let (line, column) = self.line_col().map_or((None, None), |(l, c)| (Some(l), Some(c)));
        DiagnosticRecord {
            severity: if self.is_error() { "error" } else { "warning" },
            code: self.code_str(),
            message: self.inner.to_string(),
            file: self.path.display().to_string(),
            line,
            column,
            help: self.inner.help().map(|h| h.to_string()),
        }
    }
}

/// One diagnostic as JSON: line and column are 1-based, at the start of the offending node.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnosticRecord {
    pub severity: &'static str,
    pub code: String,
    pub message: String,
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl fmt::Debug for FileDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileDiagnostic")
            .field("path", &self.path)
            .field("code", &self.code_str())
            .field("message", &self.inner.to_string())
            .finish()
    }
}

impl fmt::Display for FileDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for FileDiagnostic {}

impl Diagnostic for FileDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.code()
    }

    fn severity(&self) -> Option<Severity> {
        self.inner.severity()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.help()
    }

    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.url()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match &self.source {
            Some(source) => Some(source.code_ref()),
            None => self.inner.source_code(),
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        // A label without source text would make miette print nothing useful.
        self.source.as_ref()?;
        self.inner.labels()
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        self.inner.related()
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.inner.diagnostic_source()
    }
}
