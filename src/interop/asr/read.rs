//! Reading recovery plans from what Azure gives: the body of a GET of
//! `Microsoft.RecoveryServices/vaults/replicationRecoveryPlans`, a `value` list of them (a
//! list call), a create request body, or an ARM template with such resources. Every problem
//! points at its JSON path, line and column.

use std::collections::HashMap;
use std::path::Path;

use miette::SourceSpan;
use serde_json::Value;

use super::error::AsrError;
use super::json_index::{JsonIndex, escape};
use super::model::{ActionDetails, GroupKind, Item, PlanAction, PlanGroup, RecoveryPlan};
use super::vocabulary::{
    ACTION_KINDS, DEPLOYMENT_MODELS, DIRECTIONS, FAILOVER_TYPES, GROUP_TYPES, LOCATIONS, canonical,
};
use crate::spec::{FileDiagnostic, SourceFile};

const PLAN_TYPE: &str = "Microsoft.RecoveryServices/vaults/replicationRecoveryPlans";

/// An input document and the problems found in it so far.
pub struct Input {
    pub source: SourceFile,
    index: JsonIndex,
    pub problems: Vec<FileDiagnostic>,
}

impl Input {
    pub fn new(path: &Path, text: String) -> Input {
        let index = JsonIndex::new(&text);
        Input { source: SourceFile::new(path, text), index, problems: Vec::new() }
    }

    pub fn span(&self, pointer: &str) -> SourceSpan {
        let (offset, len) = self.index.span(pointer);
        SourceSpan::new(offset.into(), len.min(80))
    }

    pub fn report(&mut self, problem: AsrError) {
        self.problems.push(FileDiagnostic::new(self.source.clone(), problem));
    }

    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(FileDiagnostic::is_error)
    }

    /// The path for messages: `properties.groups[2].startGroupActions[0]`.
    pub fn path(pointer: &str) -> String {
        let mut path = String::new();
        for part in pointer.split('/').skip(1) {
            let part = part.replace("~1", "/").replace("~0", "~");
            if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
                path.push_str(&format!("[{part}]"));
            } else {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&part);
            }
        }
        if path.is_empty() { "(the document)".into() } else { path }
    }
}

/// Read the recovery plan of `input` (the one named `wanted` when there are several).
pub fn read(input: &mut Input, wanted: Option<&str>) -> Option<RecoveryPlan> {
    let value: Value = match serde_json::from_str(input.source.text()) {
        Ok(value) => value,
        Err(e) => {
            let offset = offset_of(input.source.text(), e.line(), e.column());
            input.report(AsrError::NotJson { reason: e.to_string(), at: SourceSpan::new(offset.into(), 1) });
            return None;
        }
    };
    let mut candidates = find_plans(&value, "");
    let chosen = match (candidates.len(), wanted) {
        (0, _) => {
            input.report(AsrError::NoPlan { at: input.span("") });
            return None;
        }
        (_, Some(name)) => {
            let names: Vec<String> = candidates.iter().map(|(p, v)| plan_name(v, p)).collect();
            match candidates.iter().position(|(p, v)| plan_name(v, p).eq_ignore_ascii_case(name)) {
                Some(i) => i,
                None => {
                    let help = suggestion(name, names.iter().map(String::as_str), "the document's recovery plans are");
                    let at = input.span(&candidates[0].0);
                    input.report(AsrError::NoSuchPlan { name: name.into(), help, at });
                    return None;
                }
            }
        }
        (1, None) => 0,
        (count, None) => {
            let names: Vec<String> = candidates.iter().map(|(p, v)| format!("`{}`", plan_name(v, p))).collect();
            let at = input.span(&candidates[0].0);
            input.report(AsrError::SeveralPlans { count, names: names.join(", "), at });
            return None;
        }
    };
    let (pointer, plan) = candidates.swap_remove(chosen);
    let plan = read_plan(input, plan, &pointer);
    if input.has_errors() { None } else { plan }
}

/// The line and column serde_json gives, as a byte offset.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    (start + column.saturating_sub(1)).min(text.len())
}

/// Recovery plans in `value`: itself, the items of a `value` list, or an ARM template's
/// resources (and their child resources), with their JSON pointers.
fn find_plans<'v>(value: &'v Value, pointer: &str) -> Vec<(String, &'v Value)> {
    let mut found = Vec::new();
    let Some(object) = value.as_object() else { return found };
    let is_plan_type =
        |t: &str| t.eq_ignore_ascii_case(PLAN_TYPE) || t.eq_ignore_ascii_case("replicationRecoveryPlans");
    match object.get("type").and_then(Value::as_str) {
        Some(t) if is_plan_type(t) => found.push((pointer.to_string(), value)),
        None if object.get("properties").and_then(|p| p.get("groups")).is_some() => {
            found.push((pointer.to_string(), value))
        }
        _ => {}
    }
    for key in ["value", "resources"] {
        if let Some(list) = object.get(key).and_then(Value::as_array) {
            for (i, item) in list.iter().enumerate() {
                found.extend(find_plans(item, &format!("{pointer}/{key}/{i}")));
            }
        }
    }
    found
}

