//! The drplan side of one plugin process: requests out on its stdin, one JSON object per line;
//! responses and notifications in on its stdout, matched by id; its stderr kept as its log.
//! A plugin that exits, hangs past a timeout or prints something that is not the protocol
//! fails every call in flight with a diagnostic that names it and its last call.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drplan_plugin::{queue, write_lines};
use drplan_protocol::rpc::{self, Message, ProgressParams, Raw, RpcError, code};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec};

use crate::contract::ProviderError;

/// The longest line drplan reads from a plugin (a 10,000-machine inventory is tens of MiB).
const MAX_LINE: usize = 256 * 1024 * 1024;
/// Lines of the plugin's stderr kept for diagnostics.
const STDERR_KEPT: usize = 20;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Raw, RpcError>>>>>;

/// How to start a plugin, and what to call it in messages.
#[derive(Debug, Clone)]
pub struct Launch {
    pub name: String,
    pub argv: Vec<String>,
    pub dir: std::path::PathBuf,
}

pub struct Client {
    name: String,
    pid: Option<u32>,
    next_id: AtomicU64,
    pending: Pending,
    out: mpsc::UnboundedSender<String>,
    progress: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<ProgressParams>>>>,
    /// Why the plugin cannot answer any more (exited, spoke garbage), once it cannot.
    dead: Arc<Mutex<Option<String>>>,
    last_call: Arc<Mutex<String>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Client {
    /// Start the plugin (argv, never a shell string) in `dir`.
    pub fn start(launch: &Launch) -> Result<Client, ProviderError> {
        let Some((program, args)) = launch.argv.split_first() else {
            return Err(ProviderError::setup(
                format!("plugin `{}` has an empty command", launch.name),
                "give its argv",
            ));
        };
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(&launch.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C at the terminal is drplan's to handle (a data
            // sync is not interrupted by the first), and stopping it reaches its children.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ProviderError::setup(
                    format!("cannot start plugin `{}` ({}): {e}", launch.name, launch.argv.join(" ")),
                    "install it next to drplan or on PATH as `drplan-provider-NAME`, or give the site `plugin: [ARGV...]`",
                )
            })?;
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
            return Err(ProviderError::failed("the plugin's pipes were not set up"));
        };
        let client = Client {
            name: launch.name.clone(),
            pid: child.id(),
            next_id: AtomicU64::new(1),
            pending: Arc::default(),
            out: spawn_writer(stdin),
            progress: Arc::default(),
            dead: Arc::default(),
            last_call: Arc::new(Mutex::new("(none yet)".into())),
            stderr: Arc::default(),
        };
        client.spawn_reader(stdout, child);
        client.spawn_stderr(stderr);
        Ok(client)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Call `method` and wait for its answer, at most `timeout`.
    pub async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
        timeout: Duration,
    ) -> Result<R, CallError> {
        let (id, answer) = self.send(method, params)?;
        let raw = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Ok(value))) => value,
            Ok(Ok(Err(error))) => return Err(CallError::Rpc(error)),
            Ok(Err(_)) => return Err(CallError::Plugin(self.death())),
            Err(_) => {
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                return Err(CallError::Plugin(self.broken(&format!(
                    "did not answer `{method}` within {}",
                    crate::spec::time_format::human_duration(timeout)
                ))));
            }
        };
        serde_json::from_str(raw.get()).map_err(|e| {
            CallError::Plugin(self.broken(&format!("answered `{method}` with a result drplan cannot read: {e}")))
        })
    }

    /// Send a request; the id and where its answer arrives.
    pub fn send<P: Serialize>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<(u64, oneshot::Receiver<Result<Raw, RpcError>>), CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let params = rpc::raw(params).map_err(|e| CallError::Plugin(ProviderError::failed(e.to_string())))?;
        let line = serde_json::to_string(&Message::request(id, method, params))
            .map_err(|e| CallError::Plugin(ProviderError::failed(e.to_string())))?;
        let (tx, rx) = oneshot::channel();
        {
            // Death is checked under the lock `mark_dead` takes to fail what is pending, after
            // it marked the plugin dead: a plugin dying now is either seen here or fails this
            // request with the others. (Checked before taking the lock, a request could slip
            // in after the clearing and wait for its timeout: an op's is an hour.)
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if self.dead.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                drop(pending);
                return Err(CallError::Plugin(self.death()));
            }
            pending.insert(id, tx);
        }
        *self.last_call.lock().unwrap_or_else(|e| e.into_inner()) = method.to_string();
        self.out.send(line).map_err(|_| CallError::Plugin(self.death()))?;
        Ok((id, rx))
    }

    /// Send a notification (no answer).
    pub fn notify<P: Serialize>(&self, method: &str, params: &P) {
        if let Ok(params) = rpc::raw(params) {
            self.post(Message::notification(method, params));
        }
    }

    /// Progress notifications of `operation` go to `tx` until [`Client::unwatch`].
    pub fn watch(&self, operation: &str, tx: mpsc::UnboundedSender<ProgressParams>) {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).insert(operation.to_string(), tx);
    }

    pub fn unwatch(&self, operation: &str) {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).remove(operation);
    }

    /// Ask the plugin to shut down and exit, and wait until it has, at most `grace`; stopped
    /// after that. For a plugin whose tidying up must not be cut short by drplan's own exit
    /// (a test estate's VMs are stopped in the plugin's shutdown).
    pub async fn shutdown(&self, grace: Duration) {
        let began = std::time::Instant::now();
        let _ = self.call::<_, serde::de::IgnoredAny>(rpc::method::SHUTDOWN, &(), grace).await;
        self.notify(rpc::method::EXIT, &());
        while self.dead.lock().unwrap_or_else(|e| e.into_inner()).is_none() && began.elapsed() < grace {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(pid) = self.pid {
            stop_after(pid, Duration::ZERO);
        }
    }

    /// Ask the plugin to shut down and exit; stop it if it does not within `grace`.
    pub fn close(&self, grace: Duration) {
        // Id 0 is never a caller's: its answer is dropped.
        if let Ok(null) = rpc::raw(&()) {
            self.post(Message::request(0, rpc::method::SHUTDOWN, null));
        }
        self.notify(rpc::method::EXIT, &());
        if let Some(pid) = self.pid {
            // A thread, not a task: this may run while the runtime winds down.
            std::thread::spawn(move || stop_after(pid, grace));
        }
    }

    /// Send a message nobody waits an answer for.
    fn post(&self, message: Message) {
        queue(&self.out, &message);
    }

    /// The error for a plugin that stopped answering, with its last call and stderr.
    pub fn death(&self) -> ProviderError {
        let why = self.dead.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_else(|| "stopped".into());
        self.error(&why)
    }

    /// Mark the plugin as broken for `why`; every call in flight fails.
    fn broken(&self, why: &str) -> ProviderError {
        mark_dead(&self.dead, &self.pending, why);
        self.error(why)
    }

    fn error(&self, why: &str) -> ProviderError {
        let last = self.last_call.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let log: Vec<String> = self.stderr.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        let log = match log.is_empty() {
            true => String::new(),
            false => format!("; its last words on stderr: {}", log.join(" | ")),
        };
        ProviderError::setup(
            format!("plugin `{}` {why} (last call: `{last}`){log}", self.name),
            "the journal is intact: fix or replace the plugin, then `drplan resume` continues with a fresh one",
        )
    }

    fn spawn_reader(&self, stdout: tokio::process::ChildStdout, mut child: tokio::process::Child) {
        let (pending, progress, dead) = (self.pending.clone(), self.progress.clone(), self.dead.clone());
        tokio::spawn(async move {
            let mut lines = FramedRead::new(stdout, LinesCodec::new_with_max_length(MAX_LINE));
            let why = loop {
                match lines.next().await {
                    Some(Ok(line)) if line.trim().is_empty() => {}
                    Some(Ok(line)) => {
                        if let Err(why) = dispatch(&line, &pending, &progress) {
                            break why;
                        }
                    }
                    Some(Err(e)) => break format!("wrote an unreadable line ({e})"),
                    None => {
                        let status = child.wait().await.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                        break format!("exited ({status})");
                    }
                }
            };
            mark_dead(&dead, &pending, &why);
        });
    }

    fn spawn_stderr(&self, stderr: tokio::process::ChildStderr) {
        let (kept, name) = (self.stderr.clone(), self.name.clone());
        tokio::spawn(async move {
            let mut lines = FramedRead::new(stderr, LinesCodec::new_with_max_length(64 * 1024));
            while let Some(line) = lines.next().await {
                let Ok(line) = line else { continue };
                tracing::info!(target: "drplan::plugin", plugin = %name, "{line}");
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == STDERR_KEPT {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.close(Duration::from_secs(5));
    }
}

/// Why a call failed: the plugin answered with an error, or the plugin itself failed.
#[derive(Debug)]
pub enum CallError {
    Rpc(RpcError),
    Plugin(ProviderError),
}

fn spawn_writer(stdin: tokio::process::ChildStdin) -> mpsc::UnboundedSender<String> {
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(write_lines(FramedWrite::new(stdin, LinesCodec::new()), rx));
    tx
}

/// One line from the plugin: a response (to its caller) or a progress notification.
fn dispatch(
    line: &str,
    pending: &Pending,
    progress: &Mutex<HashMap<String, mpsc::UnboundedSender<ProgressParams>>>,
) -> Result<(), String> {
    let shown: String = line.chars().take(120).collect();
    let message: Message = serde_json::from_str(line)
        .map_err(|_| format!("printed something that is not JSON-RPC on stdout: `{shown}`"))?;
    if message.jsonrpc != "2.0" {
        return Err(format!("printed a message without `\"jsonrpc\": \"2.0\"`: `{shown}`"));
    }
    match (&message.id, &message.method) {
        (Some(id), None) => {
            let Some(id) = id.as_u64() else { return Err(format!("answered an id drplan never sent: `{shown}`")) };
            let Some(waiting) = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id) else {
                // The caller gave up (timeout) or the id is from before: nothing to deliver.
                return Ok(());
            };
            let result = match (message.result, message.error) {
                (_, Some(error)) => Err(error),
                (Some(result), None) => Ok(result),
                (None, None) => {
                    rpc::raw(&()).map_err(|e| RpcError { code: code::PARSE_ERROR, message: e.to_string(), data: None })
                }
            };
            let _ = waiting.send(result);
            Ok(())
        }
        (None, Some(method)) if method == rpc::method::PROGRESS => {
            if let Some(params) = message.params.and_then(|p| serde_json::from_str::<ProgressParams>(p.get()).ok())
                && let Some(tx) = progress.lock().unwrap_or_else(|e| e.into_inner()).get(&params.operation)
            {
                let _ = tx.send(params);
            }
            Ok(())
        }
        // Other notifications (a newer minor version's) are ignored; requests from a plugin
        // are not part of version 1.
        (None, Some(_)) => Ok(()),
        _ => Err(format!("printed a message that is neither a response nor a notification: `{shown}`")),
    }
}

fn mark_dead(dead: &Mutex<Option<String>>, pending: &Pending, why: &str) {
    // Dead first, then the clearing (which `Client::send` relies on); never both locks at
    // once here, as `send` takes them in the other order.
    dead.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| why.to_string());
    // Dropping the senders wakes every caller, who then reads why.
    pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Give a plugin `grace` to exit after `exit`, then SIGTERM, then SIGKILL.
fn stop_after(pid: u32, grace: Duration) {
    let Some(process) = crate::os::process::ProcessId::of(pid) else { return };
    if crate::os::process::wait_gone(&process, grace) {
        return;
    }
    let _ = crate::os::process::stop(&process, Duration::from_secs(5));
}
