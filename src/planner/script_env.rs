//! A script's environment in an action plan. Plan files and run plans are kept (in state, in
//! CI artifacts), so a value from the plan document is kept only as a digest keyed with the
//! state's secret, and a `from_env` variable only by its name; values are put back (from the
//! document) or read (from drplan's environment) when the step runs.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validate::EnvSpec;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScriptEnv {
    /// Set by drplan itself (`DRPLAN_*`): not secret, kept as it is.
    Given(String),
    /// Written in the plan document.
    Literal {
        digest: String,
        /// Present while the plan was made or refilled from the document in this process.
        #[serde(skip)]
        value: Option<String>,
    },
    /// drplan's own variable of this name, read when the step runs.
    FromEnv { from_env: String },
}

impl fmt::Debug for ScriptEnv {
    // Never a literal's value: a debug print may end up in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptEnv::Given(v) => write!(f, "{v:?}"),
            ScriptEnv::Literal { digest, .. } => write!(f, "<literal {}>", &digest[..digest.len().min(12)]),
            ScriptEnv::FromEnv { from_env } => write!(f, "<from_env {from_env}>"),
        }
    }
}

/// The digest of a literal value under the state's key.
pub fn digest(key: &[u8; 32], value: &str) -> String {
    blake3::keyed_hash(key, value.as_bytes()).to_hex().to_string()
}

impl ScriptEnv {
    /// As an action keeps a value of the plan document.
    pub fn from_spec(spec: &EnvSpec, key: &[u8; 32]) -> ScriptEnv {
        match spec {
            EnvSpec::Literal(value) => ScriptEnv::Literal { digest: digest(key, value), value: Some(value.clone()) },
            EnvSpec::FromEnv(name) => ScriptEnv::FromEnv { from_env: name.clone() },
        }
    }

    /// The value to run the script with, now.
    pub fn resolve(&self, name: &str) -> Result<String, String> {
        match self {
            ScriptEnv::Given(value) => Ok(value.clone()),
            ScriptEnv::Literal { value: Some(value), .. } => Ok(value.clone()),
            ScriptEnv::Literal { value: None, .. } => {
                Err(format!("the value of `{name}` was not taken from the plan document"))
            }
            ScriptEnv::FromEnv { from_env } => std::env::var(from_env)
                .map_err(|_| format!("`{name}` comes from drplan's variable `{from_env}`, which is not set")),
        }
    }
}

/// Every literal of the document's scripts, by digest: what a plan read back from a file
/// needs to run.
pub fn literals<'a>(specs: impl IntoIterator<Item = &'a EnvSpec>, key: &[u8; 32]) -> HashMap<String, String> {
    specs
        .into_iter()
        .filter_map(|spec| match spec {
            EnvSpec::Literal(value) => Some((digest(key, value), value.clone())),
            EnvSpec::FromEnv(_) => None,
        })
        .collect()
}

/// Put the literal values back into `env` from `known`; the names whose value the document no
/// longer has.
pub fn refill(env: &mut BTreeMap<String, ScriptEnv>, known: &HashMap<String, String>) -> Vec<String> {
    let mut missing = Vec::new();
    for (name, entry) in env.iter_mut() {
        if let ScriptEnv::Literal { digest, value } = entry {
            match known.get(digest.as_str()) {
                Some(found) => *value = Some(found.clone()),
                None if value.is_none() => missing.push(name.clone()),
                None => {}
            }
        }
    }
    missing
}

/// A literal of `env` has only its digest (the plan was read from a file).
pub fn lacks_values(env: &BTreeMap<String, ScriptEnv>) -> bool {
    env.values().any(|e| matches!(e, ScriptEnv::Literal { value: None, .. }))
}

/// The `from_env` variables of `env` that drplan's environment lacks.
pub fn unset(env: &BTreeMap<String, ScriptEnv>) -> Vec<String> {
    env.values()
        .filter_map(|e| match e {
            ScriptEnv::FromEnv { from_env } if std::env::var_os(from_env).is_none() => Some(from_env.clone()),
            _ => None,
        })
        .collect()
}
