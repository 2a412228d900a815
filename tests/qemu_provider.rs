//! The QEMU provider (`crates/drplan-provider-qemu`) against the contract suite: real VMs
//! (firmware only) started, replicated with dirty bitmaps and backup jobs over QMP, failed
//! over and back. Then VMs that boot from a disk (a real boot sector) through plans: boot
//! disk choice, hard stop, ready lines, drift. Needs qemu-system-x86_64, qemu-img and
//! qemu-io (`.ci/run` installs them).

mod common;

use std::path::Path;
use std::process::Command;

use common::{drplan, have_tools, qemu_provider, transcript};
use drplan::lab::qemu;

const TOOLS: &[&str] = &["qemu-system-x86_64", "qemu-img", "qemu-io"];

#[test]
fn the_qemu_provider_passes_the_contract_suite() {
    if !have_tools(TOOLS) {
        return;
    }
    let provider = qemu_provider();
    let dir = tempfile::tempdir().unwrap();
    // TCG: KVM is present on some CI machines but does not run guests reliably there.
    let out = drplan(dir.path())
        .args(["provider", "test", "--format", "json", "--", "env", "DRPLAN_QEMU_ACCEL=tcg"])
        .arg(&provider)
        .output()
        .unwrap();
    // Each estate's plugin stops its VMs before it exits, and the suite waits for that.
    let survivors = stop_kit_vms();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results: Vec<serde_json::Value> =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    assert!(!results.is_empty(), "the suite ran: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let failed: Vec<&serde_json::Value> = results.iter().filter(|r| r["passed"] != true).collect();
    assert!(failed.is_empty(), "scenarios failed: {failed:#?}");
    assert!(out.status.success());
    assert_eq!(survivors, 0, "the kit's VMs outlived their estates");
}

/// Kill the kit's VMs still running (so that none outlives the test), and count them.
fn stop_kit_vms() -> usize {
    let mut found = 0;
    let Ok(processes) = std::fs::read_dir("/proc") else { return found };
    for entry in processes.filter_map(|e| e.ok()) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with("qemu-system-x86_64") && cmdline.contains("drplan-qemu-kit-") {
            // SAFETY: a plain signal to a QEMU this test's kit started.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                found += 1;
            }
        }
    }
    found
}

/// A boot sector (512 bytes, 16-bit x86, for the firmware's BIOS): it reads the disk's
/// sector 1 with `int 13h` and prints it on the first serial port after
/// `drplan-disk: booted; sector 1 says: `, then halts. It ignores ACPI power-down, like many
/// guests. Source (GNU as, `.code16`, linked at 0x7c00):
///
/// ```text
/// cli; xor ax,ax; mov ds/es/ss,ax; mov sp,0x7c00; sti
/// mov bx,0x7e00; mov ax,0x0201; mov cx,2; xor dh,dh; int 0x13   ; sector 1 -> 0x7e00
/// mov si,msg; call puts; mov si,0x7e00; call puts; mov si,nl; call puts
/// hang: hlt; jmp hang
/// puts: lodsb; test al,al; jz done; mov dx,0x3f8; out dx,al; jmp puts
/// done: ret
/// ```
const BOOT_SECTOR_CODE: &[u8] = &[
    0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, 0xfb, 0xbb, 0x00, 0x7e, //
    0xb8, 0x01, 0x02, 0xb9, 0x02, 0x00, 0x30, 0xf6, 0xcd, 0x13, 0xbe, 0x3b, 0x7c, 0xe8, 0x0f, 0x00, //
    0xbe, 0x00, 0x7e, 0xe8, 0x09, 0x00, 0xbe, 0x60, 0x7c, 0xe8, 0x03, 0x00, 0xf4, 0xeb, 0xfd, 0xac, //
    0x84, 0xc0, 0x74, 0x06, 0xba, 0xf8, 0x03, 0xee, 0xeb, 0xf5, 0xc3,
];
const BOOT_MESSAGE: &str = "drplan-disk: booted; sector 1 says: ";

/// A bootable disk image: the boot sector, its message at 0x7c3b and CR LF at 0x7c60 (where
/// the code above points), the signature, and `says` in sector 1.
fn bootable_disk(says: &[u8]) -> Vec<u8> {
    let mut disk = vec![0u8; 4 << 20];
    disk[..BOOT_SECTOR_CODE.len()].copy_from_slice(BOOT_SECTOR_CODE);
    disk[0x3b..0x3b + BOOT_MESSAGE.len()].copy_from_slice(BOOT_MESSAGE.as_bytes());
    disk[0x60..0x62].copy_from_slice(b"\r\n");
    disk[510..512].copy_from_slice(&[0x55, 0xaa]);
    disk[512..512 + says.len()].copy_from_slice(says);
    disk
}

