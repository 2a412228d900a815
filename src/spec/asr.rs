//! Azure Site Recovery values that drplan's own language has no place for, kept by
//! `drplan import asr` under `asr:` keys so that `drplan export asr` gives them back exactly.
//! drplan does not act on them.

use schemars::JsonSchema;
use serde::Deserialize;

/// The recovery plan's own values.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsrPlan {
    /// The recovery plan's name in the vault, when it differs from the plan's.
    #[serde(default)]
    pub name: Option<String>,
    /// `primaryFabricId`: the ARM id of the primary fabric.
    #[serde(default)]
    pub primary_fabric_id: Option<String>,
    /// `recoveryFabricId`: the ARM id of the recovery fabric (`Microsoft Azure` for Azure).
    #[serde(default)]
    pub recovery_fabric_id: Option<String>,
    /// `failoverDeploymentModel`: `NotApplicable`, `Classic` or `ResourceManager`.
    #[serde(default)]
    pub failover_deployment_model: Option<String>,
    /// `providerSpecificInput`, as ASR has it (zones and extended locations of A2A plans).
    #[serde(default)]
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub provider_specific_input: Option<Vec<serde_json::Value>>,
}

/// A replication protected item's values besides its ARM id (the machine's `id`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsrItem {
    /// `virtualMachineId`.
    #[serde(default)]
    pub virtual_machine_id: Option<String>,
}

/// A recovery plan action's values besides what the step says in drplan's terms.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsrAction {
    /// `actionName`, when it is not the step's `name` (ASR allows spaces and any letters).
    #[serde(default)]
    pub name: Option<String>,
    /// `fabricLocation` of a script or runbook: where ASR runs it.
    #[serde(default)]
    pub location: Option<AsrLocation>,
    /// `path` of a script action on the ASR side (the step's `run` is what drplan runs).
    #[serde(default)]
    pub script_path: Option<String>,
    /// `timeout` of a script or runbook action, as ASR has it.
    #[serde(default)]
    pub timeout: Option<String>,
    /// `runbookId`: this step is an Azure Automation runbook action (drplan asks a person).
    #[serde(default)]
    pub runbook_id: Option<String>,
    /// `failoverTypes`, when the step's `only` cannot say them exactly.
    #[serde(default)]
    pub failover_types: Option<Vec<String>>,
    /// `failoverDirections`, when the step's `direction` cannot say them exactly.
    #[serde(default)]
    pub failover_directions: Option<Vec<String>>,
}

/// Where ASR runs a script or runbook action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AsrLocation {
    Primary,
    Recovery,
}
