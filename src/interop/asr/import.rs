//! `drplan import asr`: an Azure Site Recovery recovery plan as a drplan plan document.
//! Groups become the phases (Shutdown, Failover) and ordered boot groups, protected items
//! machines, actions steps; what drplan has no word for is kept under `asr:` keys so that
//! `drplan export asr` gives it back, and every such thing is said in a diagnostic.

use std::fmt::Write as _;
use std::time::Duration;

use super::error::AsrError;
use super::model::{ActionDetails, GroupKind, PlanAction, RecoveryPlan};
use super::names::{Unique, machine_name, sanitize};
use super::read::Input;
use super::vocabulary::{direction_name, directions_meant, failover_types_of, operations_meant, operations_of};
use crate::spec::schema::SCHEMA_FILE;

/// What the user must still write: the placeholders the plan carries.
pub const TODO_PROVIDER: &str = "TODO-provider";
pub const TODO_DURATION: &str = "TODO";

/// The plan document for `plan`, read from `input` (whose problems gain what did not map).
pub fn import(input: &mut Input, plan: &RecoveryPlan, file: &str) -> String {
    let mut w = Writer { input, out: String::new() };
    w.header(plan, file);
    let (primary, recovery) = w.sites(plan);
    let groups_at = "/properties/groups";
    let machines = w.machines(plan, groups_at);
    w.phases(plan, groups_at);
    w.groups(plan, groups_at, &machines);
    let _ = writeln!(w.out, "target:\n  active: {primary}");
    w.asr_block(plan);
    let _ = recovery;
    w.out
}

struct Writer<'i> {
    input: &'i mut Input,
    out: String,
}

