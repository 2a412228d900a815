//! A provider that is another program: every call of the contract goes to a plugin process
//! over the plugin protocol. One process per plan run, started when the provider is opened,
//! asked to shut down when it is dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drplan_protocol::rpc::{
    self, ClaimParams, ClientInfo, ConsistencyHooks, Estimates, ExecuteParams, InitializeParams, InitializeResult,
    MachineView, OpenParams, OpenResult, PlanView, SiteView, method,
};
use tokio_util::sync::CancellationToken;

use super::client::{CallError, Client, Launch};
use super::errors::from_rpc;
use crate::contract::{
    Capabilities, Claimant, ForeignClaim, Inventory, OpOutcome, OpProgress, Platform, ProgressSink, Provider,
    ProviderError, ProviderFuture, ProviderOp, SiteInventory,
};
use crate::spec::ProviderKind;
use crate::validate::Model;

/// How long a plugin may take to answer a call that does no work on machines.
const QUICK: Duration = Duration::from_secs(60);
/// Inventory of a large estate may take a while.
const INVENTORY: Duration = Duration::from_secs(600);

/// The plugin is started by the first call that needs it (one process per plan run, and none
/// for commands that never ask the provider anything).
pub struct PluginProvider {
    launch: Launch,
    /// None: the plugin is already told what to drive (the conformance kit's estates).
    plan: Option<PlanView>,
    started: tokio::sync::OnceCell<Started>,
}

struct Started {
    client: Arc<Client>,
    hello: InitializeResult,
    estimates: Estimates,
}

impl PluginProvider {
    /// The provider of `plan`'s sites, on the plugin `launch` starts.
    pub fn new(launch: Launch, plan: PlanView) -> PluginProvider {
        PluginProvider { launch, plan: Some(plan), started: tokio::sync::OnceCell::new() }
    }

    /// A provider on a plugin already started and told what to drive (the conformance kit).
    pub(super) async fn on(client: Arc<Client>, hello: InitializeResult) -> Result<PluginProvider, ProviderError> {
        let launch = Launch { name: client.name().to_string(), argv: Vec::new(), dir: ".".into() };
        let estimates = estimates(&client, &[]).await?;
        let started = tokio::sync::OnceCell::new_with(Some(Started { client, hello, estimates }));
        Ok(PluginProvider { launch, plan: None, started })
    }

    /// Start the plugin, agree on a version, and open the plan's sites (once).
    async fn started(&self) -> Result<&Started, ProviderError> {
        self.started
            .get_or_try_init(|| async {
                let (client, mut hello) = start(&self.launch).await?;
                let plan = self.plan.clone().ok_or_else(|| ProviderError::failed("the plugin has no plan"))?;
                let machines: Vec<String> = plan.machines.iter().map(|m| m.name.clone()).collect();
                let opened: OpenResult =
                    client.call(method::OPEN, &OpenParams { plan }, INVENTORY).await.map_err(|e| called(&client, e))?;
                if let Some(capabilities) = opened.capabilities {
                    hello.capabilities = capabilities;
                }
                let estimates = estimates(&client, &machines).await?;
                Ok(Started { client: Arc::new(client), hello, estimates })
            })
            .await
    }

    /// What the plugin said of itself, once started.
    pub fn hello(&self) -> Option<&InitializeResult> {
        self.started.get().map(|s| &s.hello)
    }

    async fn call<P: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
        timeout: Duration,
    ) -> Result<R, ProviderError> {
        let client = &self.started().await?.client;
        client.call(method, params, timeout).await.map_err(|e| called(client, e))
    }

    /// A call a plugin may leave out (it cannot record owners): not implemented means none.
    async fn optional<P: serde::Serialize, R: serde::de::DeserializeOwned + Default>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, ProviderError> {
        let client = &self.started().await?.client;
        match client.call(method, params, QUICK).await {
            Err(CallError::Rpc(e)) if e.code == rpc::code::METHOD_NOT_FOUND => {
                tracing::debug!(target: "drplan::plugin", method, "not implemented by the plugin");
                Ok(R::default())
            }
            result => result.map_err(|e| called(client, e)),
        }
    }
}

async fn estimates(client: &Client, machines: &[String]) -> Result<Estimates, ProviderError> {
    client
        .call(method::ESTIMATES, &serde_json::json!({ "machines": machines }), INVENTORY)
        .await
        .map_err(|e| called(client, e))
}

/// Start a plugin and `initialize` it: the version must be one drplan speaks.
pub async fn start(launch: &Launch) -> Result<(Client, InitializeResult), ProviderError> {
    let client = Client::start(launch)?;
    let params = InitializeParams {
        protocol_versions: vec![rpc::PROTOCOL_VERSION.to_string()],
        client: ClientInfo { name: "drplan".into(), version: env!("CARGO_PKG_VERSION").into() },
    };
    let hello: serde_json::Value =
        client.call(method::INITIALIZE, &params, QUICK).await.map_err(|e| called(&client, e))?;
    // The version first: a plugin of another major version may answer in another shape.
    let version = hello.get("protocol_version").and_then(|v| v.as_str()).unwrap_or("(none)").to_string();
    if !rpc::major_of(&version).is_some_and(|major| rpc::SUPPORTED_MAJORS.contains(&major)) {
        let name = |key: &str| hello.get(key).and_then(|v| v.as_str()).unwrap_or("?").to_string();
        return Err(ProviderError::setup(
            format!(
                "plugin `{}` ({} {}) speaks protocol version {version}; this drplan speaks {}",
                launch.name,
                name("name"),
                name("version"),
                rpc::PROTOCOL_VERSION
            ),
            "use a plugin release for protocol 1.x, or a drplan that speaks the plugin's version",
        ));
    }
    let hello: InitializeResult = serde_json::from_value(hello).map_err(|e| {
        ProviderError::setup(
            format!("plugin `{}` answered `initialize` with a result drplan cannot read: {e}", launch.name),
            "see docs/provider-protocol.md for the shape of `initialize`'s result",
        )
    })?;
    Ok((client, hello))
}

