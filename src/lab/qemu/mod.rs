//! The QEMU lab: three real VMs (db1, app1, web1) at site dc1, an empty dc2, and a plan that
//! drives them with `drplan-provider-qemu`. Each VM boots the lab guest (Debian's cloud kernel
//! and a busybox initramfs) and writes lab records to its `data` disk.

pub mod agent;
mod console;
mod cpio;
mod guest;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::records::{self, RecordCheck};
use crate::spec::schema::SCHEMA_FILE;

pub use console::drill_isolated;
pub use guest::{Guest, cache_dir};

/// The lab's machines: name, group, address (as in the local lab).
pub use super::local::MACHINES;

/// The data disk of a machine's copy, named by its serial (the guest looks for `data`).
pub const DATA_DISK: &str = "data.qcow2";

/// Size of each VM's data disk.
const DATA_MIB: u64 = 16;
const MEMORY_MIB: u32 = 160;

pub struct LabOptions {
    /// `auto` boots the guest under KVM once and uses it when the guest comes up; `kvm` or
    /// `tcg` skip that probe.
    pub accel: String,
    /// How many of the lab's machines (1 to 3: db1, app1, web1).
    pub machines: usize,
}

/// Write the lab: `lab.yaml`, site dc1 with three VMs (kernel, initramfs, data disk each),
/// empty dc2. Returns the plan.
pub fn init(dir: &Path, options: &LabOptions, progress: &dyn Fn(&str)) -> Result<PathBuf, String> {
    let guest = guest::guest(progress)?;
    let accel = options.accel.as_str();
    let io = |what: &str, path: &Path, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
    std::fs::create_dir_all(dir.join("dc2")).map_err(|e| io("create", &dir.join("dc2"), e))?;
    let machines = &MACHINES[..options.machines.clamp(1, MACHINES.len())];
    let peers: Vec<&str> = machines.iter().map(|(_, _, ip)| *ip).collect();
    for (name, _, ip) in machines {
        let folder = dir.join("dc1").join(name);
        std::fs::create_dir_all(&folder).map_err(|e| io("create", &folder, e))?;
        link_or_copy(&guest.kernel, &folder.join("vmlinuz"))?;
        link_or_copy(&guest.initrd, &folder.join("initrd.img"))?;
        let hardware = serde_json::json!({
            "memory_mib": MEMORY_MIB,
            "cpus": 1,
            "kernel": "vmlinuz",
            "initrd": "initrd.img",
            "append": format!("console=ttyS0 quiet panic=-1 drplan.peers={}", peers.join(",")),
            "nics": [{ "network": "lab-net", "ip": ip }],
            "ready_line": "writing records from",
            "agent": true,
        });
        let text = serde_json::to_string_pretty(&hardware).unwrap_or_default();
        std::fs::write(folder.join("machine.json"), text).map_err(|e| io("write", &folder, e))?;
        let data = folder.join(DATA_DISK);
        let output = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-o", "preallocation=metadata"])
            .arg(&data)
            .arg(format!("{DATA_MIB}M"))
            .output()
            .map_err(|e| format!("cannot run qemu-img (install qemu-utils): {e}"))?;
        if !output.status.success() {
            return Err(format!("qemu-img create failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
    }
    let plan = dir.join("lab.yaml");
    let drplan = std::env::current_exe().map_err(|e| format!("cannot find the drplan binary: {e}"))?;
    let text = plan_text(machines, accel, &guest.kernel_package, &network_scope(dir), &drplan);
    std::fs::write(&plan, text).map_err(|e| io("write", &plan, e))?;
    std::fs::write(dir.join(SCHEMA_FILE), crate::spec::schema::plan_schema_json())
        .map_err(|e| io("write", &dir.join(SCHEMA_FILE), e))?;
    Ok(plan)
}

/// A name for this lab's networks, from where it lives.
fn network_scope(dir: &Path) -> String {
    let place = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("lab-{}", &blake3::hash(place.as_os_str().as_encoded_bytes()).to_hex()[..12])
}

/// The guest's files are shared with the cache when they can be (the provider replaces boot
/// files by rename, never in place).
fn link_or_copy(from: &Path, to: &Path) -> Result<(), String> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

fn plan_text(machines: &[(&str, &str, &str)], accel: &str, kernel: &str, scope: &str, drplan: &Path) -> String {
    let groups: String =
        machines.iter().map(|(name, group, _)| format!("  - name: {group}\n    machines: [{name}]\n")).collect();
    // Frozen around each recovery point by the guest's agent (the provider gives the
    // programs the VM's agent socket as DRPLAN_AGENT): the points are app-consistent.
    let program = serde_json::to_string(&drplan.to_string_lossy()).unwrap_or_default();
    let machines: String = machines
        .iter()
        .map(|(name, _, ip)| {
            format!(
                "  - name: {name}\n    nics: [ {{ network: lab-net, ip: {ip} }} ]\n    boot_timeout: 2m\n    \
                 consistency: {{ freeze: [{program}, lab, agent, freeze], thaw: [{program}, lab, agent, thaw], timeout: 30s }}\n"
            )
        })
        .collect();
    let common = crate::lab::PLAN_PROTECTION;
    format!(
        r#"# yaml-language-server: $schema={SCHEMA_FILE}
# A two-site lab of real VMs on this machine, made by `drplan lab init --provider qemu`.
# Each VM boots {kernel} with a busybox initramfs whose init writes numbered, checksummed
# records to the VM's `data` disk. Sites are run by drplan-provider-qemu.
version: 1
name: lab
description: Three QEMU VMs that keep writing numbered records to their data disks
sites:
  # accel: `auto` boots the guest's kernel under KVM once, at the first start, and uses TCG
  # when it stays silent (KVM can be there and run no guest); `kvm` and `tcg` choose.
  # network_scope keeps this lab's networks apart from other labs' on the same host.
  dc1: {{ provider: qemu, path: dc1, settings: {{ accel: {accel}, network_scope: {scope} }} }}
  dc2: {{ provider: qemu, path: dc2, settings: {{ accel: {accel}, network_scope: {scope} }} }}
{common}machines:
{machines}groups:
{groups}target:
  active: dc1
"#
    )
}

/// A path in the temp folder that no other call makes: unique per call, not just per
/// process, because threads of one process (tests, a lab's machines) work at once and
/// qemu-img locks what it writes.
fn scratch_path(stem: &str, extension: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("{stem}-{}-{call}{extension}", std::process::id()))
}

/// Ask a running VM's QEMU to flush its data disk, so the image file holds everything the
/// guest wrote (a qcow2's metadata may otherwise still sit in QEMU's cache). Through the
/// provider's control socket, `vm.qmp`; a VM that is not running has nothing to flush.
fn flush_running(folder: &Path) -> Result<(), String> {
    monitor_qemu_io(folder, DATA_DISK.trim_end_matches(".qcow2"), "flush")
}

/// Run `qemu-io` on disk `disk` inside the running VM of `folder` through its monitor (how
/// tests write to a running VM's disk from outside the guest). Nothing when it does not run.
pub fn monitor_qemu_io(folder: &Path, disk: &str, command: &str) -> Result<(), String> {
    monitor(folder, &format!("qemu-io d-{disk} \"{command}\""))
}

/// Give the running VM of `folder` a human monitor command (`system_reset`, `qemu-io …`)
/// through its control socket, `vm.qmp`. Nothing when it does not run.
pub fn monitor(folder: &Path, command: &str) -> Result<(), String> {
    // The control socket serves one client at a time: when drplan's provider holds it, try
    // again shortly.
    let mut tries = 0;
    loop {
        match monitor_once(folder, command) {
            Err(e) if tries < 20 => {
                tries += 1;
                tracing::debug!("`{command}` in {} failed, retrying: {e}", folder.display());
                std::thread::sleep(Duration::from_millis(250));
            }
            result => return result,
        }
    }
}

fn monitor_once(folder: &Path, command: &str) -> Result<(), String> {
    use std::io::{BufRead, BufReader, Write};
    let socket = folder.join("vm.qmp");
    let Ok(stream) = std::os::unix::net::UnixStream::connect(&socket) else { return Ok(()) };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let commands = [
        serde_json::json!({ "execute": "qmp_capabilities" }),
        serde_json::json!({ "execute": "human-monitor-command", "arguments": { "command-line": command } }),
    ];
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| format!("{}: {e}", socket.display()))?; // the greeting
    for command in commands {
        writeln!(writer, "{command}").map_err(|e| format!("{}: {e}", socket.display()))?;
        // Events may come before the answer.
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(|e| format!("{}: {e}", socket.display()))? == 0 {
                return Ok(()); // the VM went away meanwhile: its images are closed
            }
            let reply: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(error) = reply.get("error") {
                return Err(format!("QEMU refused `{line}` in {}: {error}", folder.display()));
            }
            if let Some(answer) = reply.get("return") {
                // The monitor answers its errors as text.
                if let Some(text) = answer.as_str().filter(|t| !t.trim().is_empty()) {
                    return Err(format!("`{line}` in {}: {}", folder.display(), text.trim()));
                }
                break;
            }
        }
    }
    Ok(())
}

