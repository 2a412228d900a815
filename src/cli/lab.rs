//! `drplan lab ...`: a two-site lab on this machine, and the whole recovery story on it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Subcommand;

use super::session::{fail, open, report};
use super::{Ui, exit};
use crate::contract::ProviderError;
use crate::providers::local::lab::{self, LabOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// Create a lab: `DIR/lab.yaml`, site dc1 with three machines, an empty site dc2.
    Init {
        /// The lab directory (it holds `lab.yaml` and the site folders dc1, dc2).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Size of each disk image (two per machine).
        #[arg(long, default_value = "64MiB", value_parser = parse_size)]
        disk_size: u64,
        /// Replace an existing lab.
        #[arg(long)]
        force: bool,
    },
    /// Run the whole story: protect, drill, planned failover, failback with delta sync,
    /// reprotect, and prove from the disks that no record was lost.
    Demo {
        /// Where to make the lab (replaced if it already holds one).
        #[arg(value_name = "DIR", default_value = "drplan-lab")]
        dir: PathBuf,
        /// Size of each disk image (two per machine).
        #[arg(long, default_value = "64MiB", value_parser = parse_size)]
        disk_size: u64,
    },
    /// Check the records on every machine's data disk: how many, written where, none missing.
    Verify {
        /// The lab directory (it holds `lab.yaml` and the site folders dc1, dc2).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Stop every running lab machine (their programs), e.g. before removing the lab.
    Stop {
        /// The lab directory (it holds `lab.yaml` and the site folders dc1, dc2).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// The program of a lab machine (started by its `run` script).
    #[command(hide = true)]
    Machine,
}

fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("`{text}` is not a size like 64MiB"))?;
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        _ => return Err(format!("`{text}`: use B, KiB, MiB or GiB")),
    };
    let bytes = n * factor;
    if bytes < 1 << 20 {
        return Err("disks need at least 1MiB".into());
    }
    Ok(bytes)
}

fn fail_io(ui: Ui, message: String) -> u8 {
    report(ui, &ProviderError::setup(message, "see `drplan lab --help`"))
}

pub fn run(args: Args, ui: Ui) -> u8 {
    match args.command {
        LabCommand::Init { dir, disk_size, force } => match init(&dir, disk_size, force) {
            Ok(plan) => {
                outln!(
                    "Created a lab in {}: plan {}, site dc1 with {} machines, empty site dc2.",
                    dir.display(),
                    plan.display(),
                    lab::MACHINES.len()
                );
                outln!("Next: `drplan apply {} --auto-approve` protects and starts them.", plan.display());
                exit::OK
            }
            Err(message) => fail_io(ui, message),
        },
        LabCommand::Machine => match std::env::current_dir().and_then(|d| lab::run_machine(&d)) {
            Ok(()) => exit::OK,
            Err(e) => {
                errln!("lab machine: {e}");
                exit::ERROR
            }
        },
        LabCommand::Verify { dir } => verify(&dir, ui),
        LabCommand::Stop { dir } => {
            stop_machines(&dir);
            outln!("Stopped the lab machines in {}.", dir.display());
            exit::OK
        }
        LabCommand::Demo { dir, disk_size } => demo(&dir, disk_size, ui),
    }
}

fn init(dir: &Path, disk_size: u64, force: bool) -> Result<PathBuf, String> {
    if dir.join("lab.yaml").exists() {
        if !force {
            return Err(format!("{} already holds a lab; pass --force to replace it", dir.display()));
        }
        stop_machines(dir);
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    } else if dir.exists() && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    let drplan = std::env::current_exe().map_err(|e| format!("cannot find the drplan binary: {e}"))?;
    lab::init(dir, &LabOptions { disk_bytes: disk_size, drplan })
        .map_err(|e| format!("cannot create the lab in {}: {e}", dir.display()))
}

/// Stop every lab machine (before removing a lab, and at the end of the demo).
fn stop_machines(dir: &Path) {
    lab::stop_all(dir, &["dc1", "dc2", "dc3"]);
}

fn verify(dir: &Path, ui: Ui) -> u8 {
    let session = match open(&dir.join("lab.yaml"), ui) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail_io(ui, format!("cannot start the async runtime: {e}")),
    };
    let inventory = match session.provider() {
        Ok(p) => match runtime.block_on(p.inventory()) {
            Ok(i) => i,
            Err(e) => return report(ui, &e),
        },
        Err(failure) => return fail(ui, failure),
    };
    let mut ok = true;
    for (machine, _, _) in lab::MACHINES {
        let Some(site) = inventory.machines.get(machine).and_then(|m| m.active_site.clone()) else {
            outln!("{machine}: not found at any site");
            ok = false;
            continue;
        };
        let site_dir =
            session.model.site(session.model.site_id(&site).unwrap_or_default()).path.clone().unwrap_or_default();
        match lab::check_records(&lab::data_disk(&site_dir, machine), machine) {
            Ok(check) => {
                let runs: Vec<String> = check.runs.iter().map(|(s, a, b)| format!("{a}-{b} at {s}")).collect();
                let verdict = if check.problems.is_empty() { "none missing" } else { "PROBLEMS" };
                outln!("{machine} (live at {site}): {} records, {verdict}: {}", check.last, runs.join(", "));
                for p in &check.problems {
                    outln!("  {p}");
                }
                ok &= check.problems.is_empty();
            }
            Err(e) => {
                outln!("{machine}: cannot read its data disk at {site}: {e}");
                ok = false;
            }
        }
    }
    if ok { exit::OK } else { exit::ERROR }
}

