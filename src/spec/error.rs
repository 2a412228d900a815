//! Why a plan file could not be read or parsed into the document model.

use std::path::PathBuf;

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

/// A plan file that is missing, unreadable, or not a well-formed v1 document.
#[derive(Debug, Error, Diagnostic)]
pub enum LoadError {
    #[error("cannot read plan file `{path}`: {reason}")]
    #[diagnostic(code(drplan::file_not_found), help("check the path; plan files are usually under `plans/`"))]
    NotFound { path: PathBuf, reason: String },

    #[error("cannot read plan file `{path}`: {reason}")]
    #[diagnostic(code(drplan::io), help("check that the file is readable by this user"))]
    Unreadable { path: PathBuf, reason: String },

    #[error("plan file is {size} bytes; the limit is {limit} bytes")]
    #[diagnostic(
        code(drplan::file_too_large),
        help("a plan describes machines, not data; split very large estates into several plans")
    )]
    TooLarge { size: u64, limit: u64 },

    #[error("plan file is not UTF-8 text")]
    #[diagnostic(code(drplan::not_utf8), help("plan files are YAML text encoded as UTF-8; is this the right file?"))]
    NotUtf8 {
        #[label("invalid UTF-8 starts here")]
        at: SourceSpan,
    },

    #[error("plan file is empty")]
    #[diagnostic(
        code(drplan::empty_plan),
        help("start from an example in `plans/`, or see `drplan schema` for the format")
    )]
    Empty {
        #[label("nothing here")]
        at: SourceSpan,
    },

    #[error("{message}")]
    #[diagnostic(code(drplan::yaml_syntax), help("{help}"))]
    Syntax {
        message: String,
        #[label("here")]
        at: SourceSpan,
        help: String,
    },

    #[error("unknown field `{field}`")]
    #[diagnostic(code(drplan::unknown_field))]
    UnknownField {
        field: String,
        #[label("not a field here")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    #[error("missing field `{field}`")]
    #[diagnostic(code(drplan::missing_field), help("add `{field}:` to this section"))]
    MissingField {
        field: String,
        #[label("this section needs `{field}`")]
        at: SourceSpan,
    },

    #[error("unknown value `{value}`")]
    #[diagnostic(code(drplan::unknown_variant))]
    UnknownVariant {
        value: String,
        #[label("not one of the allowed values")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    #[error("duplicate key `{key}`")]
    #[diagnostic(
        code(drplan::duplicate_key),
        help("a key may appear only once in a mapping: site names, address map entries and fields must be unique")
    )]
    DuplicateKey {
        key: String,
        #[label(primary, "defined again here")]
        at: SourceSpan,
        #[label("first defined here")]
        first: Option<SourceSpan>,
    },

    #[error("duplicate site `{name}`")]
    #[diagnostic(
        code(drplan::duplicate_name),
        help("each site needs a unique name; rename one of them or merge their settings")
    )]
    DuplicateSite {
        name: String,
        #[label(primary, "defined again here")]
        at: SourceSpan,
        #[label("first defined here")]
        first: SourceSpan,
    },

    #[error("{message}")]
    #[diagnostic(code(drplan::invalid_type), help("{help}"))]
    InvalidType {
        message: String,
        #[label("here")]
        at: SourceSpan,
        help: String,
    },

    #[error("plan file is too deeply nested or too large to parse safely: {message}")]
    #[diagnostic(
        code(drplan::too_complex),
        help("a plan is a handful of levels deep; this looks generated or corrupted")
    )]
    TooComplex {
        message: String,
        #[label("limit reached here")]
        at: SourceSpan,
    },
}
