//! `drplan provider serve sim|local`: drplan's own providers behind the plugin protocol, on
//! stdin and stdout. It tests the protocol end to end against known semantics, measures its
//! overhead, and shows plugin authors a complete server (built on the `drplan-plugin` crate,
//! as a Rust plugin is).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use drplan_plugin::{Call, Plugin};
use drplan_protocol::rpc::{
    self, ClaimParams, ContentParams, CreateEstateParams, ExecuteParams, InitializeResult, MachineParams, OpenParams,
    OpenResult, ReachableParams, RpcError,
};
use drplan_protocol::{ForeignClaim, Inventory, OpKind, OpOutcome, ProviderOp, SiteInventory, SyncMode};

use super::errors::to_rpc;
use crate::contract::suite::{Estate, Fixture};
use crate::contract::{Capabilities, Provider, ProviderError};
use crate::spec::ProviderKind;

/// What the server drives: a plan's sites (after `open`) or a test estate.
#[derive(Default)]
struct Served {
    provider: Option<Arc<dyn Provider>>,
    estate: Option<Arc<dyn Estate>>,
    /// The sites estimates are made between.
    route: (String, String),
}

struct Server {
    kind: ProviderKind,
    served: Mutex<Served>,
}

/// Serve `kind` on stdin/stdout until `exit` or the end of stdin. Returns the exit code.
pub async fn serve(kind: ProviderKind) -> u8 {
    drplan_plugin::serve_stdio(Server { kind, served: Mutex::default() }).await;
    0
}

impl Plugin for Server {
    fn initialize(&self) -> InitializeResult {
        InitializeResult {
            protocol_version: rpc::PROTOCOL_VERSION.into(),
            name: format!("drplan-{}", self.kind.as_str()),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities::default(),
            settings_schema: None,
        }
    }

    async fn open(&self, params: OpenParams) -> Result<OpenResult, RpcError> {
        self.open_plan(params)
    }

    async fn inventory(&self) -> Result<Inventory, RpcError> {
        self.provider()?.inventory().await.map_err(|e| to_rpc(&e))
    }

    async fn sites(&self) -> Result<BTreeMap<String, SiteInventory>, RpcError> {
        self.provider()?.sites().await.map_err(|e| to_rpc(&e))
    }

    async fn estimates(&self, machines: Vec<String>) -> Result<rpc::Estimates, RpcError> {
        self.estimates_of(&machines)
    }

    async fn execute(&self, call: Call, params: ExecuteParams) -> Result<OpOutcome, RpcError> {
        let provider = self.provider()?;
        let progress = progress_of(call.clone());
        provider.execute_as(&params.operation, &params.op, call.token().clone(), progress).await.map_err(|e| to_rpc(&e))
    }

    async fn flush(&self) -> Result<(), RpcError> {
        self.provider()?.flush().await.map_err(|e| to_rpc(&e))
    }

    async fn claims(&self, params: ClaimParams) -> Result<Vec<ForeignClaim>, RpcError> {
        self.provider()?.claims(&params.me).await.map_err(|e| to_rpc(&e))
    }

    async fn claim(&self, params: ClaimParams) -> Result<(), RpcError> {
        self.provider()?.claim(&params.me).await.map_err(|e| to_rpc(&e))
    }

    async fn test_create_estate(&self, params: CreateEstateParams) -> Result<OpenResult, RpcError> {
        self.create_estate(params).await
    }

    async fn test_write(&self, params: MachineParams) -> Result<(), RpcError> {
        self.estate()?.write(&params.machine).await.map_err(test_error)
    }

    async fn test_set_reachable(&self, params: ReachableParams) -> Result<(), RpcError> {
        self.estate()?.set_reachable(&params.site, params.reachable).await.map_err(test_error)
    }

    async fn test_content(&self, params: ContentParams) -> Result<String, RpcError> {
        self.estate()?.content(&params.machine, &params.site).await.map_err(test_error)
    }
}

/// The served provider's progress, as the call's `$/progress` notifications.
fn progress_of(call: Call) -> crate::contract::ProgressSink {
    Arc::new(move |p: crate::contract::OpProgress| call.progress(p.bytes, p.total_bytes, p.message))
}

impl Server {
    fn provider(&self) -> Result<Arc<dyn Provider>, RpcError> {
        let served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        served.provider.clone().ok_or_else(|| not_ready("open a plan (or create a test estate) first"))
    }

    fn estate(&self) -> Result<Arc<dyn Estate>, RpcError> {
        let served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        served.estate.clone().ok_or_else(|| not_ready("create a test estate first"))
    }

