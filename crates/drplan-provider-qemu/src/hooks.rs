//! Freeze and thaw around the instant of a recovery point, so that the point is
//! app-consistent when the freeze succeeded: the plan's programs for the machine (its
//! `consistency:`), else the machine's own `freeze` and `thaw` in its folder. Started
//! directly, never through a shell, with `DRPLAN_SITE` (where the machine runs),
//! `DRPLAN_MACHINE_DIR` and `DRPLAN_AGENT` (the VM's agent channel, when it has one), and
//! `DRPLAN_MACHINE` for the plan's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drplan_protocol::rpc::ConsistencyHooks;

/// A machine's hooks as the plan gives them, and where they run from (the plan's folder).
#[derive(Debug, Clone)]
pub struct PlanHooks {
    pub hooks: ConsistencyHooks,
    pub plan_dir: PathBuf,
    pub machine: String,
}

/// How long a machine's own freeze or thaw may take before it is killed.
const FOLDER_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Hooks<'a> {
    dir: &'a Path,
    site: &'a str,
    plan: Option<&'a PlanHooks>,
}

/// A program to run: argv and working directory.
struct Program {
    argv: Vec<String>,
    cwd: PathBuf,
}

impl<'a> Hooks<'a> {
    /// The hooks of the machine in `dir`, which runs at `site`.
    pub fn of(dir: &'a Path, site: &'a str, plan: Option<&'a PlanHooks>) -> Hooks<'a> {
        Hooks { dir, site, plan }
    }

    pub async fn freeze(&self) -> bool {
        self.run("freeze").await == Some(true)
    }

    /// Thaw after every freeze that was tried: a half-done freeze must not stay.
    pub async fn thaw(&self) {
        if self.program("freeze").is_some() && self.run("thaw").await == Some(false) {
            eprintln!("{}: the thaw program failed; the guest may still be frozen", self.dir.display());
        }
    }

    fn program(&self, name: &str) -> Option<Program> {
        if let Some(plan) = self.plan {
            let argv = if name == "freeze" { &plan.hooks.freeze } else { &plan.hooks.thaw };
            return (!argv.is_empty()).then(|| Program { argv: argv.clone(), cwd: plan.plan_dir.clone() });
        }
        let program = self.dir.join(name);
        program.is_file().then(|| Program { argv: vec![program.to_string_lossy().into_owned()], cwd: self.dir.into() })
    }

    fn timeout(&self) -> Duration {
        self.plan.map_or(FOLDER_TIMEOUT, |p| Duration::from_millis(p.hooks.timeout_ms))
    }

    /// None when the machine has no such program.
    async fn run(&self, name: &str) -> Option<bool> {
        let Program { argv, cwd } = self.program(name)?;
        let (program, args) = argv.split_first()?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .current_dir(&cwd)
            .env("DRPLAN_SITE", self.site)
            .env("DRPLAN_MACHINE_DIR", self.dir)
            .env("DRPLAN_AGENT", self.dir.join("vm.agent"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(plan) = self.plan {
            command.env("DRPLAN_MACHINE", &plan.machine);
        }
        let timeout = self.timeout();
        let ok = match tokio::time::timeout(timeout, command.output()).await {
            Ok(Ok(out)) if out.status.success() => true,
            Ok(Ok(out)) => {
                eprintln!("{name} ({program}) failed: {}", String::from_utf8_lossy(&out.stderr).trim());
                false
            }
            Ok(Err(e)) => {
                eprintln!("{name} ({program}) could not run: {e}");
                false
            }
            Err(_) => {
                eprintln!("{name} ({program}) did not finish within {timeout:?}");
                false
            }
        };
        Some(ok)
    }
}
