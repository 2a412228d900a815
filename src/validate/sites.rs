//! Sites, protection and the target: which places exist and which one should be active.

use std::path::Path;

use super::checker::{Checker, NameTable};
use super::error::ValidationError;
use super::model::{DEFAULT_KEEP_POINTS, ProtectionSpec, RecoveryPointSel, SiteSpec, TargetSpec};
use crate::spec::{Location, PlanDocument, ProviderKind, span_of};

pub(super) fn check_sites(cx: &mut Checker, doc: &PlanDocument, base_dir: &Path) -> Vec<SiteSpec> {
    let mut specs = Vec::with_capacity(doc.sites.len());
    for (name, site) in doc.sites.iter() {
        let provider = ProviderKind::of(&site.provider.value);
        let plugin = match provider {
            ProviderKind::Plugin => check_plugin(cx, site, base_dir),
            _ => None,
        };
        if site.path.is_none() && provider != ProviderKind::Plugin {
            cx.report(ValidationError::MissingSiteSetting {
                name: name.value.clone(),
                setting: "path",
                provider: provider.as_str(),
                help: match provider {
                    ProviderKind::Local => "a local site is a directory: `{ provider: local, path: lab/dc1 }`",
                    ProviderKind::Sim => "a sim site names its world file: `{ provider: sim, path: sim/world.json }`",
                    ProviderKind::Plugin => "",
                },
                at: span_of(name),
            });
        }
        // Whether the path exists is not checked here: sites usually exist only where the plan
        // runs, not in the pipeline that validates it. `plan` reports a missing one at its path.
        let path = site.path.as_ref().map(|p| base_dir.join(&p.value));
        specs.push(SiteSpec {
            name: name.value.clone(),
            provider,
            provider_name: site.provider.value.clone(),
            plugin,
            path_span: site.path.as_ref().map(span_of),
            path,
            settings: site.settings.iter().map(|(k, v)| (k.value.clone(), v.value.clone())).collect(),
            setting_spans: site.settings.iter().map(|(k, v)| (k.value.clone(), (span_of(k), span_of(v)))).collect(),
            provider_span: span_of(&site.provider),
            max_parallel: site.max_parallel,
        });
    }
    specs
}

/// A plugin site: its name must be a plugin's, and the plugin is found (given as `plugin:`, or
/// `drplan-provider-NAME` next to drplan or on PATH). Not found here is a warning (a pipeline
/// may validate where the plugin is not installed), unless the name is a typo of a built-in.
fn check_plugin(cx: &mut Checker, site: &crate::spec::Site, base_dir: &Path) -> Option<Vec<String>> {
    let name = &site.provider.value;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        cx.report(ValidationError::BadProviderName { name: name.clone(), at: span_of(&site.provider) });
        return None;
    }
    if let Some(argv) = &site.plugin {
        let Some(program) = argv.value.first() else {
            cx.report(ValidationError::EmptyScript {
                field: "plugin",
                example: "[drplan-provider-vmware, --verbose]",
                at: span_of(argv),
            });
            return None;
        };
        let program =
            if program.contains('/') { base_dir.join(program).display().to_string() } else { program.clone() };
        return Some(std::iter::once(program).chain(argv.value.iter().skip(1).cloned()).collect());
    }
    if let Some(found) = crate::os::process::beside_self_or_on_path(&crate::spec::document::plugin_program(name)) {
        return Some(vec![found.display().to_string()]);
    }
    let at = span_of(&site.provider);
    match crate::spec::suggest::closest(name, ["local", "sim"]) {
        Some(builtin) => cx.report(ValidationError::UnknownProvider { name: name.clone(), builtin, at }),
        None => cx.report(ValidationError::PluginNotFound { name: name.clone(), at }),
    }
    None
}

