//! Saved plan files: JSON with a format version, a checksum (against damage) and a MAC
//! (against edits), written atomically. The MAC is keyed with a secret kept in the plan's state
//! store, so only a drplan that can read that state can make a plan file `apply` accepts.

use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::action::{ActionPlan, PLAN_FILE_FORMAT};
use super::error::PlanError;
use crate::state::atomic::write_atomic_parts;

/// `{"drplan_plan":1,"checksum":"…","mac":"…","body":{…}}`: the checksum covers the body's
/// exact bytes, the MAC the checksum.
#[derive(Deserialize)]
struct Envelope<'a> {
    drplan_plan: serde_json::Value,
    checksum: String,
    #[serde(default)]
    mac: Option<String>,
    #[serde(borrow)]
    body: &'a RawValue,
}

/// The secret a plan's state store keeps to authenticate the plan files made for it.
pub type PlanKey = [u8; 32];

/// A plan file as read: the plan, and what authenticates it.
pub struct SavedPlan {
    pub plan: ActionPlan,
    checksum: String,
    mac: Option<String>,
}

impl SavedPlan {
    /// Refuse a file `plan --out` did not write with `key` (edited, then re-checksummed; or
    /// made for another state).
    pub fn authenticate(&self, path: &Path, key: &PlanKey) -> Result<(), PlanError> {
        let unauthentic = |reason: &str| PlanError::Unauthenticated { path: path.to_path_buf(), reason: reason.into() };
        let Some(mac) = &self.mac else {
            return Err(unauthentic("it carries no authentication code"));
        };
        let Ok(found) = blake3::Hash::from_hex(mac) else {
            return Err(unauthentic("its authentication code is malformed"));
        };
        // blake3::Hash compares in constant time.
        if found != seal(key, &self.checksum) {
            return Err(unauthentic(
                "its authentication code does not match: it was changed after `drplan plan` wrote it, or made with another state",
            ));
        }
        Ok(())
    }
}

fn seal(key: &PlanKey, checksum: &str) -> blake3::Hash {
    blake3::keyed_hash(key, checksum.as_bytes())
}

fn checksum(body: &str) -> String {
    blake3::hash(body.as_bytes()).to_hex().to_string()
}

/// A plan file as its parts: the envelope's head, the body, the envelope's end. A 10,000-machine
/// plan (~60,000 actions) has a compact body of tens of MiB, not worth copying to wrap it.
fn envelope_parts(plan: &ActionPlan, key: Option<&PlanKey>) -> Result<[String; 3], String> {
    let body = serde_json::to_string(plan).map_err(|e| e.to_string())?;
    let sum = checksum(&body);
    let mac = key.map(|key| format!("\"mac\":\"{}\",", seal(key, &sum).to_hex())).unwrap_or_default();
    let head = format!("{{\"drplan_plan\":{PLAN_FILE_FORMAT},\"checksum\":\"{sum}\",{mac}\"body\":");
    Ok([head, body, "}\n".to_string()])
}

/// The bytes of a plan kept inside the state store (a run's own copy), where no MAC is needed.
pub fn to_bytes(plan: &ActionPlan) -> Result<Vec<u8>, String> {
    Ok(envelope_parts(plan, None)?.concat().into_bytes())
}

/// Write a plan file for `apply`, authenticated with the state's `key`.
pub fn save(plan: &ActionPlan, path: &Path, key: &PlanKey) -> Result<(), PlanError> {
    let unwritable = |reason: String| PlanError::Unwritable { path: path.to_path_buf(), reason };
    let parts = envelope_parts(plan, Some(key)).map_err(unwritable)?;
    write_atomic_parts(path, &parts.each_ref().map(|p| p.as_bytes())).map_err(|e| unwritable(e.to_string()))
}

/// Read a plan file (see [`SavedPlan::authenticate`] before acting on it).
pub fn load(path: &Path) -> Result<SavedPlan, PlanError> {
    let text =
        std::fs::read(path).map_err(|e| PlanError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    read(path, &text)
}

/// A plan kept inside the state store.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<ActionPlan, PlanError> {
    Ok(read(path, bytes)?.plan)
}

fn read(path: &Path, bytes: &[u8]) -> Result<SavedPlan, PlanError> {
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
    let plan = serde_json::from_str(envelope.body.get()).map_err(|e| corrupt(format!("unexpected content: {e}")))?;
    Ok(SavedPlan { plan, checksum: envelope.checksum, mac: envelope.mac })
}
