//! The host's end of the lab guest's agent: `freeze` and `thaw` over the VM's `drplan.agent`
//! port (a unix socket beside its disks). The lab machines' `freeze` and `thaw` programs call
//! `drplan lab agent freeze|thaw SOCKET`; the QEMU provider runs them around each point.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long one attempt waits for the guest's answer, and how many are made (both requests
/// are idempotent, and a request the guest never saw must not leave it frozen).
const ANSWER_WITHIN: Duration = Duration::from_secs(8);
const ATTEMPTS: usize = 3;

/// Send `freeze` or `thaw` and return the guest's answer (`frozen N`, `thawed`).
pub fn request(socket: &Path, action: &str) -> Result<String, String> {
    let expect = match action {
        "freeze" => "frozen",
        "thaw" => "thawed",
        other => return Err(format!("`{other}`: the agent knows freeze and thaw")),
    };
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        match attempt(socket, action) {
            Ok(answer) if answer.starts_with(expect) => return Ok(answer),
            Ok(answer) => return Err(format!("the agent answered `{answer}` to `{action}`")),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn attempt(socket: &Path, action: &str) -> Result<String, String> {
    let stream =
        UnixStream::connect(socket).map_err(|e| format!("cannot reach the agent at {}: {e}", socket.display()))?;
    stream.set_read_timeout(Some(ANSWER_WITHIN)).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    writeln!(writer, "{action}").map_err(|e| format!("cannot write to the agent: {e}"))?;
    let mut line = String::new();
    let read = BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("the agent did not answer `{action}` within {ANSWER_WITHIN:?}: {e}"))?;
    if read == 0 {
        return Err(format!("the agent closed the channel without answering `{action}`"));
    }
    Ok(line.trim().to_string())
}