/// A raw copy of a machine's data disk at a site (flushed first when its VM runs).
pub fn read_data_disk(site_dir: &Path, machine: &str, into: &Path) -> Result<(), String> {
    let image = site_dir.join(machine).join(DATA_DISK);
    flush_running(&site_dir.join(machine))?;
    let output = Command::new("qemu-img")
        .args(["convert", "-U", "-f", "qcow2", "-O", "raw"])
        .arg(&image)
        .arg(into)
        .output()
        .map_err(|e| format!("cannot run qemu-img: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("cannot read {}: {}", image.display(), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// The records on a machine's data disk at a site.
pub fn check_records(site_dir: &Path, machine: &str) -> Result<RecordCheck, String> {
    with_raw_disk(site_dir, machine, |raw| records::check_records(raw, machine))
}

/// Run `read` on a raw copy of a machine's data disk (a file in the temp folder, removed after).
fn with_raw_disk<T>(
    site_dir: &Path,
    machine: &str,
    read: impl FnOnce(&Path) -> std::io::Result<T>,
) -> Result<T, String> {
    let raw = scratch_path(&format!("drplan-lab-{machine}"), ".raw");
    let result = read_data_disk(site_dir, machine, &raw).and_then(|()| read(&raw).map_err(|e| e.to_string()));
    let _ = std::fs::remove_file(&raw);
    result
}

/// The last record on each machine's data disk at `site`.
pub fn last_records(site_dir: &Path, machines: &[&str]) -> Result<Vec<u64>, String> {
    machines
        .iter()
        .map(|machine| with_raw_disk(site_dir, machine, |raw| records::read_header(&std::fs::File::open(raw)?)))
        .collect()
}

/// Wait until every machine at `site` wrote `more` records (guests take a few seconds to
/// boot under TCG, and longer when several boot at once on few cores).
pub fn wait_for_records(site_dir: &Path, machines: &[&str], more: u64, timeout: Duration) -> Result<Vec<u64>, String> {
    let start = last_records(site_dir, machines)?;
    let began = Instant::now();
    loop {
        let now = last_records(site_dir, machines)?;
        if now.iter().zip(&start).all(|(n, s)| *n >= s + more) {
            return Ok(now);
        }
        if began.elapsed() > timeout {
            let behind: Vec<String> = machines
                .iter()
                .zip(now.iter().zip(&start))
                .filter(|(_, (n, s))| **n < **s + more)
                .map(|(m, (n, s))| format!("{m} wrote {}", n.saturating_sub(*s)))
                .collect();
            return Err(format!("the guests did not write {more} records within {timeout:?}: {}", behind.join(", ")));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The QEMU processes of the VMs at `site` (their pid files), drills' copies included.
fn vm_pids(dir: &Path, site: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    // Every machine folder, not only the lab's machines: tests build sites of their own.
    for machine in std::fs::read_dir(dir.join(site)).into_iter().flatten().flatten() {
        let folder = machine.path();
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pid")
                && let Some(pid) = std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse().ok())
                && started_with(pid, &path)
            {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Whether process `pid` is the QEMU that wrote `pidfile` (a VM that was killed leaves its
/// pid file behind, and the pid may since belong to another process).
fn started_with(pid: i32, pidfile: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(wanted) = std::fs::canonicalize(pidfile) else { return false };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline.split(|b| *b == 0).any(|arg| {
        let arg = Path::new(std::ffi::OsStr::from_bytes(arg));
        arg.file_name() == wanted.file_name() && std::fs::canonicalize(arg).is_ok_and(|a| a == wanted)
    })
}

/// Stop every lab VM: SIGTERM (QEMU exits, flushing its images), SIGKILL after 10 s.
pub fn stop_all(dir: &Path) {
    signal_all(dir, &["dc1", "dc2"], libc::SIGTERM);
    let started = Instant::now();
    let pids: Vec<i32> = ["dc1", "dc2"].iter().flat_map(|s| vm_pids(dir, s)).collect();
    while pids.iter().any(|p| crate::os::process::pid_running(*p)) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    signal_all(dir, &["dc1", "dc2"], libc::SIGKILL);
}

/// Kill the VMs at `site` at once, as a power failure would.
pub fn crash(dir: &Path, site: &str) {
    signal_all(dir, &[site], libc::SIGKILL);
    let started = Instant::now();
    while vm_pids(dir, site).iter().any(|p| crate::os::process::pid_running(*p))
        && started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal_all(dir: &Path, sites: &[&str], signal: i32) {
    for site in sites {
        for pid in vm_pids(dir, site) {
            if crate::os::process::pid_running(pid) {
                // SAFETY: kill(2) on a pid read from a lab VM's pid file.
                unsafe {
                    libc::kill(pid, signal);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// `stop_all` stops the VM of any machine folder, not only the lab's own machines (tests
    /// that built sites of their own left their VMs running before).
    #[test]
    fn stop_all_stops_the_vm_of_every_machine_folder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("dc2/boot1");
        std::fs::create_dir_all(&folder).unwrap();
        let pidfile = folder.join("vm.pid");
        std::fs::write(&pidfile, "").unwrap();
        // A process that names the pid file on its command line, as a daemonized QEMU does
        // (its argv[0]: a shell around `sleep` would leave the sleep running once killed).
        let mut vm = Command::new("sleep").arg0(&pidfile).arg("60").spawn().unwrap();
        // spawn returns once exec has begun, before the kernel has set the new command line
        // (/proc reads it empty for a moment); a QEMU writes its pid file later than that.
        let cmdline = format!("/proc/{}/cmdline", vm.id());
        let started = Instant::now();
        while std::fs::read(&cmdline).unwrap_or_default().is_empty() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::fs::write(&pidfile, vm.id().to_string()).unwrap();
        stop_all(dir.path());
        let stopped = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            vm.try_wait().unwrap().is_some()
        });
        let _ = vm.kill();
        assert!(stopped, "the VM of dc2/boot1 still runs");
    }

    /// Tests (and a lab's machines) read the same machine's disk from several threads of one
    /// process at once; each read needs a raw copy of its own, or qemu-img's lock on one
    /// shared copy fails the others (as it did in CI).
    #[test]
    fn threads_read_one_machines_disk_at_once() {
        if !Command::new("qemu-img").arg("--version").output().is_ok_and(|o| o.status.success()) {
            // `.ci/run` installs qemu-utils and sets DRPLAN_REQUIRE_TOOLS: there a missing one fails.
            assert!(std::env::var_os("DRPLAN_REQUIRE_TOOLS").is_none(), "qemu-img is not installed");
            eprintln!("skipped: qemu-img is not installed here");
            return;
        }
        let site = tempfile::tempdir().unwrap();
        std::fs::create_dir(site.path().join("db1")).unwrap();
        let raw = site.path().join("seed.raw");
        let mut header = b"DRPLANLAB 42 ".to_vec();
        header.resize(1 << 20, 0);
        std::fs::write(&raw, &header).unwrap();
        let image = site.path().join("db1").join(DATA_DISK);
        let made = Command::new("qemu-img").args(["convert", "-O", "qcow2"]).arg(&raw).arg(&image).output().unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

        let reads: Vec<Result<Vec<u64>, String>> = std::thread::scope(|scope| {
            let readers: Vec<_> = (0..6).map(|_| scope.spawn(|| last_records(site.path(), &["db1", "db1"]))).collect();
            readers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        for read in reads {
            assert_eq!(read, Ok(vec![42, 42]));
        }
    }
}
