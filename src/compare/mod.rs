//! `drplan diff`: what changes between two revisions of a plan, in the plan's terms, for
//! review: the move it makes (a failover, a failback), machines added, removed or moved
//! between groups, group order and dependencies, addresses, steps added, removed, reordered
//! or changed. Order changes are moves, never a removal and an addition.

mod change;
pub mod git;
mod order;
mod render;
mod steps;

use std::collections::BTreeMap;

pub use change::{Change, Section};
pub use render::{human, json, markdown};

use crate::validate::{GroupSpec, Model, NicSpec, TargetAddress};

/// Two revisions compared.
#[derive(Debug)]
pub struct Comparison {
    /// What the change does to where the machines run, when it moves them.
    pub headline: Option<String>,
    pub changes: Vec<Change>,
}

pub fn compare(old: &Model, new: &Model) -> Comparison {
    let mut changes = Vec::new();
    plan_settings(old, new, &mut changes);
    sites(old, new, &mut changes);
    networks(old, new, &mut changes);
    machines(old, new, &mut changes);
    groups(old, new, &mut changes);
    all_steps(old, new, &mut changes);
    changes.sort_by_key(Change::section);
    Comparison { headline: headline(old, new), changes }
}

/// "This change fails `shop` over to `dc2` (planned failover)."
fn headline(old: &Model, new: &Model) -> Option<String> {
    let (from, to) = (&old.site(old.target.active).name, &new.site(new.target.active).name);
    if from == to {
        return None;
    }
    let name = &new.name;
    let t = &new.target;
    let recovery = &new.site(new.protection.recovery).name;
    let primary = &new.site(new.protection.primary).name;
    let via = match t.via {
        crate::spec::Via::Planned => "planned",
        crate::spec::Via::Unplanned => "unplanned",
    };
    Some(if to == recovery {
        format!("This change fails `{name}` over from `{from}` to `{to}` ({via} failover).")
    } else if to == primary || t.alternate.is_some_and(|a| &new.site(a).name == to) {
        let sync = format!("{:?}", t.sync).to_lowercase();
        let location = if to == primary { "" } else { ", alternate location" };
        format!("This change fails `{name}` back from `{from}` to `{to}` ({via}, {sync} sync{location}).")
    } else {
        format!("This change moves `{name}` from `{from}` to `{to}`.")
    })
}

fn setting(out: &mut Vec<Change>, name: &str, from: String, to: String) {
    if from != to {
        out.push(Change::Setting { setting: name.into(), from, to });
    }
}

fn plan_settings(old: &Model, new: &Model, out: &mut Vec<Change>) {
    let site = |m: &Model, id| m.site(id).name.clone();
    let d = |d: std::time::Duration| humantime::format_duration(d).to_string();
    setting(out, "name", old.name.clone(), new.name.clone());
    setting(out, "target.active", site(old, old.target.active), site(new, new.target.active));
    let (a, b) = (&old.target, &new.target);
    setting(out, "target.via", format!("{:?}", a.via).to_lowercase(), format!("{:?}", b.via).to_lowercase());
    setting(out, "target.recovery_point", a.recovery_point.to_string(), b.recovery_point.to_string());
    setting(out, "target.sync", format!("{:?}", a.sync).to_lowercase(), format!("{:?}", b.sync).to_lowercase());
    let location =
        |m: &Model| m.target.alternate.map_or("original".into(), |s| format!("alternate `{}`", m.site(s).name));
    setting(out, "target.location", location(old), location(new));
    setting(out, "target.commit", format!("{:?}", a.commit).to_lowercase(), format!("{:?}", b.commit).to_lowercase());
    setting(out, "target.reprotect", a.reprotect.to_string(), b.reprotect.to_string());
    setting(out, "target.try_shutdown", a.try_shutdown.to_string(), b.try_shutdown.to_string());
    let (p, q) = (&old.protection, &new.protection);
    setting(out, "protection.primary", site(old, p.primary), site(new, q.primary));
    setting(out, "protection.recovery", site(old, p.recovery), site(new, q.recovery));
    setting(out, "protection.rpo", d(p.rpo), d(q.rpo));
    setting(out, "protection.rto", d(p.rto), d(q.rto));
    setting(out, "protection.keep_points", p.keep_points.to_string(), q.keep_points.to_string());
    setting(out, "state", format!("{:?}", old.state), format!("{:?}", new.state));
}

fn sites(old: &Model, new: &Model, out: &mut Vec<Change>) {
    for site in &old.sites {
        let Some(now) = new.sites.iter().find(|s| s.name == site.name) else {
            out.push(Change::SiteRemoved { site: site.name.clone() });
            continue;
        };
        let mut changed = |setting: &str, from: String, to: String| {
            if from != to {
                out.push(Change::SiteChanged { site: site.name.clone(), setting: setting.into(), from, to });
            }
        };
        changed("provider", site.provider_name.clone(), now.provider_name.clone());
        let path = |p: &Option<std::path::PathBuf>| p.as_ref().map_or("none".into(), |p| p.display().to_string());
        changed("path", path(&site.path), path(&now.path));
        let limit = |m: Option<u32>| m.map_or("none".into(), |m| m.to_string());
        changed("max_parallel", limit(site.max_parallel), limit(now.max_parallel));
        let keys: std::collections::BTreeSet<&String> = site.settings.keys().chain(now.settings.keys()).collect();
        for key in keys {
            let value = |s: &BTreeMap<String, String>| s.get(key).cloned().unwrap_or_else(|| "none".into());
            changed(&format!("settings.{key}"), value(&site.settings), value(&now.settings));
        }
    }
    for site in new.sites.iter().filter(|s| !old.sites.iter().any(|o| o.name == s.name)) {
        out.push(Change::SiteAdded { site: site.name.clone(), provider: site.provider_name.clone() });
    }
}

