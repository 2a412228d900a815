//! The serve loop: requests in on one stream, answers out on another, each call a task.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use drplan_protocol::rpc::{
    self, ClaimParams, ContentParams, CreateEstateParams, ExecuteParams, InitializeParams, InitializeResult,
    MachineParams, Message, OpenParams, OpenResult, ReachableParams, RpcError, code, method,
};
use drplan_protocol::{ForeignClaim, Inventory, OpOutcome, SiteInventory};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec};
use tokio_util::sync::CancellationToken;

use crate::Call;
use crate::errors::not_implemented;

/// The longest request line read (an `open` of a large plan).
const MAX_LINE: usize = 64 * 1024 * 1024;

type Answer<T> = Result<T, RpcError>;

/// A provider, as the protocol sees it. Methods a plugin does not have answer `-32601`
/// (drplan treats `claims`/`claim` and the `test/` methods as optional).
pub trait Plugin: Send + Sync + 'static {
    /// Who the plugin is and what it supports (the loop has checked the protocol version).
    fn initialize(&self) -> InitializeResult;
    fn open(&self, params: OpenParams) -> impl Future<Output = Answer<OpenResult>> + Send;
    fn inventory(&self) -> impl Future<Output = Answer<Inventory>> + Send;
    fn sites(&self) -> impl Future<Output = Answer<BTreeMap<String, SiteInventory>>> + Send;
    fn estimates(&self, machines: Vec<String>) -> impl Future<Output = Answer<rpc::Estimates>> + Send;
    fn execute(&self, call: Call, params: ExecuteParams) -> impl Future<Output = Answer<OpOutcome>> + Send;
    fn flush(&self) -> impl Future<Output = Answer<()>> + Send {
        async { Ok(()) }
    }
    fn claims(&self, _me: ClaimParams) -> impl Future<Output = Answer<Vec<ForeignClaim>>> + Send {
        async { Err(not_implemented(method::CLAIMS)) }
    }
    fn claim(&self, _me: ClaimParams) -> impl Future<Output = Answer<()>> + Send {
        async { Err(not_implemented(method::CLAIM)) }
    }
    /// Called once before the plugin exits (after `shutdown`, or at the end of its input).
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
    fn test_create_estate(&self, _params: CreateEstateParams) -> impl Future<Output = Answer<OpenResult>> + Send {
        async { Err(not_implemented(method::TEST_CREATE_ESTATE)) }
    }
    fn test_write(&self, _params: MachineParams) -> impl Future<Output = Answer<()>> + Send {
        async { Err(not_implemented(method::TEST_WRITE)) }
    }
    fn test_set_reachable(&self, _params: ReachableParams) -> impl Future<Output = Answer<()>> + Send {
        async { Err(not_implemented(method::TEST_SET_REACHABLE)) }
    }
    fn test_content(&self, _params: ContentParams) -> impl Future<Output = Answer<String>> + Send {
        async { Err(not_implemented(method::TEST_CONTENT)) }
    }
}

/// Serve `plugin` on stdin and stdout until `exit` or the end of stdin.
pub async fn serve_stdio<P: Plugin>(plugin: P) {
    serve(plugin, tokio::io::stdin(), tokio::io::stdout()).await
}

struct Server<P> {
    plugin: P,
    cancels: Mutex<HashMap<String, CancellationToken>>,
    out: mpsc::UnboundedSender<String>,
}

