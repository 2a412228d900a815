//! Script steps under their supervisor (`drplan __supervise-step`): output, exit codes and
//! environment come back; a timeout stops everything the script started; nothing runs before
//! the go-ahead; an outcome survives the drplan that started it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use drplan::exec::script::{Reattached, Script, ScriptResult, reattach, spawn};
use drplan::exec::supervisor::{Ending, StepFiles};
use tokio_util::sync::CancellationToken;

fn supervisor() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_drplan"))
}

async fn run(
    dir: &Path,
    program: &str,
    args: &[&str],
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> ScriptResult {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let script = Script { program: Path::new(program), args: &args, dir, env, timeout };
    let mut spawned = spawn(supervisor(), &script, StepFiles::new(&dir.join("steps"), "g/after/s", 1)).unwrap();
    spawned.go().await.unwrap();
    spawned.wait(&CancellationToken::new()).await
}

#[tokio::test]
async fn output_exit_code_and_environment_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let env = BTreeMap::from([("DRPLAN_GROUP".to_string(), "db".to_string())]);
    let r = run(
        dir.path(),
        "/bin/sh",
        &["-c", "echo group=$DRPLAN_GROUP; echo oops >&2; exit 3"],
        &env,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(r.ending, Ending::Exited { code: 3 });
    assert!(!r.success());
    assert_eq!(r.output, "group=db\noops\n");
}

#[tokio::test]
async fn a_timeout_stops_the_script_and_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let line = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let r = run(dir.path(), "/bin/sh", &["-c", &line], &BTreeMap::new(), Duration::from_millis(300)).await;
    assert_eq!(r.ending, Ending::TimedOut);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The grandchild is gone (or a zombie about to be reaped by init).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(state.is_empty() || state.contains(") Z"), "the grandchild still runs: {state}");
}

#[tokio::test]
async fn a_program_that_cannot_start_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), "/nonexistent/x", &[], &BTreeMap::new(), Duration::from_secs(5)).await;
    assert!(matches!(&r.ending, Ending::CannotStart { error } if error.contains("cannot start")), "{r:?}");
}

#[tokio::test]
async fn nothing_runs_without_the_go_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let args = vec![marker.display().to_string()];
    let env = BTreeMap::new();
    let script = Script {
        program: Path::new("/usr/bin/touch"),
        args: &args,
        dir: dir.path(),
        env: &env,
        timeout: Duration::from_secs(5),
    };
    let files = StepFiles::new(&dir.path().join("steps"), "s", 1);
    // drplan dies (the supervisor's stdin closes) before it journalled the start.
    let spawned = spawn(supervisor(), &script, files.clone()).unwrap();
    let r = spawned.wait(&CancellationToken::new()).await;
    assert_eq!(r.ending, Ending::NotStarted);
    assert!(!marker.exists());
    assert_eq!(files.ending(), Some(Ending::NotStarted));
}

#[tokio::test]
async fn a_later_drplan_finds_the_outcome_of_an_attempt_it_did_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = vec!["-c".into(), "sleep 0.3; echo done".into()];
    let env = BTreeMap::new();
    let script = Script {
        program: Path::new("/bin/sh"),
        args: &args,
        dir: dir.path(),
        env: &env,
        timeout: Duration::from_secs(5),
    };
    let files = StepFiles::new(&dir.path().join("steps"), "s", 1);
    let mut spawned = spawn(supervisor(), &script, files.clone()).unwrap();
    spawned.go().await.unwrap();
    let process = spawned.process;
    // This drplan forgets its child (as if it had died); another one reattaches by pid.
    std::mem::forget(spawned);
    match reattach(&process, &files, &CancellationToken::new()).await {
        Reattached::Finished(r) => assert_eq!((r.ending, r.output.as_str()), (Ending::Exited { code: 0 }, "done\n")),
        _ => panic!("the outcome was not found"),
    }
}

#[tokio::test]
async fn an_abort_stops_the_script_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = vec!["30".into()];
    let env = BTreeMap::new();
    let script = Script {
        program: Path::new("/bin/sleep"),
        args: &args,
        dir: dir.path(),
        env: &env,
        timeout: Duration::from_secs(60),
    };
    let mut spawned = spawn(supervisor(), &script, StepFiles::new(&dir.path().join("steps"), "s", 1)).unwrap();
    spawned.go().await.unwrap();
    let abort = CancellationToken::new();
    let stopper = abort.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stopper.cancel();
    });
    let started = std::time::Instant::now();
    let r = spawned.wait(&abort).await;
    assert_eq!(r.ending, Ending::Stopped);
    assert!(started.elapsed() < Duration::from_secs(5));
}
