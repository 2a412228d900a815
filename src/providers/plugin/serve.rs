//! `drplan provider serve sim|local`: drplan's own providers behind the plugin protocol, on
//! stdin and stdout. It tests the protocol end to end against known semantics, measures its
//! overhead, and shows plugin authors a complete server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use drplan_protocol::rpc::{
    self, ClaimParams, ContentParams, CreateEstateParams, ExecuteParams, InitializeParams, InitializeResult,
    MachineParams, Message, OpenParams, OpenResult, ReachableParams, RpcError, code, method,
};
use drplan_protocol::{OpKind, ProviderOp, SyncMode};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec};
use tokio_util::sync::CancellationToken;

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
    cancels: Mutex<HashMap<String, CancellationToken>>,
    out: mpsc::UnboundedSender<String>,
}

/// Serve `kind` on stdin/stdout until `exit` or the end of stdin. Returns the exit code.
pub async fn serve(kind: ProviderKind) -> u8 {
    let (out, lines_out) = mpsc::unbounded_channel::<String>();
    let writer =
        tokio::spawn(super::client::write_lines(FramedWrite::new(tokio::io::stdout(), LinesCodec::new()), lines_out));
    let server = Arc::new(Server { kind, served: Mutex::default(), cancels: Mutex::default(), out });
    let mut input = FramedRead::new(tokio::io::stdin(), LinesCodec::new_with_max_length(64 * 1024 * 1024));
    while let Some(line) = input.next().await {
        let Ok(line) = line else { break };
        let message: Message = match serde_json::from_str(&line) {
            Ok(message) => message,
            Err(e) => {
                let error = RpcError { code: code::PARSE_ERROR, message: e.to_string(), data: None };
                server.send(Message::response(serde_json::Value::Null, Err(error)));
                continue;
            }
        };
        match (message.id, message.method.as_deref()) {
            (None, Some(method::EXIT)) => break,
            (None, Some(method::CANCEL)) => server.cancel(message.params),
            (None, _) => {}
            (Some(id), Some(name)) => {
                // Registered before the call starts, so a cancellation right behind it is seen.
                let token = CancellationToken::new();
                server.cancels.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), token.clone());
                let (server, name) = (server.clone(), name.to_string());
                tokio::spawn(async move {
                    let result = server.handle(token, &name, message.params).await;
                    server.cancels.lock().unwrap_or_else(|e| e.into_inner()).remove(&id.to_string());
                    server.send(Message::response(id, result));
                });
            }
            (Some(id), None) => {
                let error =
                    RpcError { code: code::INVALID_REQUEST, message: "a request needs a method".into(), data: None };
                server.send(Message::response(id, Err(error)));
            }
        }
    }
    drop(server);
    let _ = writer.await;
    0
}

impl Server {
    fn send(&self, message: Message) {
        super::client::queue(&self.out, &message);
    }

    fn cancel(&self, params: Option<rpc::Raw>) {
        let Some(params) = params.and_then(|p| serde_json::from_str::<rpc::CancelParams>(p.get()).ok()) else { return };
        if let Some(token) = self.cancels.lock().unwrap_or_else(|e| e.into_inner()).get(&params.id.to_string()) {
            token.cancel();
        }
    }

    /// The served provider's progress, as `$/progress` notifications of `operation`.
    fn progress_of(&self, operation: &str) -> crate::contract::ProgressSink {
        let (out, operation) = (self.out.clone(), operation.to_string());
        Arc::new(move |p: crate::contract::OpProgress| {
            let params = rpc::ProgressParams {
                operation: operation.clone(),
                bytes: p.bytes,
                total_bytes: p.total_bytes,
                message: p.message,
            };
            if let Ok(params) = rpc::raw(&params) {
                super::client::queue(&out, &Message::notification(method::PROGRESS, params));
            }
        })
    }

    fn provider(&self) -> Result<Arc<dyn Provider>, RpcError> {
        let served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        served.provider.clone().ok_or_else(|| not_ready("open a plan (or create a test estate) first"))
    }

    fn estate(&self) -> Result<Arc<dyn Estate>, RpcError> {
        let served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        served.estate.clone().ok_or_else(|| not_ready("create a test estate first"))
    }

