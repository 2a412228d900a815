//! The plugin protocol (see `docs/provider-protocol.md`): JSON-RPC 2.0, one JSON object per
//! line on the plugin's stdin and stdout. These are the messages and the parameters and results
//! of each method; the operations, outcomes and inventory are the contract's own types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Capabilities, Claimant, OpKind, ProviderOp};

/// The protocol version this crate speaks: major.minor. A major change breaks; a minor one
/// adds (fields, methods) and is detected, never assumed.
pub const PROTOCOL_VERSION: &str = "1.0";
/// The major versions drplan offers in `initialize`.
pub const SUPPORTED_MAJORS: [u32; 1] = [1];

/// The major version of a `major.minor` string.
pub fn major_of(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

pub mod method {
    pub const INITIALIZE: &str = "initialize";
    pub const OPEN: &str = "open";
    pub const INVENTORY: &str = "inventory";
    pub const SITES: &str = "sites";
    pub const ESTIMATES: &str = "estimates";
    pub const EXECUTE: &str = "execute";
    pub const FLUSH: &str = "flush";
    pub const CLAIMS: &str = "claims";
    pub const CLAIM: &str = "claim";
    pub const SHUTDOWN: &str = "shutdown";
    /// Notification: the plugin exits now.
    pub const EXIT: &str = "exit";
    /// Notification (drplan → plugin): stop request `id` at a safe point.
    pub const CANCEL: &str = "$/cancelRequest";
    /// Notification (plugin → drplan): how an operation advances.
    pub const PROGRESS: &str = "$/progress";
    /// The conformance kit's hands on a test estate (`drplan provider test`).
    pub const TEST_CREATE_ESTATE: &str = "test/createEstate";
    pub const TEST_WRITE: &str = "test/write";
    pub const TEST_SET_REACHABLE: &str = "test/setReachable";
    pub const TEST_CONTENT: &str = "test/content";
}

/// Parameters and results stay raw JSON text until their reader knows the type: a large
/// inventory is parsed once, straight into its type, never into a tree of values first.
pub type Raw = Box<serde_json::value::RawValue>;

/// `value` as raw JSON text.
pub fn raw<T: Serialize + ?Sized>(value: &T) -> Result<Raw, serde_json::Error> {
    serde_json::value::to_raw_value(value)
}

/// Any message on the wire. Requests have a method and an id; responses an id and a result or
/// an error; notifications a method and no id.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Message {
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Raw>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Raw>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Message {
    pub fn request(id: u64, method: &str, params: Raw) -> Message {
        Message {
            jsonrpc: "2.0".into(),
            id: Some(id.into()),
            method: Some(method.into()),
            params: Some(params),
            ..Default::default()
        }
    }

    pub fn notification(method: &str, params: Raw) -> Message {
        Message { jsonrpc: "2.0".into(), method: Some(method.into()), params: Some(params), ..Default::default() }
    }

    pub fn response(id: Value, result: Result<Raw, RpcError>) -> Message {
        let (result, error) = match result {
            Ok(value) => (Some(value), None),
            Err(error) => (None, Some(error)),
        };
        Message { jsonrpc: "2.0".into(), id: Some(id), result, error, ..Default::default() }
    }
}

/// JSON-RPC error codes used by the protocol.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    /// A provider error: its kind is in `data.kind`.
    pub const PROVIDER_ERROR: i64 = -32000;
    /// The request was cancelled (`$/cancelRequest`).
    pub const REQUEST_CANCELLED: i64 = -32800;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<ErrorData>>,
}

/// What kind of failure a provider error is: it decides whether drplan retries, which
/// diagnostic it shows, and whether a target is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Throttled or briefly unavailable: drplan retries after `retry_after_ms` (with backoff).
    Transient,
    /// A site cannot be reached (`site` says which).
    Unreachable,
    /// The machine is not at the site (`machine`, `site`).
    NotFound,
    /// The data at the target is not what it must be; the target was not started.
    Verification,
    /// The configuration is wrong (settings, credentials): nothing was changed.
    Setup,
    /// Stopped at a safe point after `$/cancelRequest`.
    Cancelled,
    /// Anything else.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorData {
    pub kind: ErrorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// What the user can do about it (shown as the diagnostic's help).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitializeParams {
    /// The versions drplan speaks, newest first (`major.minor`).
    pub protocol_versions: Vec<String>,
    pub client: ClientInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitializeResult {
    /// The version the plugin chose from those offered.
    pub protocol_version: String,
    pub name: String,
    pub version: String,
    pub capabilities: Capabilities,
    /// A JSON Schema of a site's `settings` (drplan validate checks them against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_schema: Option<Value>,
}

/// A plan as a plugin needs it: its sites and machines.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanView {
    pub name: String,
    /// The plan document (absolute), for plugins that read it themselves.
    pub plan_path: PathBuf,
    pub primary: String,
    pub recovery: String,
    /// Recovery points to keep per machine.
    pub keep_points: u32,
    pub sites: BTreeMap<String, SiteView>,
    pub machines: Vec<MachineView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteView {
    /// Absolute, when the site has a path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineView {
    /// The name in the plan (what operations and inventory use).
    pub name: String,
    /// The identity at the platform.
    pub id: String,
    /// The plan's freeze and thaw programs for this machine: a provider that takes
    /// app-consistent points runs them right before and right after each point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyHooks>,
}

/// Programs around a recovery point. Each is an argv (the program an absolute path or a name
/// on `PATH`): run it directly, never through a shell, from the plan's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyHooks {
    pub freeze: Vec<String>,
    /// Run after every freeze that was tried, whether it succeeded or not.
    pub thaw: Vec<String>,
    /// Kill either after this long.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenParams {
    pub plan: PlanView,
}

/// What `open` and `test/createEstate` answer: the capabilities of what was opened, when they
/// differ from those `initialize` announced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
}

/// Duration estimates per machine and operation kind, in milliseconds (for the RTO estimate
/// and the schedule). Missing entries count as zero.
pub type Estimates = BTreeMap<String, BTreeMap<OpKind, u64>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecuteParams {
    /// The journal's id of this operation (`RUN/STEP`): the same when drplan asks again after
    /// a crash, so a plugin can tell a repeat from a new request.
    pub operation: String,
    pub op: ProviderOp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressParams {
    pub operation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelParams {
    pub id: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimParams {
    pub me: Claimant,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateEstateParams {
    /// Machines `m1`..`mN`, live and running at `dc1`, not protected; sites `dc1`, `dc2`, `dc3`.
    pub machines: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineParams {
    pub machine: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReachableParams {
    pub site: String,
    pub reachable: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContentParams {
    pub machine: String,
    pub site: String,
}
