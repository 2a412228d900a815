//! The plan document: its types, loading with spans, its JSON Schema.
//!
//! This is the bottom layer; everything else consumes what it produces.

pub mod asr;
pub mod block_mapping;
pub mod diagnostic;
pub mod document;
pub mod error;
pub mod load;
pub mod named_map;
pub mod schema;
pub mod schema_types;
pub mod source;
pub mod suggest;
pub mod time_format;

pub use diagnostic::{DiagnosticRecord, FileDiagnostic, collapse};
pub use document::*;
pub use load::{LoadedPlan, load_file, load_str};
pub use source::{SourceFile, span_of};
