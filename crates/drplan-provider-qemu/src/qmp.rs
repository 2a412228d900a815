//! A small QMP client: QEMU's JSON control socket. One command at a time; events that arrive
//! meanwhile are kept for whoever waits on them.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::errors::{Answer, failed};

/// Events nobody waited for yet are kept, the oldest dropped beyond this many.
const MAX_KEPT_EVENTS: usize = 256;

pub struct Qmp {
    lines: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    events: VecDeque<Value>,
}

impl Qmp {
    /// Connect and leave capabilities negotiation mode. `None` when nothing listens there.
    pub async fn connect(socket: &Path) -> Option<Qmp> {
        let stream = tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(socket)).await.ok()?.ok()?;
        let (read, writer) = stream.into_split();
        let mut qmp = Qmp { lines: BufReader::new(read).lines(), writer, events: VecDeque::new() };
        // The greeting, then capabilities. QEMU serves one client at a time and greets the
        // next when the current one leaves (a lab's flush, another call of this plugin).
        tokio::time::timeout(Duration::from_secs(30), qmp.lines.next_line()).await.ok()?.ok()??;
        qmp.execute("qmp_capabilities", json!({})).await.ok()?;
        Some(qmp)
    }

    /// Connect, retrying while QEMU starts.
    pub async fn connect_within(socket: &Path, within: Duration) -> Answer<Qmp> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(qmp) = Qmp::connect(socket).await {
                return Ok(qmp);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(failed(format!("QEMU's control socket {} did not answer", socket.display())));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn execute(&mut self, command: &str, arguments: Value) -> Answer<Value> {
        let mut request = json!({ "execute": command });
        if arguments.as_object().is_some_and(|a| !a.is_empty()) {
            request["arguments"] = arguments;
        }
        let line = format!("{request}\n");
        self.writer.write_all(line.as_bytes()).await.map_err(|e| failed(format!("QMP {command}: {e}")))?;
        loop {
            let message = self.next().await.map_err(|e| failed(format!("QMP {command}: {e}")))?;
            if message.get("event").is_some() {
                self.keep(message);
            } else if let Some(error) = message.get("error") {
                let desc = error.get("desc").and_then(|d| d.as_str()).unwrap_or("error");
                return Err(failed(format!("QMP {command}: {desc}")));
            } else {
                return Ok(message.get("return").cloned().unwrap_or(Value::Null));
            }
        }
    }

    /// The next event for which `wanted` holds (events already received first), or `None`
    /// when `within` passes first.
    pub async fn event(&mut self, within: Duration, wanted: impl Fn(&Value) -> bool) -> Answer<Option<Value>> {
        if let Some(i) = self.events.iter().position(&wanted) {
            return Ok(self.events.remove(i));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.next()).await {
                Err(_) => return Ok(None),
                Ok(message) => message.map_err(|e| failed(format!("QMP: {e}")))?,
            };
            if message.get("event").is_some() {
                if wanted(&message) {
                    return Ok(Some(message));
                }
                // Kept for whoever waits on it next (two jobs end in any order).
                self.keep(message);
            }
        }
    }

    fn keep(&mut self, event: Value) {
        if self.events.len() == MAX_KEPT_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Wait until QEMU closes the socket (it exits), or `within` passes: whether it did.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Err(_) => return false,
                Ok(Ok(Some(_))) => continue,
                Ok(_) => return true,
            }
        }
    }

    async fn next(&mut self) -> Result<Value, String> {
        let line = self.lines.next_line().await.map_err(|e| e.to_string())?.ok_or("QEMU closed its socket")?;
        serde_json::from_str(&line).map_err(|e| format!("not JSON from QEMU: {e}"))
    }
}