/// Text as a YAML scalar: JSON's string syntax is YAML's double-quoted one.
fn q(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

impl Writer<'_> {
    fn header(&mut self, plan: &RecoveryPlan, file: &str) {
        let name = plan.name.clone().unwrap_or_else(|| "recovery-plan".into());
        let _ = write!(
            self.out,
            "# yaml-language-server: $schema={SCHEMA_FILE}\n\
             # Imported by `drplan import asr` from {file} (recovery plan `{name}`).\n\
             # Replace every TODO, then run `drplan validate`. `asr:` keys keep what drplan does not\n\
             # use, for `drplan export asr`.\n\
             version: 1\nname: {}\ndescription: {}\n",
            sanitize(&name),
            q(&format!("Imported from the Azure Site Recovery recovery plan {name}"))
        );
    }

    /// The two fabrics as sites, with a provider to fill in.
    fn sites(&mut self, plan: &RecoveryPlan) -> (String, String) {
        let name_of = |id: &str, friendly: &Option<String>| {
            let base =
                friendly.clone().unwrap_or_else(|| id.trim_end_matches('/').rsplit('/').next().unwrap_or(id).into());
            if base.eq_ignore_ascii_case("Microsoft Azure") { "azure".to_string() } else { sanitize(&base) }
        };
        let primary = name_of(&plan.primary_fabric_id, &plan.primary_fabric_name);
        let mut recovery = name_of(&plan.recovery_fabric_id, &plan.recovery_fabric_name);
        if recovery == primary {
            recovery.push_str("-recovery");
        }
        let _ = write!(
            self.out,
            "sites:\n  # primaryFabricId: {}\n  {primary}: {{ provider: {TODO_PROVIDER} }}\n  # recoveryFabricId: {}\n  {recovery}: {{ provider: {TODO_PROVIDER} }}\n",
            plan.primary_fabric_id, plan.recovery_fabric_id
        );
        let _ = write!(
            self.out,
            "protection:\n  primary: {primary}\n  recovery: {recovery}\n  \
             # A recovery plan has no objectives (ASR's replication policy sets how often points are taken).\n  \
             rpo: {TODO_DURATION}\n  rto: {TODO_DURATION}\n"
        );
        let at = self.input.span("/properties/primaryFabricId");
        self.input.report(AsrError::ToFill {
            what: format!("sites `{primary}` and `{recovery}` need a provider, and the plan an RPO and an RTO"),
            help: format!(
                "replace `provider: {TODO_PROVIDER}` with the provider that drives each site (and its `path:` or settings), and `rpo: TODO`, `rto: TODO` with your objectives"
            ),
            at,
        });
        (primary, recovery)
    }

    /// Every protected item of the boot groups, by ARM id; returns the names by group.
    fn machines(&mut self, plan: &RecoveryPlan, groups_at: &str) -> Vec<Vec<String>> {
        let mut unique = Unique::default();
        let mut by_group = Vec::new();
        self.out.push_str("machines:\n");
        for (g, group) in plan.groups.iter().enumerate() {
            let mut names = Vec::new();
            for (i, item) in group.items.iter().enumerate() {
                let name = unique.name(machine_name(&item.id));
                let _ = writeln!(
                    self.out,
                    "  # {}",
                    Input::path(&format!("{groups_at}/{g}/replicationProtectedItems/{i}"))
                );
                let _ = write!(self.out, "  - name: {name}\n    id: {}\n", q(&item.id));
                if let Some(vm) = &item.virtual_machine_id {
                    let _ = writeln!(self.out, "    asr: {{ virtual_machine_id: {} }}", q(vm));
                }
                names.push(name);
            }
            by_group.push(names);
        }
        if by_group.iter().all(Vec::is_empty) {
            self.out.truncate(self.out.len() - "machines:\n".len());
            self.out.push_str("machines: []\n");
        }
        by_group
    }

    /// The Shutdown and Failover groups' actions, as the steps around those phases.
    fn phases(&mut self, plan: &RecoveryPlan, groups_at: &str) {
        let mut text = String::new();
        for (kind, key) in [(GroupKind::Shutdown, "shutdown"), (GroupKind::Failover, "failover")] {
            let groups: Vec<usize> = (0..plan.groups.len()).filter(|&g| plan.groups[g].kind == kind).collect();
            if groups.len() > 1 {
                let at = self.input.span(&format!("{groups_at}/{}", groups[1]));
                self.input.report(AsrError::NotMapped {
                    what: format!("the plan has {} {} groups", groups.len(), kind.as_str()),
                    help: "their actions are joined, in order; `drplan export asr` writes one group".into(),
                    at,
                });
            }
            let mut body = String::new();
            for (list, phase) in [("startGroupActions", "before"), ("endGroupActions", "after")] {
                let mut unique = Unique::default();
                let mut steps = String::new();
                for &g in &groups {
                    let actions = if phase == "before" { &plan.groups[g].start } else { &plan.groups[g].end };
                    for (i, action) in actions.iter().enumerate() {
                        let at = format!("{groups_at}/{g}/{list}/{i}");
                        steps.push_str(&self.step(action, &at, "      ", &mut unique));
                    }
                }
                if !steps.is_empty() {
                    let _ = write!(body, "    {phase}:\n{steps}");
                }
            }
            if !body.is_empty() {
                let _ = write!(text, "  # The {} group.\n  {key}:\n{body}", kind.as_str());
            }
        }
        if !text.is_empty() {
            let _ = write!(self.out, "phases:\n{text}");
        }
    }

    /// The Boot groups in order, each after the previous one (as ASR runs them).
    fn groups(&mut self, plan: &RecoveryPlan, groups_at: &str, machines: &[Vec<String>]) {
        self.out.push_str("groups:\n");
        let mut number = 0;
        for (g, group) in plan.groups.iter().enumerate().filter(|(_, g)| g.kind == GroupKind::Boot) {
            number += 1;
            let _ = write!(
                self.out,
                "  # {} (boot group {number})\n  - name: group-{number}\n    machines: [{}]\n",
                Input::path(&format!("{groups_at}/{g}")),
                machines[g].join(", ")
            );
            for (list, phase, actions) in
                [("startGroupActions", "before", &group.start), ("endGroupActions", "after", &group.end)]
            {
                if actions.is_empty() {
                    continue;
                }
                let mut unique = Unique::default();
                let _ = writeln!(self.out, "    {phase}:");
                for (i, action) in actions.iter().enumerate() {
                    let text = self.step(action, &format!("{groups_at}/{g}/{list}/{i}"), "      ", &mut unique);
                    self.out.push_str(&text);
                }
            }
        }
        if number == 0 {
            self.out.truncate(self.out.len() - "groups:\n".len());
            self.out.push_str("groups: []\n");
        }
    }

    /// One action as a step, indented by `pad`.
    fn step(&mut self, action: &PlanAction, at: &str, pad: &str, unique: &mut Unique) -> String {
        let name = unique.name(sanitize(&action.name));
        let mut asr: Vec<String> = Vec::new();
        if name != action.name {
            asr.push(format!("name: {}", q(&action.name)));
        }
        let (only, direction) = self.filters(action, at, &mut asr);
        let mut s = format!("{pad}# {}\n", Input::path(at));
        match &action.details {
            ActionDetails::Manual { description } => {
                if description.is_none() {
                    self.input.report(AsrError::ToFill {
                        what: format!("manual action `{}` has no description", action.name),
                        help: "the step asks with an empty prompt: say what the person must check or do".into(),
                        at: self.input.span(&format!("{at}/actionName")),
                    });
                }
                let _ = write!(
                    s,
                    "{pad}- manual:\n{pad}    name: {name}\n{pad}    prompt: {}\n",
                    q(description.as_deref().unwrap_or(""))
                );
            }
            ActionDetails::Script { path, location, timeout } => {
                asr.push(format!("script_path: {}", q(path)));
                asr.push(format!("location: {}", location.to_ascii_lowercase()));
                let _ = write!(s, "{pad}- script:\n{pad}    name: {name}\n{pad}    run: [{}]\n", q(path));
                self.timeout(&mut s, pad, timeout, at, &mut asr);
                self.input.report(AsrError::ToFill {
                    what: format!("script action `{}` runs `{path}` on the ASR {location} fabric", action.name),
                    help: "drplan runs scripts on the machine that runs drplan: point `run:` at a program there (argv, no shell); `asr.script_path` keeps the ASR path for export".into(),
                    at: self.input.span(&format!("{at}/customDetails/path")),
                });
            }
            ActionDetails::Runbook { runbook_id, location, timeout } => {
                let id = runbook_id.as_deref().unwrap_or("");
                asr.push(format!("runbook_id: {}", q(id)));
                asr.push(format!("location: {}", location.to_ascii_lowercase()));
                let what = if id.is_empty() {
                    "the Azure Automation runbook of this action".to_string()
                } else {
                    format!("the Azure Automation runbook {id}")
                };
                let prompt = format!("Run {what} (at the {} fabric), then approve", location.to_ascii_lowercase());
                let _ = write!(s, "{pad}- manual:\n{pad}    name: {name}\n{pad}    prompt: {}\n", q(&prompt));
                if let Some(t) = timeout {
                    asr.push(format!("timeout: {}", q(t)));
                }
                self.input.report(AsrError::NotMapped {
                    what: format!("runbook action `{}` became a manual step", action.name),
                    help: "drplan cannot run Azure Automation runbooks: a person runs it and approves, or replace the step with a script that starts the runbook (for example with `az automation runbook start`)".into(),
                    at: self.input.span(&format!("{at}/customDetails/instanceType")),
                });
            }
        }
        let _ = writeln!(s, "{pad}    only: [{}]", only);
        let _ = writeln!(s, "{pad}    direction: [{}]", direction);
        if !asr.is_empty() {
            let _ = writeln!(s, "{pad}    asr: {{ {} }}", asr.join(", "));
        }
        s
    }

    /// `only` and `direction` for the action's failover types and directions; the API's
    /// lists go under `asr:` when drplan's cannot say them exactly.
    fn filters(&mut self, action: &PlanAction, at: &str, asr: &mut Vec<String>) -> (String, String) {
        let directions = directions_meant(&action.failover_directions);
        let operations = operations_meant(&action.failover_types, &directions);
        let meaningless: Vec<String> = action
            .failover_types
            .iter()
            .filter(|t| operations_of(t, &directions).is_empty())
            .map(|t| format!("`{t}`"))
            .collect();
        if !meaningless.is_empty() {
            self.input.report(AsrError::NotMapped {
                what: format!("action `{}` is for {}, which drplan runs no steps in", action.name, meaningless.join(", ")),
                help: "steps run in drills, planned and unplanned failovers and failbacks; the API's list is kept under `asr.failover_types` for export".into(),
                at: self.input.span(&format!("{at}/failoverTypes")),
            });
        }
        if failover_types_of(&operations) != action.failover_types {
            asr.push(format!("failover_types: [{}]", action.failover_types.join(", ")));
        }
        let back: Vec<&str> = directions.iter().map(|d| direction_name(*d)).collect();
        if back != action.failover_directions {
            asr.push(format!("failover_directions: [{}]", action.failover_directions.join(", ")));
        }
        let only: Vec<&str> = operations.iter().map(|o| o.as_str()).collect();
        let direction: Vec<&str> = directions.iter().map(|d| d.as_str()).collect();
        (only.join(", "), direction.join(", "))
    }

    /// A script's timeout: ISO 8601 (`PT30M`) or seconds as drplan's duration; kept as ASR
    /// wrote it under `asr.timeout`.
    fn timeout(&mut self, s: &mut String, pad: &str, timeout: &Option<String>, at: &str, asr: &mut Vec<String>) {
        let Some(text) = timeout else { return };
        asr.push(format!("timeout: {}", q(text)));
        match parse_timeout(text) {
            Some(d) if !d.is_zero() => {
                let _ = writeln!(s, "{pad}    timeout: {}", humantime::format_duration(d).to_string().replace(' ', ""));
            }
            _ => self.input.report(AsrError::NotMapped {
                what: format!("timeout `{text}` is not a duration drplan reads"),
                help: "the step gets drplan's default (10m); set `timeout:` yourself".into(),
                at: self.input.span(&format!("{at}/customDetails/timeout")),
            }),
        }
    }

    fn asr_block(&mut self, plan: &RecoveryPlan) {
        let _ = writeln!(self.out, "asr:");
        if let Some(name) = &plan.name {
            let _ = writeln!(self.out, "  name: {}", q(name));
        }
        let _ = writeln!(self.out, "  primary_fabric_id: {}", q(&plan.primary_fabric_id));
        let _ = writeln!(self.out, "  recovery_fabric_id: {}", q(&plan.recovery_fabric_id));
        if let Some(model) = &plan.failover_deployment_model {
            let _ = writeln!(self.out, "  failover_deployment_model: {model}");
        }
        if let Some(input) = &plan.provider_specific_input {
            // JSON is YAML's flow syntax.
            let _ = writeln!(self.out, "  provider_specific_input: {}", serde_json::Value::Array(input.clone()));
        }
    }
}