/// A `local` site keeps a machine in the directory named by its `id`: the id must be one plain
/// path component, or paths derived from it would leave the site.
pub(super) fn check_machine_ids(cx: &mut Checker, doc: &PlanDocument) {
    let local = doc.sites.iter().any(|(_, s)| ProviderKind::of(&s.provider.value) == ProviderKind::Local);
    if !local {
        return;
    }
    for id in doc.machines.iter().filter_map(|m| m.id.as_ref()) {
        if !crate::os::fs::is_plain_name(&id.value) {
            cx.report(ValidationError::UnsafeMachineId { id: id.value.clone(), at: span_of(id) });
        }
    }
}

pub(super) fn check_protection(cx: &mut Checker, doc: &PlanDocument, sites: &NameTable) -> Option<ProtectionSpec> {
    let p = &doc.protection;
    let primary = sites.resolve(cx, &p.primary, unknown_site);
    let recovery = sites.resolve(cx, &p.recovery, unknown_site);
    if primary.is_some() && primary == recovery {
        cx.report(ValidationError::SamePrimaryAndRecovery {
            name: p.recovery.value.clone(),
            at: span_of(&p.recovery),
            primary: span_of(&p.primary),
        });
    }
    let rpo =
        cx.positive_duration(&p.rpo, "an RPO of zero cannot be met by replication; use the real objective, e.g. `5m`");
    let rto = cx.positive_duration(&p.rto, "an RTO of zero cannot be met; use the real objective, e.g. `30m`");
    Some(ProtectionSpec {
        primary: primary?,
        recovery: recovery?,
        rpo: rpo?,
        rto: rto?,
        keep_points: p.keep_points.unwrap_or(DEFAULT_KEEP_POINTS),
    })
}

pub(super) fn check_target(cx: &mut Checker, doc: &PlanDocument, sites: &NameTable) -> Option<TargetSpec> {
    let t = &doc.target;
    let primary = sites.get(&doc.protection.primary.value);
    let recovery = sites.get(&doc.protection.recovery.value);
    let active = sites.resolve(cx, &t.active, unknown_site);
    if let (Some(a), Some(p), Some(r)) = (active, primary, recovery)
        && a != p
        && a != r
    {
        cx.report(ValidationError::ActiveNotProtected {
            name: t.active.value.clone(),
            primary: doc.protection.primary.value.clone(),
            recovery: doc.protection.recovery.value.clone(),
            at: span_of(&t.active),
        });
    }

    let recovery_point = match &t.recovery_point {
        None => Some(RecoveryPointSel::Latest),
        Some(text) => {
            let parsed = RecoveryPointSel::parse(&text.value);
            if parsed.is_none() {
                cx.report(ValidationError::InvalidRecoveryPoint { text: text.value.clone(), at: span_of(text) });
            }
            parsed
        }
    };

    let mut alternate = None;
    let mut alternate_ok = true;
    if let Some(location) = &t.location
        && let Location::Alternate(site) = &location.value
    {
        alternate = sites.resolve(cx, site, unknown_site);
        let role = if alternate.is_some() && alternate == primary {
            Some(("primary", "the primary site is the original location; use `location: original`"))
        } else if alternate.is_some() && alternate == recovery {
            Some(("recovery", "machines fail back from the recovery site; an alternate location is a third site"))
        } else {
            None
        };
        if let Some((role, help)) = role {
            cx.report(ValidationError::InvalidAlternateLocation {
                name: site.value.clone(),
                role,
                help,
                at: span_of(site),
            });
        }
        alternate_ok = alternate.is_some() && role.is_none();
    }

    if !alternate_ok {
        return None;
    }
    Some(TargetSpec {
        active: active?,
        active_span: span_of(&t.active),
        via: t.via,
        recovery_point: recovery_point?,
        recovery_point_span: t.recovery_point.as_ref().map(span_of),
        sync: t.sync,
        alternate,
        commit: t.commit,
        reprotect: t.reprotect,
        try_shutdown: t.try_shutdown,
    })
}

fn unknown_site(name: String, at: miette::SourceSpan, help: String) -> ValidationError {
    ValidationError::UnknownSite { name, at, help }
}
