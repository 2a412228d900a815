//! The small process that stands between drplan and a script (`drplan __supervise-step`), so
//! that a script's outcome survives drplan: it starts the script only when told to (after
//! drplan has journalled who runs it), enforces the timeout, and writes how the script ended
//! to a status file, whether or not drplan is still there to wait for it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::os::fs::{PRIVATE_FILE, open_write};
use crate::os::process::kill_group;

/// The hidden subcommand the drplan binary answers to.
pub const SUBCOMMAND: &str = "__supervise-step";

/// What drplan writes on the supervisor's stdin once the start is journalled.
pub const GO: &[u8] = b"go\n";

/// How long a script has to stop after SIGTERM before its process group is killed.
const GRACE: Duration = Duration::from_secs(10);

/// How a supervised script ended, as its status file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Ending {
    Exited {
        code: i32,
    },
    Signalled {
        signal: i32,
    },
    TimedOut,
    /// Stopped because drplan (or someone) asked the supervisor to stop.
    Stopped,
    /// The go-ahead never came (drplan died before it journalled the start): nothing ran.
    NotStarted,
    CannotStart {
        error: String,
    },
}

/// Where a supervised attempt keeps its outcome and output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFiles {
    pub status: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl StepFiles {
    /// The files of attempt `attempt` of `step`, in `dir`. Step ids contain `/`, so files are
    /// named by a hash of the id.
    pub fn new(dir: &Path, step: &str, attempt: u32) -> StepFiles {
        let key = &blake3::hash(step.as_bytes()).to_hex()[..16];
        let name = |ext: &str| dir.join(format!("{key}-{attempt}.{ext}"));
        StepFiles { status: name("status"), stdout: name("out"), stderr: name("err") }
    }

    /// How the attempt ended; None while nothing says so (still running, or lost).
    pub fn ending(&self) -> Option<Ending> {
        let bytes = std::fs::read(&self.status).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Forget the attempt's files once its outcome is journalled.
    pub fn remove(&self) {
        for path in [&self.status, &self.stdout, &self.stderr] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The supervisor's command line after the subcommand: STATUS STDOUT STDERR TIMEOUT_MS DIR
/// PROGRAM [ARGS...].
pub fn args(
    files: &StepFiles,
    timeout: Duration,
    dir: &Path,
    program: &Path,
    args: &[String],
) -> Vec<std::ffi::OsString> {
    let mut argv: Vec<std::ffi::OsString> = vec![
        SUBCOMMAND.into(),
        files.status.clone().into(),
        files.stdout.clone().into(),
        files.stderr.clone().into(),
        timeout.as_millis().to_string().into(),
        dir.into(),
        program.into(),
    ];
    argv.extend(args.iter().map(Into::into));
    argv
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Run as `drplan __supervise-step ...` (the arguments after the subcommand). Exit code 0
/// when the status file was written, 1 when even that failed.
pub fn main(argv: &[std::ffi::OsString]) -> u8 {
    let [status, stdout, stderr, timeout, dir, program, rest @ ..] = argv else {
        eprintln!("drplan {SUBCOMMAND}: STATUS STDOUT STDERR TIMEOUT_MS DIR PROGRAM [ARGS...]");
        return 1;
    };
    let files = StepFiles { status: status.into(), stdout: stdout.into(), stderr: stderr.into() };
    let timeout = Duration::from_millis(timeout.to_str().and_then(|t| t.parse().ok()).unwrap_or(u64::MAX / 4));
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let ending = if told_to_go() {
        supervise(&files, timeout, Path::new(dir), Path::new(program), rest)
    } else {
        Ending::NotStarted
    };
    match write_ending(&files.status, &ending) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("drplan {SUBCOMMAND}: cannot write {}: {e}", files.status.display());
            1
        }
    }
}

/// Whether drplan said go (it closes our stdin without a word if it never got that far).
fn told_to_go() -> bool {
    let mut word = [0u8; 3];
    std::io::stdin().read_exact(&mut word).is_ok() && word == GO
}

fn supervise(files: &StepFiles, timeout: Duration, dir: &Path, program: &Path, args: &[std::ffi::OsString]) -> Ending {
    let open = |path: &Path| open_write(path, PRIVATE_FILE).and_then(|f| f.set_len(0).map(|()| f));
    let (out, err) = match (open(&files.stdout), open(&files.stderr)) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => {
            return Ending::CannotStart { error: format!("cannot open the output files: {e}") };
        }
    };
    let mut command = Command::new(program);
    command.args(args).current_dir(dir).stdin(Stdio::null()).stdout(out).stderr(err);
    // Its own process group: a timeout or a stop reaches whatever the script started too.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Ending::CannotStart { error: format!("cannot start `{}`: {e}", program.display()) },
    };
    let group = child.id();
    let deadline = Instant::now() + timeout.min(Duration::from_secs(100 * 365 * 24 * 3600));
    let mut stopping: Option<(Instant, Ending)> = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return stopping.map_or_else(|| ending_of(status), |(_, why)| why),
            Ok(None) => {}
            Err(e) => return Ending::CannotStart { error: format!("cannot wait for the script: {e}") },
        }
        let now = Instant::now();
        match &stopping {
            None if STOP.load(Ordering::SeqCst) || now >= deadline => {
                let why = if now >= deadline { Ending::TimedOut } else { Ending::Stopped };
                kill_group(group, libc::SIGTERM);
                stopping = Some((now + GRACE, why));
            }
            Some((kill_at, _)) if now >= *kill_at => kill_group(group, libc::SIGKILL),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ending_of(status: ExitStatus) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited { code },
        (None, Some(signal)) => Ending::Signalled { signal },
        (None, None) => Ending::Signalled { signal: 0 },
    }
}

fn write_ending(path: &Path, ending: &Ending) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(ending).map_err(std::io::Error::other)?;
    crate::state::atomic::write_atomic(path, &bytes)
}
