//! `drplan lab ...`: a two-site lab on this machine, and the whole recovery story on it.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};

use super::session::{fail, open, report};
use super::{Ui, exit};
use crate::contract::ProviderError;
use crate::lab::demo::{self, Demo, QemuDemo};
use crate::lab::local::{self as lab, LabOptions};
use crate::lab::{qemu, records};

/// What runs the lab's machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LabProvider {
    /// Programs writing to disk images (the embedded `local` provider).
    Local,
    /// Real VMs booting a small Debian guest (`drplan-provider-qemu`; needs qemu-system-x86,
    /// qemu-utils and Debian's package lists for the guest).
    Qemu,
}

/// Options of the QEMU lab.
#[derive(Debug, Clone, clap::Args)]
struct QemuArgs {
    /// QEMU lab: how guests run (auto: the provider boots the guest's kernel under KVM once
    /// and uses TCG when it stays silent).
    #[arg(long, default_value = "auto", value_parser = ["auto", "kvm", "tcg"])]
    accel: String,
    /// QEMU lab: how many VMs (db1, app1, web1, in that order).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    machines: u8,
}

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
        /// What runs the machines.
        #[arg(long, value_enum, default_value = "local")]
        provider: LabProvider,
        #[command(flatten)]
        qemu: QemuArgs,
        /// Size of each disk image (two per machine; local lab).
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
        /// What runs the machines.
        #[arg(long, value_enum, default_value = "local")]
        provider: LabProvider,
        #[command(flatten)]
        qemu: QemuArgs,
        /// QEMU lab: only protect, planned failover, delta failback and the records check.
        #[arg(long)]
        short: bool,
        /// Size of each disk image (two per machine; local lab).
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
    /// Freeze or thaw a QEMU lab guest through its agent socket (the lab plan's freeze and
    /// thaw programs, which the provider runs around each recovery point).
    #[command(hide = true)]
    Agent {
        #[arg(value_parser = ["freeze", "thaw"])]
        action: String,
        /// The VM's agent socket (the provider gives it as DRPLAN_AGENT).
        #[arg(env = "DRPLAN_AGENT")]
        socket: PathBuf,
    },
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
        LabCommand::Init { dir, provider, qemu, disk_size, force } => {
            match init(&dir, provider, &qemu, disk_size, force) {
                Ok(plan) => {
                    let what = match provider {
                        LabProvider::Local => format!("{} machines", lab::MACHINES.len()),
                        LabProvider::Qemu => format!("{} QEMU VMs", qemu.machines),
                    };
                    outln!(
                        "Created a lab in {}: plan {}, site dc1 with {what}, empty site dc2.",
                        dir.display(),
                        plan.display()
                    );
                    outln!("Next: `drplan apply {} --auto-approve` protects and starts them.", plan.display());
                    exit::OK
                }
                Err(message) => fail_io(ui, message),
            }
        }
        LabCommand::Machine => match std::env::current_dir().and_then(|d| lab::run_machine(&d)) {
            Ok(()) => exit::OK,
            Err(e) => {
                errln!("lab machine: {e}");
                exit::ERROR
            }
        },
        LabCommand::Agent { action, socket } => match qemu::agent::request(&socket, &action) {
            Ok(answer) => {
                outln!("{answer}");
                exit::OK
            }
            Err(e) => {
                errln!("lab agent: {e}");
                exit::ERROR
            }
        },
        LabCommand::Verify { dir } => verify(&dir, ui),
        LabCommand::Stop { dir } => {
            stop_machines(&dir);
            outln!("Stopped the lab machines in {}.", dir.display());
            exit::OK
        }
        LabCommand::Demo { dir, provider, qemu, short, disk_size } => {
            match demo_steps(&dir, provider, &qemu, short, disk_size) {
                Ok(()) => exit::OK,
                Err(message) => {
                    stop_machines(&dir);
                    fail_io(ui, format!("the demo stopped: {message}"))
                }
            }
        }
    }
}

fn init(dir: &Path, provider: LabProvider, options: &QemuArgs, disk_size: u64, force: bool) -> Result<PathBuf, String> {
    if dir.join("lab.yaml").exists() {
        if !force {
            return Err(format!("{} already holds a lab; pass --force to replace it", dir.display()));
        }
        stop_machines(dir);
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    } else if dir.exists() && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    match provider {
        LabProvider::Local => {
            let drplan = std::env::current_exe().map_err(|e| format!("cannot find the drplan binary: {e}"))?;
            lab::init(dir, &LabOptions { disk_bytes: disk_size, drplan })
                .map_err(|e| format!("cannot create the lab in {}: {e}", dir.display()))
        }
        LabProvider::Qemu => {
            let lab_options = qemu::LabOptions { accel: options.accel.clone(), machines: options.machines.into() };
            qemu::init(dir, &lab_options, &|line| outln!("{line}"))
        }
    }
}

/// Stop every lab machine (before removing a lab, and at the end of the demo).
fn stop_machines(dir: &Path) {
    lab::stop_all(dir, &["dc1", "dc2", "dc3"]);
    qemu::stop_all(dir);
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
    for machine in session.model.machines.iter().map(|m| m.name.as_str()) {
        let Some(site) = inventory.machines.get(machine).and_then(|m| m.active_site.clone()) else {
            outln!("{machine}: not found at any site");
            ok = false;
            continue;
        };
        let site_model = session.model.site(session.model.site_id(&site).unwrap_or_default());
        let site_dir = site_model.path.clone().unwrap_or_default();
        let check = if site_model.provider_name == "qemu" {
            qemu::check_records(&site_dir, machine)
        } else {
            records::check_records(&lab::data_disk(&site_dir, machine), machine).map_err(|e| e.to_string())
        };
        match check {
            Ok(check) => {
                let runs: Vec<String> = check.runs.iter().map(|(s, a, b)| format!("{a}-{b} at {s}")).collect();
                let verdict = if check.problems.is_empty() && check.last > 0 { "none missing" } else { "PROBLEMS" };
                outln!("{machine} (live at {site}): {} records, {verdict}: {}", check.last, runs.join(", "));
                for p in &check.problems {
                    outln!("  {p}");
                }
                ok &= check.problems.is_empty() && check.last > 0;
            }
            Err(e) => {
                outln!("{machine}: cannot read its data disk at {site}: {e}");
                ok = false;
            }
        }
    }
    if ok { exit::OK } else { exit::ERROR }
}

fn demo_steps(
    dir: &Path,
    provider: LabProvider,
    options: &QemuArgs,
    short: bool,
    disk_size: u64,
) -> Result<(), String> {
    let plan = init(dir, provider, options, disk_size, true)?;
    let dir = std::fs::canonicalize(dir).map_err(|e| e.to_string())?;
    let say = |line: &str| outln!("{line}");
    let demo = Demo { plan: dir.join(plan.file_name().unwrap_or_default()), dir: dir.clone(), say: &say };
    match provider {
        LabProvider::Local => demo::local(&demo)?,
        LabProvider::Qemu => demo::qemu(&demo, QemuDemo { machines: options.machines.into(), short })?,
    }
    stop_machines(&dir);
    outln!("\n# Done. The machines are stopped; the lab stays in {} to explore", dir.display());
    outln!("# (reports of the drill and the failover: {}/reports).", dir.display());
    Ok(())
}