/// A machine with no kernel boots from a disk, at either site: the VM at dc1 runs the boot
/// sector of its `boot_disk` (`os`, not the first by name), a block it writes while running
/// travels in the planned failover's final sync, and dc2's VM boots from the replica and
/// reads that block. The guest ignores ACPI, so the failover's power-down ends in a hard
/// stop after the machine's `boot_timeout`.
#[test]
fn a_machine_without_a_kernel_boots_from_its_disk_at_either_site() {
    let Some(lab) = Vms::new() else { return };
    let dir = lab.0.path();
    let folder = dir.join("dc1/boot1");
    // Two bootable disks; the first by name is not the one to boot.
    bootable_qcow2(&folder, "a-rescue", b"RESCUE DISK     ");
    bootable_qcow2(&folder, "os", &[b'A'; 16]);
    let hardware = |boot_disk: &str| {
        let text =
            format!(r#"{{ "memory_mib": 32, "ready_line": "drplan-disk: booted", "boot_disk": "{boot_disk}" }}"#);
        std::fs::write(folder.join("machine.json"), text).unwrap();
    };
    std::fs::write(dir.join("plan.yaml"), boot_plan(dir, "dc1")).unwrap();
    // A boot disk the machine does not have is refused before anything moves.
    hardware("system");
    let out = drplan(dir).args(["apply", "plan.yaml", "--auto-approve"]).output().unwrap();
    let text = transcript(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("boot_disk `system` is not one of the machine's disks (a-rescue, os)"), "{text}");
    assert!(!dir.join("dc2/boot1").join("os.qcow2").exists(), "{text}");

    hardware("os");
    apply(dir);
    assert_console(&folder, "AAAAAAAAAAAAAAAA");

    // The running guest's disk changes (through QEMU, as the guest's own write would).
    qemu::monitor_qemu_io(&folder, "os", "write -P 0x42 512 16").unwrap();
    std::fs::write(dir.join("plan.yaml"), boot_plan(dir, "dc2")).unwrap();
    let out = apply(dir);
    assert!(out.contains("hard stop"), "the guest ignored ACPI power-down: {out}");
    assert_console(&dir.join("dc2/boot1"), "BBBBBBBBBBBBBBBB");

    // Given more memory while it runs at dc2: the failback's review shows it.
    let description = dir.join("dc2/boot1/machine.json");
    let text = std::fs::read_to_string(&description).unwrap().replace(r#""memory_mib": 32"#, r#""memory_mib": 48"#);
    std::fs::write(&description, text).unwrap();
    std::fs::write(dir.join("plan.yaml"), boot_plan(dir, "dc1")).unwrap();
    let out = drplan(dir).args(["plan", "plan.yaml", "--format", "json"]).output().unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let diff = plan["drift"][0]["diff"].as_str().unwrap_or_else(|| panic!("no drift: {plan:#}"));
    assert!(diff.contains("\n-  memory_mib: 32\n") && diff.contains("\n+  memory_mib: 48\n"), "{diff}");
    assert!(diff.contains("boot_disk: os") && !diff.contains("-  boot_disk"), "unchanged settings are context: {diff}");
}

/// Machine boot1's `name` disk in `folder`: a bootable qcow2 whose sector 1 says `says`.
fn bootable_qcow2(folder: &Path, name: &str, says: &[u8]) {
    let raw = folder.join(format!("{name}.raw"));
    std::fs::write(&raw, bootable_disk(says)).unwrap();
    let qcow2 = folder.join(format!("{name}.qcow2"));
    let made = Command::new("qemu-img").args(["convert", "-q", "-O", "qcow2"]).arg(&raw).arg(&qcow2).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    std::fs::remove_file(raw).unwrap();
}

/// A plan of machine boot1 (boot_timeout 5 s) on two QEMU sites, live at `active`.
fn boot_plan(dir: &Path, active: &str) -> String {
    let scope = dir.display();
    format!(
        "version: 1\nname: diskboot\nsites:\n  \
         dc1: {{ provider: qemu, path: dc1, settings: {{ accel: tcg, network_scope: \"{scope}\" }} }}\n  \
         dc2: {{ provider: qemu, path: dc2, settings: {{ accel: tcg, network_scope: \"{scope}\" }} }}\n\
         protection: {{ primary: dc1, recovery: dc2, rpo: 1m, rto: 10m }}\n\
         machines:\n  - name: boot1\n    boot_timeout: 5s\n\
         groups:\n  - name: all\n    machines: [boot1]\n\
         target:\n  active: {active}\n"
    )
}

/// A start that timed out waiting for the guest's ready line leaves the VM running, and
/// asking again (`drplan resume`) waits on for the line from the same boot instead of
/// calling a machine that merely runs "started". Here the replica's guest is stuck until its
/// disk changes and it is reset.
#[test]
fn a_start_asked_again_or_planned_anew_waits_for_the_same_boots_ready_line() {
    let Some(lab) = Vms::new() else { return };
    let dir = lab.0.path();
    let (dc1, dc2) = (dir.join("dc1/boot1"), dir.join("dc2/boot1"));
    bootable_qcow2(&dc1, "os", b"READY\0");
    let ready = format!("{BOOT_MESSAGE}READY");
    std::fs::write(dc1.join("machine.json"), format!(r#"{{ "memory_mib": 32, "ready_line": "{ready}" }}"#)).unwrap();
    std::fs::write(dir.join("plan.yaml"), boot_plan(dir, "dc1")).unwrap();
    apply(dir);

    // What dc2 will boot is stuck: its planned failover stops at the start, and so does the
    // resume (it waits for the line again).
    say(&dc1, "STUCK");
    std::fs::write(dir.join("plan.yaml"), boot_plan(dir, "dc2")).unwrap();
    let failover = drplan(dir).args(["apply", "plan.yaml", "--auto-approve"]).output().unwrap();
    let resume = drplan(dir).args(["resume", "plan.yaml"]).output().unwrap();
    for (what, out) in [("the failover", failover), ("the resume", resume)] {
        let text = transcript(&out);
        assert!(!out.status.success(), "{what}: {text}");
        assert!(text.contains(&format!("did not print `{ready}`")), "{what}: {text}");
    }
    assert_console(&dc2, "STUCK");

    // Abandoned, the run leaves a VM whose guest is not up: the provider reports it booting,
    // and a new plan starts it (the start waits for the line), not "no changes".
    let cancel = drplan(dir).args(["cancel", "plan.yaml"]).output().unwrap();
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    let plan = drplan(dir).args(["plan", "plan.yaml"]).output().unwrap();
    let text = transcript(&plan);
    assert!(text.contains("boot1 at dc2 (already running: waits for its guest to come up)"), "{text}");

    // The same VM gets there (its disk changed, then a reset: a slow boot's end).
    say(&dc2, "READY");
    qemu::monitor(&dc2, "system_reset").unwrap();
    let text = apply(dir);
    assert!(text.contains("boot1 already runs at dc2, and its guest is up"), "{text}");
    let plan = drplan(dir).args(["plan", "plan.yaml"]).output().unwrap();
    let text = transcript(&plan);
    assert!(!text.lines().any(|l| l.trim_start().starts_with("+ start")), "the guest is up: {text}");
}

/// Rewrite sector 1 of the running VM's `os` disk in `folder` to say `text`.
fn say(folder: &Path, text: &str) {
    for (offset, byte) in text.bytes().chain([0]).enumerate() {
        qemu::monitor_qemu_io(folder, "os", &format!("write -P {byte} {} 1", 512 + offset)).unwrap();
    }
}

fn apply(dir: &Path) -> String {
    let out = drplan(dir).args(["apply", "plan.yaml", "--auto-approve"]).output().unwrap();
    let text = transcript(&out);
    assert!(out.status.success(), "{text}");
    text
}

/// The VM in `folder` booted and printed `says` from its disk's sector 1.
fn assert_console(folder: &Path, says: &str) {
    let console = std::fs::read_to_string(folder.join("vm.console.log")).unwrap_or_default();
    let line = console.lines().rfind(|l| l.starts_with(BOOT_MESSAGE));
    assert_eq!(line.map(|l| l[BOOT_MESSAGE.len()..].trim_end()), Some(says), "{console}");
}

/// Stops the test's VMs when it ends, passed or not.
struct Vms(tempfile::TempDir);

impl Vms {
    /// Sites dc1 (with machine boot1's empty folder) and dc2, when QEMU is installed.
    fn new() -> Option<Vms> {
        if !have_tools(TOOLS) {
            return None;
        }
        qemu_provider();
        let lab = Vms(tempfile::Builder::new().prefix("drplan-qemu-boot-").tempdir().unwrap());
        std::fs::create_dir_all(lab.0.path().join("dc1/boot1")).unwrap();
        std::fs::create_dir_all(lab.0.path().join("dc2")).unwrap();
        Some(lab)
    }
}

impl Drop for Vms {
    fn drop(&mut self) {
        qemu::stop_all(self.0.path());
    }
}
