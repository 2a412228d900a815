//! Providers: the platforms drplan drives. Each implements [`crate::exec::Provider`].

pub mod claims;
pub mod local;
pub mod plugin;
pub mod sim;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::contract::{Provider, ProviderError};
use crate::spec::ProviderKind;
use crate::validate::Model;

/// The provider that drives the plan's sites. All sites of a plan use one provider, since
/// replication and failover connect them.
pub fn open(model: &Model) -> Result<Arc<dyn Provider>, ProviderError> {
    let kinds: BTreeSet<&str> = model.sites.iter().map(|s| s.provider_name.as_str()).collect();
    if kinds.len() > 1 {
        return Err(ProviderError::setup(
            format!(
                "the sites of plan `{}` use different providers ({})",
                model.name,
                kinds.into_iter().collect::<Vec<_>>().join(", ")
            ),
            "replication connects the sites of a plan, so they must all use the same provider",
        ));
    }
    match model.site(model.protection.primary).provider {
        ProviderKind::Sim => Ok(Arc::new(sim::SimProvider::open(model)?)),
        ProviderKind::Local => Ok(Arc::new(local::LocalProvider::open(model)?)),
        ProviderKind::Plugin => Ok(Arc::new(plugin::open(model)?)),
    }
}
