//! Saved plan files: JSON with a format version and a checksum, written atomically.

use std::path::Path;

use miette::{NamedSource, SourceSpan};
use serde::{Deserialize, Serialize};

use super::action::{ActionPlan, PLAN_FILE_FORMAT};
use super::error::PlanError;
use crate::state::atomic::write_atomic;
use crate::state::file_store::byte_offset;

#[derive(Serialize, Deserialize)]
struct Envelope {
    drplan_plan: serde_json::Value,
    checksum: String,
    body: serde_json::Value,
}

/// The canonical text the checksum covers (keys sorted, no whitespace).
fn checksum(body: &serde_json::Value) -> String {
    let text = serde_json::to_vec(body).unwrap_or_default();
    blake3::hash(&text).to_hex().to_string()
}

pub fn to_bytes(plan: &ActionPlan) -> Result<Vec<u8>, String> {
    let body = serde_json::to_value(plan).map_err(|e| e.to_string())?;
    let envelope = Envelope { drplan_plan: PLAN_FILE_FORMAT.into(), checksum: checksum(&body), body };
    let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub fn save(plan: &ActionPlan, path: &Path) -> Result<(), PlanError> {
    let unwritable = |reason: String| PlanError::Unwritable { path: path.to_path_buf(), reason };
    let bytes = to_bytes(plan).map_err(unwritable)?;
    write_atomic(path, &bytes).map_err(|e| unwritable(e.to_string()))
}

pub fn load(path: &Path) -> Result<ActionPlan, PlanError> {
    let text =
        std::fs::read(path).map_err(|e| PlanError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    from_bytes(path, &text)
}

pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<ActionPlan, PlanError> {
    let corrupt = |reason: String, text: Option<&str>, at: Option<usize>| PlanError::CorruptFile {
        path: path.to_path_buf(),
        reason,
        source_code: text.map(|t| {
            std::sync::Arc::new(NamedSource::new(path.display().to_string(), t.to_string()).with_language("json"))
        }),
        at: at.map(|o| SourceSpan::new(o.into(), 0)),
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(corrupt("not UTF-8 text; is this a plan file?".into(), None, None));
    };
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| {
        let at = byte_offset(text, e.line(), e.column());
        corrupt(format!("not a drplan plan file ({e})"), Some(text), at)
    })?;
    match envelope.drplan_plan.as_u64() {
        Some(v) if v == PLAN_FILE_FORMAT as u64 => {}
        _ => {
            return Err(PlanError::WrongVersion {
                path: path.to_path_buf(),
                found: envelope.drplan_plan.to_string(),
                supported: PLAN_FILE_FORMAT,
            });
        }
    }
    if checksum(&envelope.body) != envelope.checksum {
        return Err(corrupt("checksum mismatch: the file was edited or damaged after it was saved".into(), None, None));
    }
    serde_json::from_value(envelope.body).map_err(|e| corrupt(format!("unexpected content: {e}"), None, None))
}
