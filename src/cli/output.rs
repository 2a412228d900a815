//! Command output that never panics and never hides a failed write. `print!` panics when the
//! reader has gone away (`drplan plan | head`); a lost reader is not a failure of the command
//! (an apply carries on, its result is in state and history), but an output that cannot be
//! written (a full disk under `> plan.json`) fails a command that would otherwise succeed.

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use super::exit;

/// The first write error other than a lost reader.
static FAILED: OnceLock<String> = OnceLock::new();

/// `--log-format json`: stderr carries JSON lines only.
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

pub fn set_json_logs(on: bool) {
    JSON_LOGS.store(on, Ordering::Relaxed);
}

pub fn json_logs() -> bool {
    JSON_LOGS.load(Ordering::Relaxed)
}

pub fn stdout(args: fmt::Arguments) {
    settle(io::stdout().lock().write_fmt(args));
}

/// Text for people on stderr; with JSON logs, each line becomes an event instead.
pub fn stderr(args: fmt::Arguments) {
    if json_logs() {
        let text = args.to_string();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            tracing::info!(target: "drplan", "{line}");
        }
        return;
    }
    settle(io::stderr().lock().write_fmt(args));
}

/// Pretty JSON on stdout, streamed (a large plan is tens of MiB), then a newline.
pub fn json(value: &impl serde::Serialize) {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, value).map_err(io::Error::from);
    settle(written.and_then(|()| writeln!(out)).and_then(|()| out.flush()));
}

fn settle(result: io::Result<()>) {
    if let Err(e) = result
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        let _ = FAILED.set(e.to_string());
    }
}

/// The command's exit code, once its output is flushed: a failed write turns success into an
/// error (other codes already say something went differently).
pub fn exit_code(code: u8) -> u8 {
    settle(io::stdout().lock().flush());
    match FAILED.get() {
        Some(e) if code == exit::OK => {
            let _ = writeln!(io::stderr(), "error: cannot write output: {e}");
            exit::ERROR
        }
        _ => code,
    }
}
