//! Saved plan files: JSON with a format version and a checksum, written atomically.

use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::action::{ActionPlan, PLAN_FILE_FORMAT};
use super::error::PlanError;
use crate::state::atomic::write_atomic_parts;

/// `{"drplan_plan":1,"checksum":"…","body":{…}}`: the checksum covers the body's exact bytes.
#[derive(Deserialize)]
struct Envelope<'a> {
    drplan_plan: serde_json::Value,
    checksum: String,
    #[serde(borrow)]
    body: &'a RawValue,
}

fn checksum(body: &str) -> String {
    blake3::hash(body.as_bytes()).to_hex().to_string()
}

/// A plan file as its parts: the envelope's head, the body, the envelope's end. A 10,000-machine
/// plan (~60,000 actions) has a compact body of tens of MiB, not worth copying to wrap it.
fn envelope_parts(plan: &ActionPlan) -> Result<[String; 3], String> {
    let body = serde_json::to_string(plan).map_err(|e| e.to_string())?;
    let head = format!("{{\"drplan_plan\":{PLAN_FILE_FORMAT},\"checksum\":\"{}\",\"body\":", checksum(&body));
    Ok([head, body, "}\n".to_string()])
}

pub fn to_bytes(plan: &ActionPlan) -> Result<Vec<u8>, String> {
    Ok(envelope_parts(plan)?.concat().into_bytes())
}

pub fn save(plan: &ActionPlan, path: &Path) -> Result<(), PlanError> {
    let unwritable = |reason: String| PlanError::Unwritable { path: path.to_path_buf(), reason };
    let parts = envelope_parts(plan).map_err(unwritable)?;
    write_atomic_parts(path, &parts.each_ref().map(|p| p.as_bytes())).map_err(|e| unwritable(e.to_string()))
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
