//! The shared state of one validation run: the file, what was found so far, name tables.

use std::collections::HashMap;
use std::time::Duration;

use miette::{Severity, SourceSpan};
use serde_saphyr::Spanned;

use super::error::ValidationError;
use crate::spec::schema_types::NAME_PATTERN;
use crate::spec::{span_of, suggest};

#[derive(Default)]
pub(super) struct Checker {
    pub problems: Vec<ValidationError>,
}

impl Checker {
    pub fn report(&mut self, problem: ValidationError) {
        self.problems.push(problem);
    }

    pub fn has_errors(&self) -> bool {
        use miette::Diagnostic;
        self.problems.iter().any(|p| !matches!(p.severity(), Some(Severity::Warning | Severity::Advice)))
    }

    /// Parse a duration field, reporting a diagnostic when it is not one.
    pub fn duration(&mut self, text: &Spanned<String>) -> Option<Duration> {
        match humantime::parse_duration(text.value.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.report(ValidationError::InvalidDuration {
                    text: text.value.clone(),
                    reason: e.to_string(),
                    at: span_of(text),
                });
                None
            }
        }
    }

    /// A duration that must be positive (objectives, timeouts).
    pub fn positive_duration(&mut self, text: &Spanned<String>, help: &'static str) -> Option<Duration> {
        let d = self.duration(text)?;
        if d.is_zero() {
            self.report(ValidationError::ZeroDuration { value: text.value.clone(), help, at: span_of(text) });
            return None;
        }
        Some(d)
    }

    /// Report a name that does not match the name syntax; returns whether it is valid.
    pub fn check_name(&mut self, what: &'static str, name: &Spanned<String>) -> bool {
        if is_valid_name(&name.value) {
            return true;
        }
        self.report(ValidationError::InvalidName { what, name: name.value.clone(), at: span_of(name) });
        false
    }
}

/// Matches [`NAME_PATTERN`]; hand-written to keep validation of large plans fast.
pub(super) fn is_valid_name(name: &str) -> bool {
    debug_assert_eq!(NAME_PATTERN, "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$");
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Names of one kind (sites, machines, groups) and where each was first defined.
pub(super) struct NameTable<'d> {
    index: HashMap<&'d str, (usize, SourceSpan)>,
    /// In document order, for "did you mean" and listings.
    names: Vec<&'d str>,
    what: &'static str,
}

impl<'d> NameTable<'d> {
    /// Build the table, reporting invalid and duplicate names.
    pub fn build(cx: &mut Checker, what: &'static str, names: impl Iterator<Item = &'d Spanned<String>>) -> Self {
        let mut table = NameTable { index: HashMap::new(), names: Vec::new(), what };
        for (i, name) in names.enumerate() {
            cx.check_name(what, name);
            table.names.push(name.value.as_str());
            match table.index.get(name.value.as_str()) {
                Some(&(_, first)) => cx.report(ValidationError::DuplicateName {
                    what,
                    name: name.value.clone(),
                    at: span_of(name),
                    first,
                }),
                None => {
                    table.index.insert(name.value.as_str(), (i, span_of(name)));
                }
            }
        }
        table
    }

    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).map(|&(i, _)| i)
    }

    /// Resolve a reference; on failure report `unknown(name, span, help)`.
    pub fn resolve(
        &self,
        cx: &mut Checker,
        reference: &Spanned<String>,
        unknown: impl FnOnce(String, SourceSpan, String) -> ValidationError,
    ) -> Option<usize> {
        let found = self.get(&reference.value);
        if found.is_none() {
            let help = suggest::help_for(self.what, &reference.value, self.names.iter().copied());
            cx.report(unknown(reference.value.clone(), span_of(reference), help));
        }
        found
    }
}
