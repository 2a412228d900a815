//! The `state:` block: which backend keeps the plan's state, and whether that state would
//! depend on the site a failover leaves.

use std::path::Path;

use super::checker::Checker;
use super::error::ValidationError;
use super::model::{SiteSpec, StateBackend};
use crate::spec::document::{PlanDocument, StateBackendKind};
use crate::spec::source::span_of;

/// The default variable holding the PostgreSQL connection string.
pub const DEFAULT_URL_ENV: &str = "DRPLAN_PG_URL";

pub(super) fn check_state(cx: &mut Checker, doc: &PlanDocument, sites: &[SiteSpec], base_dir: &Path) -> StateBackend {
    let block = doc.state.as_ref();
    match block.map(|b| b.backend).unwrap_or_default() {
        StateBackendKind::Postgres => {
            let url_env = match block.and_then(|b| b.url_env.as_ref()) {
                Some(name) => {
                    if !is_env_name(&name.value) {
                        cx.report(ValidationError::BadEnvName { name: name.value.clone(), at: span_of(name) });
                    }
                    name.value.clone()
                }
                None => DEFAULT_URL_ENV.to_string(),
            };
            StateBackend::Postgres { url_env }
        }
        StateBackendKind::File => {
            // File state lives in `.drplan/` beside the plan.
            let primary = sites.iter().find(|s| s.name == doc.protection.primary.value);
            if let Some(site) = primary
                && let Some(site_dir) = &site.path
                && site_dir.is_dir()
                && inside(base_dir, site_dir)
            {
                cx.report(ValidationError::StateInsidePrimary {
                    site: site.name.clone(),
                    dir: site_dir.display().to_string(),
                    at: span_of(&doc.protection.primary),
                });
            }
            StateBackend::File
        }
    }
}

/// Letters, digits and `_`, not starting with a digit.
pub(super) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `dir` is `root` or below it (both resolved, so links and `..` do not hide it).
fn inside(dir: &Path, root: &Path) -> bool {
    match (std::fs::canonicalize(dir), std::fs::canonicalize(root)) {
        (Ok(dir), Ok(root)) => dir.starts_with(root),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_env_name;

    #[test]
    fn environment_variable_names() {
        assert!(is_env_name("DRPLAN_PG_URL") && is_env_name("_X1"));
        assert!(!is_env_name("1X") && !is_env_name("A-B") && !is_env_name("") && !is_env_name("$X"));
    }
}
