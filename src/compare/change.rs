//! One difference between two revisions of a plan, in the plan's own terms.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// A setting of the plan, its target, protection or state changed (`target.active`,
    /// `protection.rpo`, `name` …).
    Setting {
        setting: String,
        from: String,
        to: String,
    },
    SiteAdded {
        site: String,
        provider: String,
    },
    SiteRemoved {
        site: String,
    },
    SiteChanged {
        site: String,
        setting: String,
        from: String,
        to: String,
    },
    NetworkAdded {
        source: String,
        target: String,
        test: String,
    },
    NetworkRemoved {
        source: String,
    },
    NetworkChanged {
        source: String,
        setting: String,
        from: String,
        to: String,
    },
    MachineAdded {
        machine: String,
        group: String,
    },
    MachineRemoved {
        machine: String,
        group: String,
    },
    MachineMoved {
        machine: String,
        from: String,
        to: String,
    },
    MachineChanged {
        machine: String,
        setting: String,
        from: String,
        to: String,
    },
    GroupAdded {
        group: String,
        position: usize,
    },
    GroupRemoved {
        group: String,
    },
    /// Positions are 1-based, in document order.
    GroupMoved {
        group: String,
        from: usize,
        to: usize,
    },
    DependsOn {
        group: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    StepAdded {
        scope: String,
        step: String,
        what: String,
    },
    StepRemoved {
        scope: String,
        step: String,
        what: String,
    },
    /// Positions are 1-based within the scope's list (`app` before, `phases.shutdown` after …).
    StepMoved {
        scope: String,
        step: String,
        from: usize,
        to: usize,
    },
    StepChanged {
        scope: String,
        step: String,
        setting: String,
        from: String,
        to: String,
    },
}

/// The part of a plan a change is about, for grouping in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Plan,
    Sites,
    Networks,
    Machines,
    Groups,
    Steps,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Plan => "Plan",
            Section::Sites => "Sites",
            Section::Networks => "Networks",
            Section::Machines => "Machines",
            Section::Groups => "Groups",
            Section::Steps => "Steps",
        }
    }
}

impl Change {
    pub fn section(&self) -> Section {
        match self {
            Change::Setting { .. } => Section::Plan,
            Change::SiteAdded { .. } | Change::SiteRemoved { .. } | Change::SiteChanged { .. } => Section::Sites,
            Change::NetworkAdded { .. } | Change::NetworkRemoved { .. } | Change::NetworkChanged { .. } => {
                Section::Networks
            }
            Change::MachineAdded { .. }
            | Change::MachineRemoved { .. }
            | Change::MachineMoved { .. }
            | Change::MachineChanged { .. } => Section::Machines,
            Change::GroupAdded { .. }
            | Change::GroupRemoved { .. }
            | Change::GroupMoved { .. }
            | Change::DependsOn { .. } => Section::Groups,
            Change::StepAdded { .. }
            | Change::StepRemoved { .. }
            | Change::StepMoved { .. }
            | Change::StepChanged { .. } => Section::Steps,
        }
    }

    /// `+`, `-`, `~` or `↕`.
    pub fn sign(&self) -> &'static str {
        match self {
            Change::SiteAdded { .. }
            | Change::NetworkAdded { .. }
            | Change::MachineAdded { .. }
            | Change::GroupAdded { .. }
            | Change::StepAdded { .. } => "+",
            Change::SiteRemoved { .. }
            | Change::NetworkRemoved { .. }
            | Change::MachineRemoved { .. }
            | Change::GroupRemoved { .. }
            | Change::StepRemoved { .. } => "-",
            Change::MachineMoved { .. } | Change::GroupMoved { .. } | Change::StepMoved { .. } => "↕",
            _ => "~",
        }
    }

    /// One line for people (without the sign), with names in backticks.
    pub fn describe(&self) -> String {
        match self {
            Change::Setting { setting, from, to } => format!("`{setting}`: {from} → {to}"),
            Change::SiteAdded { site, provider } => format!("site `{site}` ({provider})"),
            Change::SiteRemoved { site } => format!("site `{site}`"),
            Change::SiteChanged { site, setting, from, to } => format!("site `{site}` {setting}: {from} → {to}"),
            Change::NetworkAdded { source, target, test } => {
                format!("network `{source}` → `{target}` (drills: `{test}`)")
            }
            Change::NetworkRemoved { source } => format!("network mapping of `{source}`"),
            Change::NetworkChanged { source, setting, from, to } => {
                format!("network `{source}` {setting}: {from} → {to}")
            }
            Change::MachineAdded { machine, group } => format!("machine `{machine}` in group `{group}`"),
            Change::MachineRemoved { machine, group } => format!("machine `{machine}` (was in group `{group}`)"),
            Change::MachineMoved { machine, from, to } => {
                format!("machine `{machine}` moved from group `{from}` to group `{to}`")
            }
            Change::MachineChanged { machine, setting, from, to } => {
                format!("machine `{machine}` {setting}: {from} → {to}")
            }
            Change::GroupAdded { group, position } => format!("group `{group}` at position {position}"),
            Change::GroupRemoved { group } => format!("group `{group}`"),
            Change::GroupMoved { group, from, to } => {
                format!("group `{group}` moved from position {from} to {to}")
            }
            Change::DependsOn { group, added, removed } => {
                let mut parts = Vec::new();
                if !added.is_empty() {
                    parts.push(format!("now after {}", quoted(added)));
                }
                if !removed.is_empty() {
                    parts.push(format!("no longer after {}", quoted(removed)));
                }
                format!("group `{group}` {}", parts.join("; "))
            }
            Change::StepAdded { scope, step, what } => format!("step `{step}` in {scope}: {what}"),
            Change::StepRemoved { scope, step, what } => format!("step `{step}` from {scope}: {what}"),
            Change::StepMoved { scope, step, from, to } => {
                format!("step `{step}` in {scope} moved from position {from} to {to}")
            }
            Change::StepChanged { scope, step, setting, from, to } => {
                format!("step `{step}` in {scope} {setting}: {from} → {to}")
            }
        }
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}
