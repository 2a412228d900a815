//! Reading a plan file into the document model, with spans kept for diagnostics.

use std::io::Read;
use std::path::Path;

use miette::SourceSpan;
use serde_saphyr::{DefaultMessageFormatter, Error as YamlError, MessageFormatter};

use super::block_mapping::BlockMapping;
use super::diagnostic::FileDiagnostic;
use super::document::PlanDocument;
use super::error::LoadError;
use super::source::SourceFile;
use super::suggest;

/// Larger files are refused before parsing: a 10,000-machine plan is about 1 MiB.
pub const MAX_PLAN_BYTES: u64 = 32 * 1024 * 1024;

/// A parsed plan document and the text it came from.
#[derive(Debug)]
pub struct LoadedPlan {
    pub source: SourceFile,
    pub document: PlanDocument,
}

/// Read and parse a plan file. Every failure is a diagnostic bound to the file.
pub fn load_file(path: &Path) -> Result<LoadedPlan, Box<FileDiagnostic>> {
    let bytes = read_limited(path).map_err(|e| Box::new(FileDiagnostic::without_source(path, e)))?;
    match String::from_utf8(bytes) {
        Ok(text) => load_str(path, text),
        Err(e) => {
            let valid_up_to = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            // The lossy text has the same prefix, so the offset still points at the bad byte.
            let source = SourceFile::new(path, text);
            let error = LoadError::NotUtf8 { at: SourceSpan::new(valid_up_to.into(), 1) };
            Err(Box::new(FileDiagnostic::new(source, error)))
        }
    }
}

/// Parse plan text that is already in memory (used by `load_file` and by tests).
pub fn load_str(path: &Path, text: String) -> Result<LoadedPlan, Box<FileDiagnostic>> {
    let source = SourceFile::new(path, text);
    if source.text().trim().is_empty() || only_comments(source.text()) {
        let error = LoadError::Empty { at: SourceSpan::new(0.into(), 0) };
        return Err(Box::new(FileDiagnostic::new(source, error)));
    }
    match serde_saphyr::from_str_with_options::<PlanDocument>(source.text(), yaml_options()) {
        Ok(document) => Ok(LoadedPlan { source, document }),
        Err(e) => {
            let error = classify(&e, &source);
            Err(Box::new(FileDiagnostic::new(source, error)))
        }
    }
}

fn only_comments(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

fn read_limited(path: &Path) -> Result<Vec<u8>, LoadError> {
    let not_found = |e: std::io::Error| LoadError::NotFound { path: path.to_path_buf(), reason: e.to_string() };
    let unreadable = |e: std::io::Error| LoadError::Unreadable { path: path.to_path_buf(), reason: e.to_string() };
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not_found(e),
        _ => unreadable(e),
    })?;
    let meta = file.metadata().map_err(unreadable)?;
    if meta.is_dir() {
        return Err(LoadError::Unreadable {
            path: path.to_path_buf(),
            reason: "it is a directory; pass a plan file such as `plans/app.yaml`".into(),
        });
    }
    if meta.len() > MAX_PLAN_BYTES {
        return Err(LoadError::TooLarge { size: meta.len(), limit: MAX_PLAN_BYTES });
    }
    // The size check above can race with a growing file; the take() bounds it anyway.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_PLAN_BYTES + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > MAX_PLAN_BYTES {
        return Err(LoadError::TooLarge { size: bytes.len() as u64, limit: MAX_PLAN_BYTES });
    }
    Ok(bytes)
}

/// How plan documents are parsed (the benchmarks' untyped baselines parse the same way).
pub fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    // Defaults suit small configs; a 10,000-machine plan has a few hundred thousand nodes.
    budget.max_events = 40_000_000;
    budget.max_nodes = 20_000_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Turn a loader error into a diagnostic with a precise span and a useful hint.