/// `PT1H30M`, `P1DT2H`, `PT45S` or a number of seconds.
pub fn parse_timeout(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let rest = text.strip_prefix('P').or_else(|| text.strip_prefix('p'))?;
    let (mut seconds, mut number, mut in_time, mut any) = (0f64, String::new(), false, false);
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            'T' if number.is_empty() => in_time = true,
            '0'..='9' | '.' => number.push(c),
            unit => {
                let n: f64 = number.parse().ok()?;
                number.clear();
                any = true;
                seconds += n * match (unit, in_time) {
                    ('D', false) => 86_400.0,
                    ('W', false) => 604_800.0,
                    ('H', true) => 3_600.0,
                    ('M', true) => 60.0,
                    ('S', true) => 1.0,
                    _ => return None,
                };
            }
        }
    }
    (any && number.is_empty()).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_8601_durations_and_seconds_are_read() {
        assert_eq!(parse_timeout("PT1H30M"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_timeout("P1DT2H"), Some(Duration::from_secs(93_600)));
        assert_eq!(parse_timeout("600"), Some(Duration::from_secs(600)));
        assert_eq!(parse_timeout("PT"), None);
        assert_eq!(parse_timeout("PT5X"), None);
        assert_eq!(parse_timeout("ten minutes"), None);
    }
}
