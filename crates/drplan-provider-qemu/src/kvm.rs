//! Whether KVM runs guests here. `/dev/kvm` can be there, open, and still run no guest: on
//! the project's own CI machine a Linux kernel under KVM hangs before its first console line
//! (while a BIOS boot sector runs fine). So `accel: auto` boots a machine's kernel under KVM
//! once, briefly, and uses KVM only when the kernel printed something.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tokio::sync::Mutex;

/// How long a probe waits for the kernel's first console line. Under KVM it comes within a
/// second; each plugin (each drplan command that starts a VM) probes again, so where KVM
/// runs nothing the wait is paid once per command. Too short a wait costs only speed (TCG);
/// too long one would cost every failover on such a host.
const PROBE_WAIT: Duration = Duration::from_secs(3);

/// Verdicts by the kernel's content hash, for the plugin's life: every machine of a lab has
/// its own copy of the same kernel. Held during a probe, so that machines starting together
/// wait for one probe instead of running one each.
static VERDICTS: Mutex<BTreeMap<String, bool>> = Mutex::const_new(BTreeMap::new());

/// Whether `/dev/kvm` can be opened (the first condition for KVM).
pub fn usable() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

/// Whether `kernel` prints on its console under KVM with `program` (a QEMU). Probed once
/// per kernel, its console a file in `folder` (the machine's: the provider writes only inside
/// the plan's sites); the verdict goes to the plugin's log.
pub async fn runs(program: &Path, kernel: &Path, folder: &Path) -> bool {
    let Ok(bytes) = tokio::fs::read(kernel).await else { return false };
    let key = blake3::hash(&bytes).to_hex().to_string();
    let mut verdicts = VERDICTS.lock().await;
    if let Some(known) = verdicts.get(&key) {
        return *known;
    }
    let verdict = probe(program, kernel, &folder.join("kvm-probe.console.log")).await;
    let (seen, using) = if verdict { ("printed on its console", "kvm") } else { ("stayed silent", "tcg") };
    eprintln!("KVM probe: {} {seen} under KVM; `accel: auto` uses {using} for it", kernel.display());
    verdicts.insert(key, verdict);
    verdict
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