/// Serve `plugin`: requests from `input`, answers and notifications to `output`.
pub async fn serve<P, R, W>(plugin: P, input: R, output: W)
where
    P: Plugin,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out, lines_out) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(crate::write_lines(FramedWrite::new(output, LinesCodec::new()), lines_out));
    let server = Arc::new(Server { plugin, cancels: Mutex::default(), out });
    let mut input = FramedRead::new(input, LinesCodec::new_with_max_length(MAX_LINE));
    let mut calls = tokio::task::JoinSet::new();
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
                calls.spawn(async move {
                    let result = server.handle(token, &name, message.params).await;
                    server.cancels.lock().unwrap_or_else(|e| e.into_inner()).remove(&id.to_string());
                    server.send(Message::response(id, result));
                });
                while calls.try_join_next().is_some() {}
            }
            (Some(id), None) => {
                let error =
                    RpcError { code: code::INVALID_REQUEST, message: "a request needs a method".into(), data: None };
                server.send(Message::response(id, Err(error)));
            }
        }
    }
    // Calls still running are stopped where they await; the plugin tidies up once.
    calls.shutdown().await;
    server.plugin.shutdown().await;
    drop(server);
    let _ = writer.await;
}

impl<P: Plugin> Server<P> {
    fn send(&self, message: Message) {
        crate::queue(&self.out, &message);
    }

    fn cancel(&self, params: Option<rpc::Raw>) {
        let Some(params) = params.and_then(|p| serde_json::from_str::<rpc::CancelParams>(p.get()).ok()) else { return };
        if let Some(token) = self.cancels.lock().unwrap_or_else(|e| e.into_inner()).get(&params.id.to_string()) {
            token.cancel();
        }
    }

    async fn handle(&self, token: CancellationToken, name: &str, params: Option<rpc::Raw>) -> Answer<rpc::Raw> {
        let plugin = &self.plugin;
        match name {
            method::INITIALIZE => reply(self.initialize(parse(params)?)?),
            method::OPEN => reply(plugin.open(parse(params)?).await?),
            method::INVENTORY => reply(plugin.inventory().await?),
            method::SITES => reply(plugin.sites().await?),
            method::ESTIMATES => reply(plugin.estimates(parse::<EstimatesParams>(params)?.machines).await?),
            method::EXECUTE => {
                let params: ExecuteParams = parse(params)?;
                let call = Call::new(params.operation.clone(), self.out.clone(), token);
                reply(plugin.execute(call, params).await?)
            }
            method::FLUSH => reply(plugin.flush().await?),
            method::CLAIMS => reply(plugin.claims(parse(params)?).await?),
            method::CLAIM => reply(plugin.claim(parse(params)?).await?),
            method::SHUTDOWN => reply(()),
            method::TEST_CREATE_ESTATE => reply(plugin.test_create_estate(parse(params)?).await?),
            method::TEST_WRITE => reply(plugin.test_write(parse(params)?).await?),
            method::TEST_SET_REACHABLE => reply(plugin.test_set_reachable(parse(params)?).await?),
            method::TEST_CONTENT => reply(plugin.test_content(parse(params)?).await?),
            _ => Err(not_implemented(name)),
        }
    }

    fn initialize(&self, params: InitializeParams) -> Answer<InitializeResult> {
        let ours = rpc::major_of(rpc::PROTOCOL_VERSION);
        if !params.protocol_versions.iter().any(|v| rpc::major_of(v) == ours) {
            return Err(RpcError {
                code: code::INVALID_REQUEST,
                message: format!(
                    "this plugin speaks protocol {}; offered: {}",
                    rpc::PROTOCOL_VERSION,
                    params.protocol_versions.join(", ")
                ),
                data: None,
            });
        }
        Ok(self.plugin.initialize())
    }
}

#[derive(serde::Deserialize)]
struct EstimatesParams {
    #[serde(default)]
    machines: Vec<String>,
}

fn parse<T: DeserializeOwned>(params: Option<rpc::Raw>) -> Answer<T> {
    serde_json::from_str(params.as_deref().map_or("null", |p| p.get())).map_err(|e| RpcError {
        code: code::INVALID_PARAMS,
        message: e.to_string(),
        data: None,
    })
}

fn reply<T: Serialize>(value: T) -> Answer<rpc::Raw> {
    rpc::raw(&value).map_err(|e| RpcError { code: code::PROVIDER_ERROR, message: e.to_string(), data: None })
}