    /// Open the plan's sites with the built-in provider (it reads the plan document itself).
    fn open_plan(&self, params: OpenParams) -> Result<OpenResult, RpcError> {
        let validation = crate::validate::validate_file(&params.plan.plan_path);
        let Some(model) = validation.model else {
            let problems: Vec<String> = validation.diagnostics.iter().map(|d| d.to_string()).collect();
            return Err(to_rpc(&ProviderError::setup(
                format!("the plan `{}` is not valid: {}", params.plan.plan_path.display(), problems.join("; ")),
                "run `drplan validate` on it",
            )));
        };
        let provider: Arc<dyn Provider> = match self.kind {
            ProviderKind::Sim => Arc::new(crate::providers::sim::SimProvider::open(&model).map_err(|e| to_rpc(&e))?),
            ProviderKind::Local => {
                Arc::new(crate::providers::local::LocalProvider::open(&model).map_err(|e| to_rpc(&e))?)
            }
            ProviderKind::Plugin => return Err(not_ready("a plugin cannot serve another plugin")),
        };
        let capabilities = provider.capabilities();
        let mut served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        served.route = (params.plan.primary, params.plan.recovery);
        served.provider = Some(provider);
        Ok(OpenResult { capabilities: Some(capabilities) })
    }

    async fn create_estate(&self, params: CreateEstateParams) -> Result<OpenResult, RpcError> {
        let estate: Arc<dyn Estate> = match self.kind {
            ProviderKind::Sim => crate::providers::sim::fixture::SimFixture.create(params.machines).await,
            ProviderKind::Local => crate::providers::local::fixture::LocalFixture.create(params.machines).await,
            ProviderKind::Plugin => Err("a plugin cannot serve another plugin".into()),
        }
        .map_err(test_error)?
        .into();
        let provider = estate.provider();
        let capabilities = provider.capabilities();
        let mut served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        served.route = (crate::contract::suite::PRIMARY.into(), crate::contract::suite::RECOVERY.into());
        served.provider = Some(provider);
        served.estate = Some(estate);
        Ok(OpenResult { capabilities: Some(capabilities) })
    }

    /// Estimates of every operation kind for each machine, between the plan's two sites.
    fn estimates_of(&self, machines: &[String]) -> Result<rpc::Estimates, RpcError> {
        let provider = self.provider()?;
        let (from, to) = self.served.lock().unwrap_or_else(|e| e.into_inner()).route.clone();
        Ok(machines
            .iter()
            .map(|machine| {
                let kinds = OpKind::ALL
                    .iter()
                    .map(|&kind| (kind, provider.estimate(&example(kind, machine, &from, &to)).as_millis() as u64));
                (machine.clone(), kinds.collect())
            })
            .collect())
    }
}

/// An operation of `kind` on `machine` between `from` and `to`, to ask its duration.
fn example(kind: OpKind, machine: &str, from: &str, to: &str) -> ProviderOp {
    let (machine, from, to) = (machine.to_string(), from.to_string(), to.to_string());
    let timeout = std::time::Duration::from_secs(300);
    match kind {
        OpKind::EnableProtection => ProviderOp::EnableProtection { machine, from, to },
        OpKind::TakePoint => ProviderOp::TakePoint { machine, from, to },
        OpKind::Shutdown => ProviderOp::Shutdown { machine, site: from, timeout },
        OpKind::Start => ProviderOp::Start { machine, site: to, nics: Vec::new(), timeout },
        OpKind::Sync => ProviderOp::Sync { machine, from, to, mode: SyncMode::Delta, final_sync: true },
        OpKind::Failover => {
            ProviderOp::Failover { machine, from, to, point: None, prefer_synced: false, nics: Vec::new() }
        }
        OpKind::Commit => ProviderOp::Commit { machine, site: to },
        OpKind::ChangePoint => ProviderOp::ChangePoint { machine, site: to, point: 1 },
        OpKind::Revert => ProviderOp::Revert { machine, from: to, to: from },
        OpKind::Reprotect => ProviderOp::Reprotect { machine, from: to, to: from },
        OpKind::CreateTestCopy => {
            ProviderOp::CreateTestCopy { machine, site: to, point: 1, nics: Vec::new(), drill: "estimate".into() }
        }
        OpKind::RemoveTestCopy => ProviderOp::RemoveTestCopy { machine, site: to, drill: "estimate".into() },
    }
}

fn not_ready(message: &str) -> RpcError {
    to_rpc(&ProviderError::setup(message, "the client calls `open` (or `test/createEstate`) after `initialize`"))
}

fn test_error(message: String) -> RpcError {
    to_rpc(&ProviderError::failed(message))
}
