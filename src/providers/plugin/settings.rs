//! A plugin's site settings, checked against the JSON Schema the plugin publishes in
//! `initialize` (`drplan validate`): an unknown key, a missing one or a bad value is pointed
//! at where the plan writes it, before any run depends on it.

use std::collections::BTreeMap;

use miette::{Diagnostic, SourceSpan};
use serde_json::Value;
use thiserror::Error;

use super::launch_for;
use super::provider::start;
use crate::spec::FileDiagnostic;
use crate::spec::ProviderKind;
use crate::validate::{Model, SiteSpec};

#[derive(Debug, Error, Diagnostic)]
pub enum SettingsError {
    #[error("plugin `{plugin}` has no setting `{key}`")]
    #[diagnostic(code(drplan::unknown_setting))]
    Unknown {
        plugin: String,
        key: String,
        #[help]
        help: String,
        #[label("not a setting of `{plugin}`")]
        at: SourceSpan,
    },

    #[error("site `{site}` needs setting `{key}` for plugin `{plugin}`")]
    #[diagnostic(code(drplan::missing_setting), help("add `settings: {{ {key}: ... }}` to the site"))]
    Missing {
        site: String,
        plugin: String,
        key: String,
        #[label("this site")]
        at: SourceSpan,
    },

    #[error("setting `{key}` is not valid for plugin `{plugin}`: {reason}")]
    #[diagnostic(code(drplan::invalid_setting), help("{help}"))]
    Invalid {
        plugin: String,
        key: String,
        reason: String,
        help: String,
        #[label("here")]
        at: SourceSpan,
    },

    #[error("the settings of plugin `{plugin}` were not checked: {reason}")]
    #[diagnostic(
        code(drplan::settings_unchecked),
        severity(Warning),
        help(
            "the plugin is asked for its settings schema when the plan is validated; it is checked again when the plan runs"
        )
    )]
    Unchecked {
        plugin: String,
        reason: String,
        #[label("this plugin")]
        at: SourceSpan,
    },
}

/// Ask each plugin of the plan for its settings schema, once, and check every site it drives.
pub async fn check(model: &Model) -> Vec<FileDiagnostic> {
    let mut by_plugin: BTreeMap<&[String], Vec<&SiteSpec>> = BTreeMap::new();
    for site in model.sites.iter().filter(|s| s.provider == ProviderKind::Plugin) {
        if let Some(argv) = &site.plugin {
            by_plugin.entry(argv.as_slice()).or_default().push(site);
        }
    }
    let mut found = Vec::new();
    for sites in by_plugin.values() {
        let first = sites[0];
        let errors = match schema_of(model, first).await {
            Err(reason) => {
                vec![SettingsError::Unchecked { plugin: first.provider_name.clone(), reason, at: first.provider_span }]
            }
            Ok(None) => Vec::new(),
            Ok(Some(schema)) => match jsonschema::validator_for(&schema) {
                Err(e) => vec![SettingsError::Unchecked {
                    plugin: first.provider_name.clone(),
                    reason: format!("its settings schema is not a JSON Schema drplan can use: {e}"),
                    at: first.provider_span,
                }],
                Ok(validator) => sites.iter().flat_map(|site| check_site(&validator, &schema, site)).collect(),
            },
        };
        found.extend(errors.into_iter().map(|e| FileDiagnostic::new(model.source.clone(), e)));
    }
    found
}

async fn schema_of(model: &Model, site: &SiteSpec) -> Result<Option<Value>, String> {
    let launch = launch_for(model, site).map_err(|e| e.to_string())?;
    let (_client, hello) = start(&launch).await.map_err(|e| e.to_string())?;
    Ok(hello.settings_schema)
}

fn check_site(validator: &jsonschema::Validator, schema: &Value, site: &SiteSpec) -> Vec<SettingsError> {
    let instance: serde_json::Map<String, Value> =
        site.settings.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let instance = Value::Object(instance);
    let plugin = site.provider_name.clone();
    let known: Vec<&str> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for error in validator.iter_errors(&instance) {
        match error.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    let help = match crate::spec::suggest::closest(key, known.iter().copied()) {
                        Some(like) => format!("did you mean `{like}`?"),
                        None if known.is_empty() => format!("`{plugin}` takes no settings"),
                        None => format!("`{plugin}` knows: {}", known.join(", ")),
                    };
                    let at = site.setting_spans.get(key).map_or(site.provider_span, |(k, _)| *k);
                    out.push(SettingsError::Unknown { plugin: plugin.clone(), key: key.clone(), help, at });
                }
            }
            jsonschema::error::ValidationErrorKind::Required { property } => out.push(SettingsError::Missing {
                site: site.name.clone(),
                plugin: plugin.clone(),
                key: property.as_str().unwrap_or_default().to_string(),
                at: site.provider_span,
            }),
            _ => {
                let key = error.instance_path().as_str().trim_start_matches('/').to_string();
                let at = site.setting_spans.get(&key).map_or(site.provider_span, |(_, v)| *v);
                let help = describe(schema, &key);
                out.push(SettingsError::Invalid { plugin: plugin.clone(), key, reason: error.to_string(), help, at });
            }
        }
    }
    out
}

/// What the schema says of a setting, for the hint.
fn describe(schema: &Value, key: &str) -> String {
    let property = schema.get("properties").and_then(|p| p.get(key));
    let said = property.and_then(|p| p.get("description")).and_then(Value::as_str);
    let allowed = property.and_then(|p| p.get("enum")).and_then(Value::as_array).map(|values| {
        values.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), |s| format!("`{s}`"))).collect::<Vec<_>>()
    });
    match (said, allowed) {
        (_, Some(allowed)) => format!("one of {}", allowed.join(", ")),
        (Some(said), None) => said.to_string(),
        (None, None) => "see the plugin's documentation (settings are strings)".to_string(),
    }
}