/// A plan's name: its `name` (the last segment of a template's `vault/plan`), else its
/// friendly name, else its position.
fn plan_name(value: &Value, pointer: &str) -> String {
    let name = value.get("name").and_then(Value::as_str).map(last_segment);
    name.or_else(|| value.pointer("/properties/friendlyName").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| format!("the plan at {}", Input::path(pointer)))
}

/// The last segment of a resource name (`vault/plan`); in a template expression such as
/// `[concat(parameters('vault'), '/plan')]`, of its last string literal.
fn last_segment(name: &str) -> String {
    let literal = if name.starts_with('[') {
        name.rsplit('\'')
            .find(|part| !part.trim().is_empty() && !part.contains(['(', ')', ',', '[', ']']))
            .unwrap_or(name)
    } else {
        name
    };
    literal.trim_end_matches('/').rsplit('/').next().unwrap_or(literal).to_string()
}

fn read_plan(input: &mut Input, value: &Value, pointer: &str) -> Option<RecoveryPlan> {
    let name = value.get("name").and_then(Value::as_str).map(last_segment);
    let props_at = format!("{pointer}/properties");
    let Some(props) = value.get("properties") else {
        missing(input, pointer, "properties", "a recovery plan keeps everything under `properties`");
        return None;
    };
    let fabric_help = "every recovery plan names its primary and recovery fabrics";
    let primary = required_string(input, props, &props_at, "primaryFabricId", fabric_help);
    let recovery = required_string(input, props, &props_at, "recoveryFabricId", fabric_help);
    let model = optional_string(input, props, &props_at, "failoverDeploymentModel")
        .and_then(|m| known(input, &m, &format!("{props_at}/failoverDeploymentModel"), DEPLOYMENT_MODELS));
    let provider_specific_input = match props.get("providerSpecificInput") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(list.clone()),
        Some(_) => {
            wrong(input, &format!("{props_at}/providerSpecificInput"), "a list");
            None
        }
    };
    let groups_at = format!("{props_at}/groups");
    let groups = match props.get("groups") {
        Some(Value::Array(groups)) => groups,
        Some(_) => {
            wrong(input, &groups_at, "a list");
            return None;
        }
        None => {
            missing(input, &props_at, "groups", "a recovery plan has its Shutdown, Failover and Boot groups");
            return None;
        }
    };
    let mut seen: HashMap<String, String> = HashMap::new();
    let groups: Vec<PlanGroup> = groups
        .iter()
        .enumerate()
        .filter_map(|(i, group)| read_group(input, group, &format!("{groups_at}/{i}"), &mut seen))
        .collect();
    Some(RecoveryPlan {
        name,
        primary_fabric_id: primary?,
        primary_fabric_name: optional_string(input, props, &props_at, "primaryFabricFriendlyName"),
        recovery_fabric_id: recovery?,
        recovery_fabric_name: optional_string(input, props, &props_at, "recoveryFabricFriendlyName"),
        failover_deployment_model: model.map(str::to_string),
        provider_specific_input,
        groups,
    })
}

fn read_group(input: &mut Input, group: &Value, at: &str, seen: &mut HashMap<String, String>) -> Option<PlanGroup> {
    let kind = required_string(input, group, at, "groupType", "each group is a Shutdown, Failover or Boot group")?;
    let kind = match known(input, &kind, &format!("{at}/groupType"), GROUP_TYPES)? {
        "Shutdown" => GroupKind::Shutdown,
        "Failover" => GroupKind::Failover,
        _ => GroupKind::Boot,
    };
    let items_at = format!("{at}/replicationProtectedItems");
    let mut items = Vec::new();
    for (i, item) in list(input, group, at, "replicationProtectedItems").iter().enumerate() {
        let item_at = format!("{items_at}/{i}");
        let Some(id) = required_string(input, item, &item_at, "id", "a protected item is named by its ARM id") else {
            continue;
        };
        let key = id.to_lowercase();
        if let Some(first) = seen.get(&key) {
            let (path, first) = (Input::path(&item_at), Input::path(first));
            let at = input.span(&item_at);
            input.report(AsrError::DuplicateItem { id, path, first, at });
            continue;
        }
        seen.insert(key, item_at.clone());
        let virtual_machine_id = optional_string(input, item, &item_at, "virtualMachineId");
        items.push(Item { id, virtual_machine_id });
    }
    if kind != GroupKind::Boot && !items.is_empty() {
        let path = Input::path(&items_at);
        let at = input.span(&items_at);
        input.report(AsrError::ItemsOutsideBoot { group: kind.as_str(), path, at });
    }
    let start = actions(input, group, at, "startGroupActions");
    let end = actions(input, group, at, "endGroupActions");
    Some(PlanGroup { kind, items, start, end })
}

fn actions(input: &mut Input, group: &Value, at: &str, key: &str) -> Vec<PlanAction> {
    list(input, group, at, key)
        .iter()
        .enumerate()
        .filter_map(|(i, action)| read_action(input, action, &format!("{at}/{key}/{i}")))
        .collect()
}

