//! Saved plan files: JSON with a format version and a checksum, written atomically.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::action::{ActionPlan, PLAN_FILE_FORMAT};
use super::error::PlanError;
use crate::state::atomic::write_atomic_parts;

/// `{"drplan_plan":1,"checksum":"…","body":{…}}`: the checksum covers the body's exact bytes.
#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    drplan_plan: serde_json::Value,
    checksum: String,
    #[serde(borrow)]
    body: &'a RawValue,
}

fn checksum(body: &str) -> String {
    blake3::hash(body.as_bytes()).to_hex().to_string()
}

/// The envelope around a plan's body, written as its parts: a 10,000-machine plan (~60,000
/// actions) has a body of tens of MiB, not worth copying again to wrap it. Compact JSON;
/// the same bytes `Envelope` would serialize to.
fn envelope_parts(plan: &ActionPlan) -> Result<(String, String), String> {
    let body = serde_json::to_string(plan).map_err(|e| e.to_string())?;
    let head = format!("{{\"drplan_plan\":{PLAN_FILE_FORMAT},\"checksum\":\"{}\",\"body\":", checksum(&body));
    Ok((head, body))
}

pub fn to_bytes(plan: &ActionPlan) -> Result<Vec<u8>, String> {
    let (head, body) = envelope_parts(plan)?;
    Ok([head.as_bytes(), body.as_bytes(), b"}\n"].concat())
}

pub fn save(plan: &ActionPlan, path: &Path) -> Result<(), PlanError> {
    let unwritable = |reason: String| PlanError::Unwritable { path: path.to_path_buf(), reason };
    let (head, body) = envelope_parts(plan).map_err(unwritable)?;
    write_atomic_parts(path, &[head.as_bytes(), body.as_bytes(), b"}\n"]).map_err(|e| unwritable(e.to_string()))
}

pub fn load(path: &Path) -> Result<ActionPlan, PlanError> {
    let text =
        std::fs::read(path).map_err(|e| PlanError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    from_bytes(path, &text)
}

pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<ActionPlan, PlanError> {
    // Plan files are one long line of JSON: a source snippet would print all of it, so the
    // reason carries the position instead.
    let corrupt = |reason: String| PlanError::CorruptFile { path: path.to_path_buf(), reason };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(corrupt("not UTF-8 text; is this a plan file?".into()));
    };
    let envelope: Envelope =
        serde_json::from_str(text).map_err(|e| corrupt(format!("not a drplan plan file ({e})")))?;
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
    if checksum(envelope.body.get()) != envelope.checksum {
        return Err(corrupt("checksum mismatch: the file was edited or damaged after it was saved".into()));
    }
    serde_json::from_str(envelope.body.get()).map_err(|e| corrupt(format!("unexpected content: {e}")))
}
