//! Whether KVM runs guests here. `/dev/kvm` can be there, open, and still run no guest: on
//! the project's own CI machine a Linux kernel under KVM hangs before its first console line
//! (while a BIOS boot sector runs fine). So `accel: auto` boots a machine's kernel under KVM
//! once, briefly, and uses KVM only when the kernel printed something. The verdict is kept in
//! the machine's folder for later commands, for as long as the host, its boot, the QEMU
//! binary and the kernel are the same: a failover's start does not pay for a probe again.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::copy::{copy_when_different, write_replacing};

/// How long a probe waits for the kernel's first console line. Under KVM it comes within a
/// second; where KVM runs nothing the whole wait is paid, once per machine folder and host
/// boot. Too short a wait costs only speed (TCG); too long one would cost a failover that
/// probes (the first start of a copy on this host since it booted).
const PROBE_WAIT: Duration = Duration::from_secs(3);

/// The file in a machine's folder that keeps the last verdict.
const REMEMBERED: &str = "kvm-probe.json";

/// A verdict, and what it holds for: a reboot, another host (a site folder on shared
/// storage), another QEMU or another kernel asks again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Remembered {
    boot_id: String,
    qemu: String,
    kernel_blake3: String,
    kvm_runs: bool,
}

/// Verdicts by the kernel's content hash, for the plugin's life: every machine of a lab has
/// its own copy of the same kernel. Held during a probe, so that machines starting together
/// wait for one probe instead of running one each.
static VERDICTS: Mutex<BTreeMap<String, bool>> = Mutex::const_new(BTreeMap::new());

/// Whether `/dev/kvm` can be opened (the first condition for KVM).
pub fn usable() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

/// Whether `kernel` prints on its console under KVM with `program` (a QEMU). Probed once
/// per kernel and plugin unless `folder` (the machine's: the provider writes only inside the
/// plan's sites) keeps a verdict that holds; the probe's console is a file there too, and
/// its verdict goes to the plugin's log.
pub async fn runs(program: &Path, kernel: &Path, folder: &Path) -> bool {
    let Ok(bytes) = tokio::fs::read(kernel).await else { return false };
    let key = blake3::hash(&bytes).to_hex().to_string();
    let mut verdicts = VERDICTS.lock().await;
    let asked = Remembered { boot_id: boot_id(), qemu: identity(program), kernel_blake3: key.clone(), kvm_runs: false };
    let kept = remembered(folder).filter(|r| r.holds_for(&asked));
    let verdict = match (verdicts.get(&key), &kept) {
        (Some(known), _) => *known,
        (None, Some(kept)) => kept.kvm_runs,
        (None, None) => {
            let verdict = probe(program, kernel, &folder.join("kvm-probe.console.log")).await;
            let (seen, using) = if verdict { ("printed on its console", "kvm") } else { ("stayed silent", "tcg") };
            eprintln!("KVM probe: {} {seen} under KVM; `accel: auto` uses {using} for it", kernel.display());
            verdict
        }
    };
    verdicts.insert(key, verdict);
    if kept.is_none_or(|k| k.kvm_runs != verdict) {
        remember(folder, &Remembered { kvm_runs: verdict, ..asked });
    }
    verdict
}

impl Remembered {
    /// Whether this verdict was reached for the same host boot, QEMU and kernel (and those
    /// could be told: an unknown host or QEMU matches nothing).
    fn holds_for(&self, asked: &Remembered) -> bool {
        !asked.boot_id.is_empty()
            && !asked.qemu.is_empty()
            && (&self.boot_id, &self.qemu, &self.kernel_blake3) == (&asked.boot_id, &asked.qemu, &asked.kernel_blake3)
    }
}

fn remembered(folder: &Path) -> Option<Remembered> {
    serde_json::from_slice(&std::fs::read(folder.join(REMEMBERED)).ok()?).ok()
}

/// Keep a verdict. Best effort: without it the next command probes again.
fn remember(folder: &Path, verdict: &Remembered) {
    let written = serde_json::to_vec_pretty(verdict)
        .map_err(|e| e.to_string())
        .and_then(|bytes| write_replacing(&folder.join(REMEMBERED), &bytes).map_err(|e| e.message));
    if let Err(e) = written {
        eprintln!("KVM probe: the verdict is not kept ({e}); the next command probes again");
    }
}