    async fn handle(
        &self,
        token: CancellationToken,
        name: &str,
        params: Option<rpc::Raw>,
    ) -> Result<rpc::Raw, RpcError> {
        match name {
            method::INITIALIZE => reply(self.initialize(parse(params)?)?),
            method::OPEN => reply(self.open(parse(params)?)?),
            method::INVENTORY => reply(self.provider()?.inventory().await.map_err(|e| to_rpc(&e))?),
            method::SITES => reply(self.provider()?.sites().await.map_err(|e| to_rpc(&e))?),
            method::ESTIMATES => reply(self.estimates(parse(params)?)?),
            method::EXECUTE => {
                let params: ExecuteParams = parse(params)?;
                let provider = self.provider()?;
                let progress = self.progress_of(&params.operation);
                reply(
                    provider
                        .execute_as(&params.operation, &params.op, token, progress)
                        .await
                        .map_err(|e| to_rpc(&e))?,
                )
            }
            method::FLUSH => reply(self.provider()?.flush().await.map_err(|e| to_rpc(&e))?),
            method::CLAIMS => {
                let params: ClaimParams = parse(params)?;
                reply(self.provider()?.claims(&params.me).await.map_err(|e| to_rpc(&e))?)
            }
            method::CLAIM => {
                let params: ClaimParams = parse(params)?;
                reply(self.provider()?.claim(&params.me).await.map_err(|e| to_rpc(&e))?)
            }
            method::SHUTDOWN => reply(()),
            method::TEST_CREATE_ESTATE => reply(self.create_estate(parse(params)?).await?),
            method::TEST_WRITE => {
                let params: MachineParams = parse(params)?;
                reply(self.estate()?.write(&params.machine).await.map_err(test_error)?)
            }
            method::TEST_SET_REACHABLE => {
                let params: ReachableParams = parse(params)?;
                reply(self.estate()?.set_reachable(&params.site, params.reachable).await.map_err(test_error)?)
            }
            method::TEST_CONTENT => {
                let params: ContentParams = parse(params)?;
                reply(self.estate()?.content(&params.machine, &params.site).await.map_err(test_error)?)
            }
            _ => Err(RpcError { code: code::METHOD_NOT_FOUND, message: format!("no method `{name}`"), data: None }),
        }
    }

    fn initialize(&self, params: InitializeParams) -> Result<InitializeResult, RpcError> {
        let ours = rpc::major_of(rpc::PROTOCOL_VERSION);
        if !params.protocol_versions.iter().any(|v| rpc::major_of(v) == ours) {
            return Err(RpcError {
                code: code::INVALID_REQUEST,
                message: format!(
                    "this server speaks protocol {}; offered: {}",
                    rpc::PROTOCOL_VERSION,
                    params.protocol_versions.join(", ")
                ),
                data: None,
            });
        }
        Ok(InitializeResult {
            protocol_version: rpc::PROTOCOL_VERSION.into(),
            name: format!("drplan-{}", self.kind.as_str()),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities::default(),
            settings_schema: None,
        })
    }

    /// Open the plan's sites with the built-in provider (it reads the plan document itself).
    fn open(&self, params: OpenParams) -> Result<OpenResult, RpcError> {
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
    fn estimates(&self, params: EstimatesParams) -> Result<rpc::Estimates, RpcError> {
        let provider = self.provider()?;
        let (from, to) = self.served.lock().unwrap_or_else(|e| e.into_inner()).route.clone();
        Ok(params
            .machines
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

#[derive(serde::Deserialize)]
struct EstimatesParams {
    #[serde(default)]
    machines: Vec<String>,
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

fn parse<T: DeserializeOwned>(params: Option<rpc::Raw>) -> Result<T, RpcError> {
    serde_json::from_str(params.as_deref().map_or("null", |p| p.get())).map_err(|e| RpcError {
        code: code::INVALID_PARAMS,
        message: e.to_string(),
        data: None,
    })
}

fn reply<T: Serialize>(value: T) -> Result<rpc::Raw, RpcError> {
    rpc::raw(&value).map_err(|e| RpcError { code: code::PROVIDER_ERROR, message: e.to_string(), data: None })
}

fn not_ready(message: &str) -> RpcError {
    to_rpc(&ProviderError::setup(message, "the client calls `open` (or `test/createEstate`) after `initialize`"))
}

fn test_error(message: String) -> RpcError {
    to_rpc(&ProviderError::failed(message))
}
