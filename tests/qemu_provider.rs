//! The QEMU provider (`crates/drplan-provider-qemu`) against the contract suite: real VMs
//! (firmware only) started, replicated with dirty bitmaps and backup jobs over QMP, failed
//! over and back. Needs qemu-system-x86_64, qemu-img and qemu-io (`.ci/run` installs them).

mod common;

use common::{drplan, have_tools, qemu_provider};

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
