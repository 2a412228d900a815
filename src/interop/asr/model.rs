//! An Azure Site Recovery recovery plan, as much of it as a plan round-trips: its fabrics,
//! its groups in order with their machines and actions. `to_arm` writes the request body
//! of a create (`PUT …/replicationRecoveryPlans/NAME`).

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryPlan {
    pub name: Option<String>,
    pub primary_fabric_id: String,
    pub primary_fabric_name: Option<String>,
    pub recovery_fabric_id: String,
    pub recovery_fabric_name: Option<String>,
    pub failover_deployment_model: Option<String>,
    pub provider_specific_input: Option<Vec<Value>>,
    pub groups: Vec<PlanGroup>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Shutdown,
    Failover,
    Boot,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Shutdown => "Shutdown",
            GroupKind::Failover => "Failover",
            GroupKind::Boot => "Boot",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanGroup {
    pub kind: GroupKind,
    pub items: Vec<Item>,
    pub start: Vec<PlanAction>,
    pub end: Vec<PlanAction>,
}

/// A replication protected item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub virtual_machine_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanAction {
    pub name: String,
    pub failover_types: Vec<String>,
    pub failover_directions: Vec<String>,
    pub details: ActionDetails,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActionDetails {
    Manual { description: Option<String> },
    Script { path: String, location: String, timeout: Option<String> },
    Runbook { runbook_id: Option<String>, location: String, timeout: Option<String> },
}

impl RecoveryPlan {
    /// The body of a create request: `{"properties": {...}}`.
    pub fn to_arm(&self) -> Value {
        let mut properties = Map::new();
        properties.insert("primaryFabricId".into(), json!(self.primary_fabric_id));
        properties.insert("recoveryFabricId".into(), json!(self.recovery_fabric_id));
        if let Some(model) = &self.failover_deployment_model {
            properties.insert("failoverDeploymentModel".into(), json!(model));
        }
        properties.insert("groups".into(), Value::Array(self.groups.iter().map(PlanGroup::to_arm).collect()));
        if let Some(input) = &self.provider_specific_input {
            properties.insert("providerSpecificInput".into(), Value::Array(input.clone()));
        }
        json!({ "properties": properties })
    }
}

impl PlanGroup {
    fn to_arm(&self) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|item| {
                let mut value = Map::new();
                value.insert("id".into(), json!(item.id));
                if let Some(vm) = &item.virtual_machine_id {
                    value.insert("virtualMachineId".into(), json!(vm));
                }
                Value::Object(value)
            })
            .collect();
        json!({
            "groupType": self.kind.as_str(),
            "replicationProtectedItems": items,
            "startGroupActions": self.start.iter().map(PlanAction::to_arm).collect::<Vec<_>>(),
            "endGroupActions": self.end.iter().map(PlanAction::to_arm).collect::<Vec<_>>(),
        })
    }
}

impl PlanAction {
    fn to_arm(&self) -> Value {
        let mut details = Map::new();
        let optional = |details: &mut Map<String, Value>, key: &str, value: &Option<String>| {
            if let Some(value) = value {
                details.insert(key.into(), json!(value));
            }
        };
        match &self.details {
            ActionDetails::Manual { description } => {
                details.insert("instanceType".into(), json!("ManualActionDetails"));
                optional(&mut details, "description", description);
            }
            ActionDetails::Script { path, location, timeout } => {
                details.insert("instanceType".into(), json!("ScriptActionDetails"));
                details.insert("path".into(), json!(path));
                optional(&mut details, "timeout", timeout);
                details.insert("fabricLocation".into(), json!(location));
            }
            ActionDetails::Runbook { runbook_id, location, timeout } => {
                details.insert("instanceType".into(), json!("AutomationRunbookActionDetails"));
                optional(&mut details, "runbookId", runbook_id);
                optional(&mut details, "timeout", timeout);
                details.insert("fabricLocation".into(), json!(location));
            }
        }
        json!({
            "actionName": self.name,
            "failoverTypes": self.failover_types,
            "failoverDirections": self.failover_directions,
            "customDetails": details,
        })
    }
}