fn read_action(input: &mut Input, action: &Value, at: &str) -> Option<PlanAction> {
    let name = required_string(input, action, at, "actionName", "every action has a name");
    let types = enum_list(input, action, at, "failoverTypes", FAILOVER_TYPES);
    let directions = enum_list(input, action, at, "failoverDirections", DIRECTIONS);
    let details_at = format!("{at}/customDetails");
    let Some(details) = action.get("customDetails") else {
        missing(input, at, "customDetails", "an action is a manual, script or runbook action (`customDetails`)");
        return None;
    };
    let kind = required_string(input, details, &details_at, "instanceType", "it says which kind of action this is")?;
    let location = |input: &mut Input| {
        let help = "script and runbook actions run at the primary or the recovery fabric";
        let location = required_string(input, details, &details_at, "fabricLocation", help)?;
        known(input, &location, &format!("{details_at}/fabricLocation"), LOCATIONS).map(str::to_string)
    };
    let details = match known(input, &kind, &format!("{details_at}/instanceType"), ACTION_KINDS)? {
        "ManualActionDetails" => {
            ActionDetails::Manual { description: optional_string(input, details, &details_at, "description") }
        }
        "ScriptActionDetails" => {
            let path =
                required_string(input, details, &details_at, "path", "a script action runs the script at `path`");
            let location = location(input);
            let timeout = optional_string(input, details, &details_at, "timeout");
            ActionDetails::Script { path: path?, location: location?, timeout }
        }
        _ => {
            let runbook_id = optional_string(input, details, &details_at, "runbookId");
            let location = location(input);
            let timeout = optional_string(input, details, &details_at, "timeout");
            ActionDetails::Runbook { runbook_id, location: location?, timeout }
        }
    };
    Some(PlanAction { name: name?, failover_types: types?, failover_directions: directions?, details })
}

fn list<'v>(input: &mut Input, object: &'v Value, at: &str, key: &str) -> &'v [Value] {
    match object.get(key) {
        None | Some(Value::Null) => &[],
        Some(Value::Array(list)) => list,
        Some(_) => {
            wrong(input, &format!("{at}/{}", escape(key)), "a list");
            &[]
        }
    }
}

fn enum_list(input: &mut Input, object: &Value, at: &str, key: &str, allowed: &[&'static str]) -> Option<Vec<String>> {
    let Some(list) = object.get(key) else {
        missing(input, at, key, "every action says which failover types and directions it runs in");
        return None;
    };
    let Some(list) = list.as_array() else {
        wrong(input, &format!("{at}/{key}"), "a list");
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let item_at = format!("{at}/{key}/{i}");
        match item.as_str() {
            Some(text) => out.extend(known(input, text, &item_at, allowed).map(str::to_string)),
            None => wrong(input, &item_at, "a string"),
        }
    }
    Some(out)
}

fn known(input: &mut Input, value: &str, at: &str, allowed: &[&'static str]) -> Option<&'static str> {
    let found = canonical(value, allowed);
    if found.is_none() {
        let help = suggestion(value, allowed.iter().copied(), "the API defines");
        let (path, span) = (Input::path(at), input.span(at));
        input.report(AsrError::UnknownValue { path, value: value.into(), help, at: span });
    }
    found
}

/// "did you mean `x`?" when a candidate is close, else the candidates after `listing`.
fn suggestion<'a>(value: &str, candidates: impl IntoIterator<Item = &'a str>, listing: &str) -> String {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    match crate::spec::suggest::closest(value, candidates.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("{listing}: {}", candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")),
    }
}

fn required_string(input: &mut Input, object: &Value, at: &str, key: &str, help: &str) -> Option<String> {
    match object.get(key) {
        Some(Value::String(text)) => Some(text.clone()),
        None | Some(Value::Null) => {
            missing(input, at, key, help);
            None
        }
        Some(_) => {
            wrong(input, &format!("{at}/{}", escape(key)), "a string");
            None
        }
    }
}

fn optional_string(input: &mut Input, object: &Value, at: &str, key: &str) -> Option<String> {
    match object.get(key) {
        Some(Value::String(text)) => Some(text.clone()),
        None | Some(Value::Null) => None,
        Some(_) => {
            wrong(input, &format!("{at}/{}", escape(key)), "a string");
            None
        }
    }
}

fn missing(input: &mut Input, at: &str, key: &str, help: &str) {
    let path = Input::path(&format!("{at}/{}", escape(key)));
    let span = input.span(at);
    input.report(AsrError::Missing { path, help: help.into(), at: span });
}

fn wrong(input: &mut Input, at: &str, expected: &'static str) {
    let (path, span) = (Input::path(at), input.span(at));
    input.report(AsrError::WrongType { path, expected, at: span });
}

#[cfg(test)]
mod tests {
    use super::last_segment;

    #[test]
    fn names_come_from_resource_names_and_template_expressions() {
        assert_eq!(last_segment("vault1/RPtest1"), "RPtest1");
        assert_eq!(last_segment("RPtest1"), "RPtest1");
        assert_eq!(last_segment("[concat(parameters('vaultName'), '/shop-rp')]"), "shop-rp");
    }
}