/// An argument as a shell would need it to be typed: as is when it is plain, else quoted.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "_./:=@%+-,".contains(c));
    if plain { arg.to_string() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

/// One step of the demo: print the command (as it can be pasted into a shell), run it, show
/// its output.
fn step(plan_dir: &Path, args: &[&str], expect: &[i32]) -> Result<i32, String> {
    let display: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    outln!("\n$ drplan {}", display.join(" "));
    let status = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .current_dir(plan_dir)
        .args(args)
        .env("NO_COLOR", "1")
        .status()
        .map_err(|e| format!("cannot run drplan: {e}"))?;
    let code = status.code().unwrap_or(-1);
    if !expect.contains(&code) {
        return Err(format!("`drplan {}` exited {code}", display.join(" ")));
    }
    Ok(code)
}

fn set_active(plan: &Path, site: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(plan).map_err(|e| e.to_string())?;
    let line =
        text.lines().find(|l| l.trim_start().starts_with("active:")).ok_or("no target.active in the lab plan")?;
    let updated = text.replacen(line, &format!("  active: {site}"), 1);
    std::fs::write(plan, updated).map_err(|e| e.to_string())?;
    outln!("\n# The plan's desired state changes: target.active is now {site}.");
    Ok(())
}

fn demo(dir: &Path, disk_size: u64, ui: Ui) -> u8 {
    match demo_steps(dir, disk_size) {
        Ok(()) => exit::OK,
        Err(message) => fail_io(ui, format!("the demo stopped: {message}")),
    }
}

fn demo_steps(dir: &Path, disk_size: u64) -> Result<(), String> {
    let plan = init(dir, disk_size, true)?;
    let dir = &std::fs::canonicalize(dir).map_err(|e| e.to_string())?;
    let pause = |what: &str, secs: u64| {
        outln!("\n# {what}");
        std::thread::sleep(Duration::from_secs(secs));
    };
    outln!("# A lab in {}: sites dc1 and dc2 are directories; db1, app1 and web1 live at dc1.", dir.display());
    let plan_name = plan.file_name().and_then(|n| n.to_str()).unwrap_or("lab.yaml").to_string();
    let p = plan_name.as_str();
    step(dir, &["validate", p], &[0])?;
    outln!("\n# 1. Protect: initial replication dc1 → dc2, and start the machines.");
    step(dir, &["apply", p, "--auto-approve"], &[0])?;
    pause("The machines write records for two seconds; then a new recovery point moves only what changed.", 2);
    step(dir, &["replicate", p], &[0])?;
    outln!("\n# 2. Drill: test copies from the latest point, in the isolated lab-drill network; production untouched.");
    step(
        dir,
        &["drill", p, "--auto-complete", "--notes", "lab demo: the test copies booted", "--report", "reports/drill"],
        &[0],
    )?;
    outln!("\n# 3. Planned failover to dc2: shut down in reverse group order, final sync, fail over, boot in order.");
    set_active(&plan, "dc2")?;
    step(dir, &["apply", p, "--auto-approve", "--report", "reports/failover"], &[0])?;
    pause("The machines now run at dc2 and keep writing for two seconds.", 2);
    outln!("\n# 4. Fail back with delta sync: copy while running, approve the switch, final delta, boot at dc1.");
    set_active(&plan, "dc1")?;
    let code = step(dir, &["apply", p, "--auto-approve"], &[0, 3])?;
    if code == 3 {
        step(dir, &["approve", p, "gate/complete-failover", "--by", "demo"], &[0])?;
        step(dir, &["resume", p], &[0])?;
    }
    pause("Back at dc1, writing again.", 1);
    outln!("\n# 5. Nothing was lost: every record from 1 to the last is on the disks, and each site");
    outln!("#    went on exactly where the other stopped (dc1, then dc2, then dc1 again).");
    step(dir, &["lab", "verify", "."], &[0])?;
    outln!("\n# 6. Protected again (dc1 → dc2) and nothing left to do:");
    step(dir, &["plan", p, "--detailed-exitcode"], &[0])?;
    step(dir, &["history", p], &[0])?;
    stop_machines(dir);
    outln!("\n# Done. The machines are stopped; the lab stays in {} to explore", dir.display());
    outln!("# (reports of the drill and the failover: {}/reports).", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn echoed_commands_can_be_pasted_into_a_shell() {
        assert_eq!(shell_quote("--notes"), "--notes");
        assert_eq!(shell_quote("lab demo: the copies booted"), "'lab demo: the copies booted'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }
}