fn classify(error: &YamlError, source: &SourceFile) -> LoadError {
    let inner = error.without_snippet();
    let at = error.location().map(|l| source.span_at(&l)).unwrap_or_else(|| SourceSpan::new(0.into(), 0));
    let message = DefaultMessageFormatter.format_message(inner).into_owned();
    match inner {
        YamlError::SerdeUnknownField { field, expected, .. } => {
            LoadError::UnknownField { field: field.clone(), at, help: allowed_help("field", field, expected) }
        }
        YamlError::SerdeMissingField { field, .. } => {
            // The loader notices at the mapping's last key; the mapping starts at its first.
            let at = match BlockMapping::around(source.text(), at.offset()) {
                Some(mapping) => {
                    let start = mapping.first_key();
                    let key_len = mapping.keys.last().map_or(0, |(_, k)| k.len());
                    SourceSpan::new(start.into(), key_len)
                }
                None => at,
            };
            LoadError::MissingField { field: field.to_string(), at }
        }
        YamlError::SerdeUnknownVariant { variant, expected, .. } => {
            LoadError::UnknownVariant { value: variant.clone(), at, help: allowed_help("value", variant, expected) }
        }
        YamlError::DuplicateMappingKey { key, .. } => {
            let key = key.clone().unwrap_or_else(|| "?".into());
            let mapping = BlockMapping::around(source.text(), at.offset());
            let first = mapping.as_ref().and_then(|m| m.earlier(&key)).map(|f| SourceSpan::new(f.into(), key.len()));
            match (first, mapping.and_then(|m| m.parent)) {
                // Site names are the keys of `sites`: a repeated one is a duplicate name.
                (Some(first), Some(parent)) if parent == "sites" => LoadError::DuplicateSite { name: key, first, at },
                (first, _) => LoadError::DuplicateKey { first, key, at },
            }
        }
        YamlError::Budget { .. } => LoadError::TooComplex { message, at },
        YamlError::NullIntoString { .. } => LoadError::InvalidType {
            message: "this needs a value and has none".into(),
            at,
            help: "write the value after the colon (quote it if it is meant to be empty: \"\")".into(),
        },
        YamlError::SerdeInvalidType { .. }
        | YamlError::SerdeInvalidValue { .. }
        | YamlError::SerdeInvalidLength { .. }
        | YamlError::InvalidScalar { .. }
        | YamlError::UnexpectedValueForUnit { .. }
        | YamlError::UnexpectedValueForUnitEnumVariant { .. }
        | YamlError::ExternallyTaggedEnumExpectedScalarOrMapping { .. }
        | YamlError::Unexpected { .. }
        | YamlError::ExpectedMappingEndAfterEnumVariantValue { .. } => LoadError::InvalidType {
            message: in_plain_words(&message),
            at,
            help: "see `drplan schema` (or the plan format in README.md) for what this field takes".into(),
        },
        YamlError::MultipleDocuments { .. } => LoadError::Syntax {
            message: "a plan file holds exactly one YAML document".into(),
            at,
            help: "remove the second `---` document or move it to its own file".into(),
        },
        _ if message.contains("tab") => {
            // The scanner reports where it was (often the end of the line before); the reader
            // wants the tab itself.
            let at = tab_near(source.text(), at.offset()).map_or(at, |t| SourceSpan::new(t.into(), 1));
            LoadError::Syntax {
                message,
                at,
                help: "YAML indents with spaces only; replace this tab with spaces".into(),
            }
        }
        _ => {
            LoadError::Syntax { message, at, help: "check indentation, quoting and brackets around this point".into() }
        }
    }
}

/// The loader speaks of Rust types (`u32`, `Option<String>`); a plan's author reads YAML.
fn in_plain_words(message: &str) -> String {
    const WORDS: [(&str, &str); 10] = [
        ("invalid u8", "expected a whole number from 0 to 255"),
        ("invalid u16", "expected a whole number from 0 to 65535"),
        ("invalid u32", "expected a whole number from 0 to 4294967295"),
        ("invalid u64", "expected a whole number of 0 or more"),
        ("invalid usize", "expected a whole number of 0 or more"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u32", "expected a whole number from 0 to 4294967295"),
        ("expected u64", "expected a whole number of 0 or more"),
        ("expected f64", "expected a number"),
    ];
    let mut text = message.to_string();
    for (rust, plain) in WORDS {
        if let Some(at) = text.find(rust)
            && !text[at + rust.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            text.replace_range(at..at + rust.len(), plain);
        }
    }
    text
}

/// The tab in the indentation of the line at `offset`, or else the first tab after it within
/// the next few lines.
fn tab_near(text: &str, offset: usize) -> Option<usize> {
    let line_start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let indent = &text[line_start..offset];
    if let Some(i) = indent.find('\t').filter(|_| indent.trim_start_matches([' ', '\t', '-']).is_empty()) {
        return Some(line_start + i);
    }
    let rest = text.get(offset..)?;
    let window: usize = rest.split_inclusive('\n').take(3).map(str::len).sum();
    rest[..window].find('\t').map(|i| offset + i)
}

fn allowed_help(what: &str, typo: &str, expected: &[&'static str]) -> String {
    let list = expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ");
    match suggest::closest(typo, expected.iter().copied()) {
        Some(best) => format!("did you mean `{best}`? allowed {what}s here: {list}"),
        None if expected.is_empty() => format!("no {what}s are allowed here"),
        None => format!("allowed {what}s here: {list}"),
    }
}