/// Give the copy in `to` the verdict kept in `from` (replication calls this). It holds only
/// where it was reached, so a copy that starts on the same host boot, with the same QEMU and
/// kernel, starts without a probe: a failover's start is not 3 s longer where KVM is broken.
/// Best effort, like keeping it.
pub fn carry(from: &Path, to: &Path) {
    if !from.join(REMEMBERED).exists() {
        return;
    }
    if let Err(e) = copy_when_different(&from.join(REMEMBERED), &to.join(REMEMBERED)) {
        eprintln!("KVM probe: the verdict does not go along to {} ({})", to.display(), e.message);
    }
}

/// This boot of this host (Linux gives each boot a random id).
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// The QEMU binary that `program` names (found on PATH when it has no slash), by path, size
/// and modification time: an upgrade or another build is another QEMU.
fn identity(program: &Path) -> String {
    let found = if program.components().count() > 1 {
        Some(program.to_path_buf())
    } else {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
    };
    let Some(path) = found.and_then(|p| std::fs::canonicalize(p).ok()) else { return String::new() };
    let Ok(meta) = std::fs::metadata(&path) else { return String::new() };
    let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
    format!("{} {} {}", path.display(), meta.len(), modified.as_nanos())
}

/// Boot `kernel` alone (no initrd, no disks: it panics for want of a root and QEMU exits)
/// and watch its `console`.
async fn probe(program: &Path, kernel: &Path, console: &Path) -> bool {
    let _ = std::fs::remove_file(console);
    let child = tokio::process::Command::new(program)
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-accel", "kvm", "-m", "128"])
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = child else { return false };
    let printed = || std::fs::metadata(console).is_ok_and(|m| m.len() > 0);
    let began = tokio::time::Instant::now();
    let verdict = loop {
        if printed() {
            break true;
        }
        if began.elapsed() > PROBE_WAIT || child.try_wait().ok().flatten().is_some() {
            break printed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill().await;
    let _ = std::fs::remove_file(console);
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verdict kept in the folder is used while host boot, QEMU and kernel are the same, and
    /// a changed kernel is probed afresh. `true` stands in for a QEMU: it prints nothing and
    /// exits, so a probe with it says "no KVM", and a "KVM runs" answer can only come from the
    /// kept verdict.
    #[tokio::test]
    async fn a_kept_verdict_spares_the_probe_until_the_kernel_changes() {
        let folder = tempfile::tempdir().unwrap();
        let kernel = folder.path().join("vmlinuz");
        // Content of its own: verdicts are also kept per kernel for the test process's life.
        std::fs::write(&kernel, format!("kernel of {}", folder.path().display())).unwrap();
        let program = Path::new("true");
        let hash = blake3::hash(&std::fs::read(&kernel).unwrap()).to_hex().to_string();
        let kept =
            Remembered { boot_id: boot_id(), qemu: identity(program), kernel_blake3: hash.clone(), kvm_runs: true };
        assert!(!kept.qemu.is_empty() && !kept.boot_id.is_empty(), "{kept:?}");
        remember(folder.path(), &kept);
        assert!(runs(program, &kernel, folder.path()).await, "the kept verdict was not used");
        // Replication carries it to the copy at the other site.
        let replica = tempfile::tempdir().unwrap();
        carry(folder.path(), replica.path());
        assert_eq!(remembered(replica.path()), Some(kept));

        std::fs::write(&kernel, format!("another kernel of {}", folder.path().display())).unwrap();
        assert!(!runs(program, &kernel, folder.path()).await);
        let now = remembered(folder.path()).unwrap();
        assert_ne!(now.kernel_blake3, hash);
        assert!(!now.kvm_runs);

        // Another boot of the host (or another host) does not trust it.
        let elsewhere = Remembered { boot_id: "another boot".into(), ..now.clone() };
        assert!(!elsewhere.holds_for(&Remembered { kvm_runs: true, ..now.clone() }));
        assert!(now.holds_for(&Remembered { kvm_runs: true, ..now.clone() }));
    }
}
