//! A plan file's text, kept for diagnostics: spans, line and column lookups.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};
use serde_saphyr::Spanned;

/// The text of one plan file and where it came from.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    code: Arc<NamedSource<String>>,
    line_starts: Arc<[usize]>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let path = path.into();
        let line_starts: Arc<[usize]> =
            std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        let code = Arc::new(NamedSource::new(path.display().to_string(), text).with_language("yaml"));
        SourceFile { path, code, line_starts }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        self.code.inner()
    }

    /// The directory relative paths in the plan are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The source for miette reports (cheap to clone).
    pub fn code(&self) -> Arc<NamedSource<String>> {
        self.code.clone()
    }

    /// The source as miette wants it for a report.
    pub fn code_ref(&self) -> &dyn miette::SourceCode {
        &*self.code
    }

    /// The span of a location reported by the YAML loader. Scanner errors carry only
    /// line and column (no byte offsets), so those are converted here.
    pub fn span_at(&self, location: &serde_saphyr::Location) -> SourceSpan {
        let span = location.span();
        let text = self.text();
        if let (Some(offset), Some(len)) = (span.byte_offset(), span.byte_len())
            && (offset as usize) <= text.len()
        {
            let offset = offset as usize;
            return SourceSpan::new(offset.into(), (len as usize).min(text.len() - offset));
        }
        let line = (location.line() as usize).clamp(1, self.line_starts.len());
        let start = self.line_starts[line - 1];
        let rest = &text[start..];
        let column = (location.column() as usize).saturating_sub(1);
        let offset = start + rest.char_indices().nth(column).map_or(rest.len(), |(i, _)| i);
        let len = text[offset..].chars().next().map_or(0, char::len_utf8);
        SourceSpan::new(offset.into(), len)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let text = self.text();
        let offset = offset.min(text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = text.get(start..offset).map_or(offset - start, |s| s.chars().count()) + 1;
        (line, column)
    }
}

/// The span of a spanned YAML node, for a diagnostic label.
pub fn span_of<T>(node: &Spanned<T>) -> SourceSpan {
    let span = node.referenced.span();
    let offset = span.byte_offset().unwrap_or(0) as usize;
    let len = span.byte_len().unwrap_or(0) as usize;
    SourceSpan::new(offset.into(), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let file = SourceFile::new("p.yaml", "a: 1\nné: x\n".to_string());
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(5), (2, 1));
        // `x` is after a two-byte character: byte 10, character column 5.
        assert_eq!(file.line_col(10), (2, 5));
        assert_eq!(file.line_col(1000), (3, 1));
    }
}
