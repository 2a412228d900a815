//! Providers that are other programs (plugins), spoken to over the plugin protocol
//! (`docs/provider-protocol.md`): the client side ([`PluginProvider`]), the server side that
//! serves drplan's own providers (`drplan provider serve`), and the conformance kit's fixture
//! (`drplan provider test`).

mod client;
pub mod errors;
pub mod fixture;
mod provider;
pub mod serve;
pub mod settings;

use std::path::PathBuf;

pub use client::Launch;
pub use provider::{PluginProvider, plan_view, start};

use crate::contract::ProviderError;
use crate::validate::{Model, SiteSpec};

/// The plan's plugin (started by its first call).
pub fn open(model: &Model) -> Result<PluginProvider, ProviderError> {
    let launch = launch_for(model, model.site(model.protection.primary))?;
    Ok(PluginProvider::new(launch, plan_view(model)))
}

/// How to start the plugin of `site`: its argv, in the plan file's directory.
fn launch_for(model: &Model, site: &SiteSpec) -> Result<Launch, ProviderError> {
    let argv = site.plugin.clone().ok_or_else(|| {
        ProviderError::setup(
            format!("no provider plugin `{}` is installed here", site.provider_name),
            format!(
                "install `drplan-provider-{}` next to drplan or on PATH, or give the site `plugin: [ARGV...]`",
                site.provider_name
            ),
        )
    })?;
    let dir = model.source.path().parent().map(|d| d.to_path_buf()).filter(|d| !d.as_os_str().is_empty());
    Ok(Launch { name: site.provider_name.clone(), argv, dir: dir.unwrap_or_else(|| PathBuf::from(".")) })
}
