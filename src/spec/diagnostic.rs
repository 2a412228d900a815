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
    /// How many times this very problem (same code, same message) was found.
    repeats: usize,
    /// For the line that counts what [`collapse`] did not show: how many problems it stands for.
    stands_for: usize,
}

/// At most this many diagnostics of one code are shown one by one; the rest are counted.
pub const SHOWN_PER_CODE: usize = 20;

/// One diagnostic per cause: the same problem found again at the same place (a YAML alias
/// used many times) is counted, not repeated, and beyond [`SHOWN_PER_CODE`] of one code the
/// rest become one line that says how many. Rendering stays proportional to what is shown.
pub fn collapse(diagnostics: Vec<FileDiagnostic>) -> Vec<FileDiagnostic> {
    use std::collections::HashMap;
    let mut out: Vec<FileDiagnostic> = Vec::new();
    let mut seen: HashMap<(String, PathBuf, String), usize> = HashMap::new();
    let mut per_code: HashMap<String, usize> = HashMap::new();
    let mut hidden: Vec<(String, PathBuf, usize, bool)> = Vec::new();
    for d in diagnostics {
        let code = d.code_str();
        // The message names the culprit, so one message is one cause wherever it is found
        // (an alias repeats its anchor's problem at every use).
        let key = (code.clone(), d.path.clone(), d.inner.to_string());
        if let Some(&at) = seen.get(&key) {
            out[at].repeats += d.repeats;
            continue;
        }
        let shown = per_code.entry(code.clone()).or_default();
        if *shown >= SHOWN_PER_CODE {
            match hidden.iter_mut().find(|(c, p, _, _)| *c == code && *p == d.path) {
                Some(entry) => entry.2 += d.repeats,
                None => hidden.push((code, d.path.clone(), d.repeats, d.is_error())),
            }
            continue;
        }
        *shown += 1;
        seen.insert(key, out.len());
        out.push(d);
    }
    for (code, path, count, error) in hidden {
        let mut more = FileDiagnostic::without_source(&path, More { code, count, error });
        more.stands_for = count;
        out.push(more);
    }
    out
}

/// The diagnostics of one code beyond those shown: how many there are.
#[derive(Debug)]
struct More {
    code: String,
    count: usize,
    error: bool,
}

impl fmt::Display for More {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} more like the {SHOWN_PER_CODE} above", self.count)
    }
}

impl std::error::Error for More {}

impl Diagnostic for More {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn severity(&self) -> Option<Severity> {
        Some(if self.error { Severity::Error } else { Severity::Warning })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("problems of one kind often share one cause: fix the first ones and try again"))
    }
}

impl FileDiagnostic {
    pub fn new(source: SourceFile, inner: impl Diagnostic + Send + Sync + 'static) -> Self {
        FileDiagnostic {
            path: source.path().to_path_buf(),
            source: Some(source),
            inner: Box::new(inner),
            repeats: 1,
            stands_for: 0,
        }
    }

    /// For failures before any text exists (a missing file).
    pub fn without_source(path: &Path, inner: impl Diagnostic + Send + Sync + 'static) -> Self {
        FileDiagnostic { path: path.to_path_buf(), source: None, inner: Box::new(inner), repeats: 1, stands_for: 0 }
    }

    /// How many problems this entry stands for: the times it was found, or, for the line
    /// that counts those not shown, their number.
    pub fn count(&self) -> usize {
        if self.stands_for > 0 { self.stands_for } else { self.repeats }
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

    /// Whether the lines a snippet would print (each label's line and its neighbours) are
    /// short enough: a generated or hostile file can hold one line of megabytes, and a report
    /// must stay readable (the line and column are still given).
    fn snippet_fits(&self) -> bool {
        const LONGEST_LINE: usize = 2_000;
        let Some(source) = &self.source else { return true };
        let Some(labels) = self.inner.labels() else { return true };
        // Bytes, not str: a label's offset need not fall on a character boundary.
        let text = source.text().as_bytes();
        let line_start = |at: usize| text[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line_end = |at: usize| text[at..].iter().position(|&b| b == b'\n').map_or(text.len(), |i| at + i);
        labels.into_iter().all(|label| {
            let at = label.offset().min(text.len());
            let after = (at + label.len()).min(text.len());
            // miette prints one line of context either side of the labelled lines.
            let start = line_start(line_start(at).saturating_sub(1));
            let end = line_end(after);
            let end = if end < text.len() { line_end(end + 1) } else { end };
            text[start..end].split(|&b| b == b'\n').all(|line| line.len() <= LONGEST_LINE)
        })
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
            message: bounded(self.inner.to_string()),
            file: self.path.display().to_string(),
            line,
            column,
            help: self.inner.help().map(|h| bounded(h.to_string())),
            repeats: self.count(),
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
    /// Found this many times at the same place (a YAML alias used many times).
    #[serde(skip_serializing_if = "is_one")]
    pub repeats: usize,
}

/// A message or hint that echoes a value from the file (an unknown key of a megabyte) keeps
/// its beginning and end; the middle is counted, not printed.
fn bounded(text: String) -> String {
    const LONGEST: usize = 600;
    if text.len() <= LONGEST {
        return text;
    }
    let head_end = (0..=400).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    let tail_start = (text.len() - 100..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
    let left_out = text[head_end..tail_start].chars().count();
    format!("{}…({left_out} characters left out)…{}", &text[..head_end], &text[tail_start..])
}

fn is_one(n: &usize) -> bool {
    *n == 1
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
        f.write_str(&bounded(self.inner.to_string()))?;
        if self.repeats > 1 {
            write!(f, " (found {} times)", self.repeats)?;
        }
        // Without its snippet the place would be lost; say it in words instead.
        if self.source.is_some()
            && !self.snippet_fits()
            && let Some((line, column)) = self.line_col()
        {
            write!(f, "\n  at {}:{line}:{column} (the line is too long to show)", self.path.display())?;
        }
        Ok(())
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
        self.inner.help().map(|h| Box::new(bounded(h.to_string())) as Box<dyn fmt::Display + 'a>)
    }

    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.url()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match &self.source {
            Some(source) if self.snippet_fits() => Some(source.code_ref()),
            Some(_) => None,
            None => self.inner.source_code(),
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        // A label without source text would make miette print nothing useful.
        self.source.as_ref()?;
        if !self.snippet_fits() {
            return None;
        }
        self.inner.labels()
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        self.inner.related()
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.inner.diagnostic_source()
    }
}