fn called(client: &Client, error: CallError) -> ProviderError {
    match error {
        CallError::Rpc(e) => from_rpc(client.name(), e),
        CallError::Plugin(e) => e,
    }
}

fn nothing_supported() -> Capabilities {
    let none = drplan_protocol::Directions { forward: false, back: false };
    Capabilities {
        test_failover: none,
        planned_failover: none,
        unplanned_failover: none,
        failback_delta: false,
        failback_full: false,
        alternate_location: false,
        app_consistent_points: false,
        change_recovery_point: false,
    }
}

/// The plan as the plugin protocol describes it.
pub fn plan_view(model: &Model) -> PlanView {
    let path = model.source.path();
    PlanView {
        name: model.name.clone(),
        plan_path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        primary: model.site(model.protection.primary).name.clone(),
        recovery: model.site(model.protection.recovery).name.clone(),
        keep_points: model.protection.keep_points,
        sites: model
            .sites
            .iter()
            .map(|s| (s.name.clone(), SiteView { path: s.path.clone(), settings: s.settings.clone() }))
            .collect(),
        machines: model
            .machines
            .iter()
            .map(|m| MachineView {
                name: m.name.clone(),
                id: m.provider_id.clone(),
                consistency: m.consistency.as_ref().map(|c| ConsistencyHooks {
                    freeze: c.freeze.clone(),
                    thaw: c.thaw.clone(),
                    timeout_ms: u64::try_from(c.timeout.as_millis()).unwrap_or(u64::MAX),
                }),
            })
            .collect(),
    }
}

impl Platform for PluginProvider {
    // Plans are made after an inventory, which starts the plugin; before that nothing is
    // claimed to be supported.
    fn capabilities(&self) -> Capabilities {
        self.started.get().map(|s| s.hello.capabilities.clone()).unwrap_or_else(nothing_supported)
    }

    fn estimate(&self, op: &ProviderOp) -> Duration {
        let estimates = self.started.get().map(|s| &s.estimates);
        let ms = estimates.and_then(|e| e.get(op.machine())).and_then(|m| m.get(&op.kind())).copied().unwrap_or(0);
        Duration::from_millis(ms)
    }
}

impl Provider for PluginProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Plugin
    }

    fn inventory(&self) -> ProviderFuture<'_, Inventory> {
        Box::pin(self.call(method::INVENTORY, &serde_json::Value::Null, INVENTORY))
    }

    fn sites(&self) -> ProviderFuture<'_, BTreeMap<String, SiteInventory>> {
        Box::pin(self.call(method::SITES, &serde_json::Value::Null, QUICK))
    }

    fn execute<'a>(&'a self, op: &'a ProviderOp, cancel: CancellationToken) -> ProviderFuture<'a, OpOutcome> {
        // Without a journal id (a direct call), the operation is named by its content.
        let operation = format!("direct/{}", blake3::hash(serde_json::to_string(op).unwrap_or_default().as_bytes()));
        Box::pin(async move { self.execute_as(&operation, op, cancel, std::sync::Arc::new(|_| {})).await })
    }

    fn execute_as<'a>(
        &'a self,
        operation: &'a str,
        op: &'a ProviderOp,
        cancel: CancellationToken,
        progress: ProgressSink,
    ) -> ProviderFuture<'a, OpOutcome> {
        Box::pin(async move {
            let client = &self.started().await?.client;
            // Cancelled before it began: it never begins.
            if cancel.is_cancelled() {
                return Err(ProviderError::Cancelled);
            }
            let params = ExecuteParams { operation: operation.to_string(), op: op.clone() };
            let (id, answer) = client.send(method::EXECUTE, &params).map_err(|e| called(client, e))?;
            let (updates_tx, mut updates) = tokio::sync::mpsc::unbounded_channel();
            client.watch(operation, updates_tx);
            tokio::pin!(answer);
            let mut cancelled = false;
            let result = loop {
                tokio::select! {
                    result = &mut answer => break result,
                    Some(update) = updates.recv() => {
                        progress(OpProgress { bytes: update.bytes, total_bytes: update.total_bytes, message: update.message });
                    }
                    // Asked once; the plugin stops at a safe point and answers `cancelled`.
                    _ = cancel.cancelled(), if !cancelled => {
                        cancelled = true;
                        client.notify(method::CANCEL, &rpc::CancelParams { id: id.into() });
                    }
                }
            };
            client.unwatch(operation);
            match result {
                Ok(Ok(raw)) => serde_json::from_str(raw.get()).map_err(|e| {
                    ProviderError::failed(format!(
                        "plugin `{}` answered `execute` with an outcome drplan cannot read: {e}",
                        client.name()
                    ))
                }),
                Ok(Err(error)) => Err(from_rpc(client.name(), error)),
                Err(_) => Err(client.death()),
            }
        })
    }

    fn flush(&self) -> ProviderFuture<'_, ()> {
        Box::pin(self.call(method::FLUSH, &serde_json::Value::Null, QUICK))
    }

    fn claims<'a>(&'a self, me: &'a Claimant) -> ProviderFuture<'a, Vec<ForeignClaim>> {
        Box::pin(async move { self.optional(method::CLAIMS, &ClaimParams { me: me.clone() }).await })
    }

    fn claim<'a>(&'a self, me: &'a Claimant) -> ProviderFuture<'a, ()> {
        Box::pin(async move { self.optional(method::CLAIM, &ClaimParams { me: me.clone() }).await })
    }
}