fn networks(old: &Model, new: &Model, out: &mut Vec<Change>) {
    for net in &old.networks {
        let Some(now) = new.networks.iter().find(|n| n.source == net.source) else {
            out.push(Change::NetworkRemoved { source: net.source.clone() });
            continue;
        };
        for (setting, from, to) in [
            ("target", net.target.clone(), now.target.clone()),
            ("test", net.test.clone(), now.test.clone()),
            ("addresses", retain(net.retain), retain(now.retain)),
        ] {
            if from != to {
                out.push(Change::NetworkChanged { source: net.source.clone(), setting: setting.into(), from, to });
            }
        }
    }
    for net in new.networks.iter().filter(|n| !old.networks.iter().any(|o| o.source == n.source)) {
        out.push(Change::NetworkAdded {
            source: net.source.clone(),
            target: net.target.clone(),
            test: net.test.clone(),
        });
    }
}

fn retain(retain: bool) -> String {
    if retain { "retained".into() } else { "mapped".into() }
}

fn machines(old: &Model, new: &Model, out: &mut Vec<Change>) {
    let group = |m: &Model, g: usize| m.groups[g].name.clone();
    let by_name: BTreeMap<&str, usize> = new.machines.iter().enumerate().map(|(i, m)| (m.name.as_str(), i)).collect();
    for machine in &old.machines {
        let Some(&i) = by_name.get(machine.name.as_str()) else {
            out.push(Change::MachineRemoved { machine: machine.name.clone(), group: group(old, machine.group) });
            continue;
        };
        let now = &new.machines[i];
        let (from, to) = (group(old, machine.group), group(new, now.group));
        if from != to {
            out.push(Change::MachineMoved { machine: machine.name.clone(), from, to });
        }
        let mut changed = |setting: &str, from: String, to: String| {
            if from != to {
                out.push(Change::MachineChanged { machine: machine.name.clone(), setting: setting.into(), from, to });
            }
        };
        changed("id", machine.provider_id.clone(), now.provider_id.clone());
        let d = |d: std::time::Duration| humantime::format_duration(d).to_string();
        changed("boot_timeout", d(machine.boot_timeout), d(now.boot_timeout));
        changed("addresses", nics(old, &machine.nics), nics(new, &now.nics));
        let hooks =
            |m: &crate::validate::MachineSpec| m.consistency.as_ref().map_or("none".into(), |c| c.shown.clone());
        changed("consistency", hooks(machine), hooks(now));
    }
    let known: std::collections::HashSet<&str> = old.machines.iter().map(|m| m.name.as_str()).collect();
    for machine in new.machines.iter().filter(|m| !known.contains(m.name.as_str())) {
        out.push(Change::MachineAdded { machine: machine.name.clone(), group: group(new, machine.group) });
    }
}

/// A machine's NICs: `prod 10.0.0.10 (dr 10.9.0.10)`.
fn nics(model: &Model, nics: &[NicSpec]) -> String {
    if nics.is_empty() {
        return "none".into();
    }
    let text: Vec<String> = nics
        .iter()
        .map(|n| {
            let net = &model.networks[n.network];
            let ip = n.ip.map_or("dhcp".into(), |ip| ip.to_string());
            let target = match n.target {
                TargetAddress::Static(ip) => ip.to_string(),
                TargetAddress::Dhcp => "dhcp".into(),
            };
            format!("{} {ip} ({} {target})", net.source, net.target)
        })
        .collect();
    text.join(", ")
}

fn groups(old: &Model, new: &Model, out: &mut Vec<Change>) {
    let old_names: Vec<&str> = old.groups.iter().map(|g| g.name.as_str()).collect();
    let new_names: Vec<&str> = new.groups.iter().map(|g| g.name.as_str()).collect();
    for name in old_names.iter().filter(|n| !new_names.contains(n)) {
        out.push(Change::GroupRemoved { group: name.to_string() });
    }
    for (i, name) in new_names.iter().enumerate().filter(|(_, n)| !old_names.contains(n)) {
        out.push(Change::GroupAdded { group: name.to_string(), position: i + 1 });
    }
    for (group, from, to) in order::moved(&old_names, &new_names) {
        out.push(Change::GroupMoved { group: group.to_string(), from, to });
    }
    for group in &new.groups {
        let Some(before) = old.groups.iter().find(|g| g.name == group.name) else { continue };
        let deps = |m: &Model, g: &GroupSpec| -> Vec<String> {
            g.depends_on.iter().map(|&d| m.groups[d].name.clone()).collect()
        };
        let (was, now) = (deps(old, before), deps(new, group));
        let added: Vec<String> = now.iter().filter(|d| !was.contains(d)).cloned().collect();
        let removed: Vec<String> = was.iter().filter(|d| !now.contains(d)).cloned().collect();
        if !added.is_empty() || !removed.is_empty() {
            out.push(Change::DependsOn { group: group.name.clone(), added, removed });
        }
    }
}

fn all_steps(old: &Model, new: &Model, out: &mut Vec<Change>) {
    for (phase, a, b) in
        [("shutdown", &old.shutdown_steps, &new.shutdown_steps), ("failover", &old.failover_steps, &new.failover_steps)]
    {
        steps::compare(&format!("`phases.{phase}` before"), &a.before, &b.before, out);
        steps::compare(&format!("`phases.{phase}` after"), &a.after, &b.after, out);
    }
    for group in &new.groups {
        // A new group's steps come with it.
        let Some(before) = old.groups.iter().find(|g| g.name == group.name) else { continue };
        steps::compare(&format!("group `{}` before", group.name), &before.before, &group.before, out);
        steps::compare(&format!("group `{}` after", group.name), &before.after, &group.after, out);
    }
}
