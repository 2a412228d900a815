//! The reference plugin (`examples/providers/qcow2/provider.py`, Python + qemu-img) with real
//! disk images: it passes the conformance kit, and a two-site plan on it drills, fails over,
//! commits, reprotects and fails back with a delta sync, the guests' disks equal at each move.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{drplan, have_tools, transcript};

const TOOLS: &[&str] = &["python3", "qemu-img", "qemu-io"];

fn provider() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/providers/qcow2/provider.py")
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    drplan(dir).args(args).timeout(std::time::Duration::from_secs(300)).output().unwrap()
}

/// What the command printed (the live step lines are on stderr), after it succeeded.
fn ok(out: std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    transcript(&out)
}

fn qemu(program: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The guest writes `len` bytes of `pattern` at `offset` of its disk at `site`.
fn guest_writes(dir: &Path, site: &str, machine: &str, pattern: u8, offset: &str, len: &str) {
    let disk = dir.join(site).join(machine).join("os.qcow2");
    qemu("qemu-io", &["-f", "qcow2", "-c", &format!("write -q -P {pattern} {offset} {len}"), disk.to_str().unwrap()]);
}

/// What the guest sees on its disk at `site` (qemu-img reads through the backing chain).
fn guest_view(dir: &Path, site: &str, machine: &str) -> Vec<u8> {
    let raw = dir.join(format!("{site}-{machine}.raw"));
    let disk = dir.join(site).join(machine).join("os.qcow2");
    qemu("qemu-img", &["convert", "-O", "raw", disk.to_str().unwrap(), raw.to_str().unwrap()]);
    let bytes = std::fs::read(&raw).unwrap();
    std::fs::remove_file(raw).unwrap();
    bytes
}

fn set_target(dir: &Path, site: &str) {
    let text = std::fs::read_to_string(dir.join("q.yaml")).unwrap();
    let head = &text[..text.find("target:").unwrap()];
    std::fs::write(dir.join("q.yaml"), format!("{head}target:\n  active: {site}\n")).unwrap();
}

#[test]
fn the_qcow2_reference_plugin_passes_the_conformance_kit() {
    if !have_tools(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["provider", "test", "--", "python3", provider().to_str().unwrap()]);
    assert!(ok(out).contains("13 of 13 scenarios passed"));
}

#[test]
fn a_plan_on_qcow2_images_drills_fails_over_and_fails_back_with_equal_disks() {
    if !have_tools(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for machine in ["web", "db"] {
        std::fs::create_dir_all(dir.join("dc1").join(machine)).unwrap();
        let disk = dir.join("dc1").join(machine).join("os.qcow2");
        qemu("qemu-img", &["create", "-q", "-f", "qcow2", disk.to_str().unwrap(), "32M"]);
        guest_writes(dir, "dc1", machine, 7, "0", "4M");
    }
    std::fs::create_dir(dir.join("dc2")).unwrap();
    let plugin = serde_json::to_string(&["python3", provider().to_str().unwrap()]).unwrap();
    std::fs::write(
        dir.join("q.yaml"),
        format!(
            "version: 1\nname: q\nsites:\n  dc1: {{ provider: qcow2, path: dc1, plugin: {plugin} }}\n  \
             dc2: {{ provider: qcow2, path: dc2, plugin: {plugin} }}\n\
             protection: {{ primary: dc1, recovery: dc2, rpo: 5m, rto: 30m }}\n\
             machines: [ {{ name: web, boot_timeout: 3s }}, {{ name: db, boot_timeout: 3s }} ]\n\
             groups: [ {{ name: data, machines: [db] }}, {{ name: front, machines: [web], depends_on: [data] }} ]\n\
             target:\n  active: dc1\n"
        ),
    )
    .unwrap();

    // Protect: a full copy of the allocated data, then recovery point 1.
    let out = ok(run(dir, &["apply", "q.yaml", "--auto-approve"]));
    assert!(out.contains("replicated 4194304 bytes dc1 → dc2; point 1"), "{out}");
    // The plugin's progress notifications reach the display.
    assert!(out.contains("… protect/web: 32.0 MiB of 32.0 MiB (100%) — disk os done"), "{out}");

    // A drill: thin overlays on the point; the replica is not written.
    let replica = guest_view(dir, "dc2", "web");
    ok(run(dir, &["drill", "q.yaml"]));
    let overlays: Vec<String> = std::fs::read_dir(dir.join("dc2/web"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("@drill-"))
        .collect();
    assert_eq!(overlays.len(), 1, "one overlay per disk: {overlays:?}");
    let overlay = std::fs::metadata(dir.join("dc2/web").join(&overlays[0])).unwrap().len();
    assert!(overlay < 1024 * 1024, "the drill copy is thin: {overlay} bytes");
    ok(run(dir, &["drill", "complete", "q.yaml", "--notes", "checked"]));
    assert!(!dir.join("dc2/web").join(&overlays[0]).exists(), "cleanup deleted the drill copy");
    assert_eq!(guest_view(dir, "dc2", "web"), replica, "the drill did not touch the replica");

    // Planned failover: only the changed clusters move; the guests see the same disks.
    for machine in ["web", "db"] {
        guest_writes(dir, "dc1", machine, 9, "8M", "1M");
    }
    set_target(dir, "dc2");
    let out = ok(run(dir, &["apply", "q.yaml", "--auto-approve"]));
    assert!(out.contains("sync/web — synced 1048576 bytes dc1 → dc2 (delta)"), "{out}");
    assert!(out.contains("commit/web") && out.contains("reprotect/web"), "{out}");
    for machine in ["web", "db"] {
        assert_eq!(guest_view(dir, "dc1", machine), guest_view(dir, "dc2", machine), "{machine} after failover");
    }

    // Delta failback: a sync while dc2 runs, the gate, the final delta; then home again.
    for machine in ["web", "db"] {
        guest_writes(dir, "dc2", machine, 11, "12M", "512k");
    }
    set_target(dir, "dc1");
    let out = run(dir, &["apply", "q.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(3), "the delta failback waits at its gate: {}", transcript(&out));
    assert!(transcript(&out).contains("synced 524288 bytes dc2 → dc1 (delta)"), "{}", transcript(&out));
    for machine in ["web", "db"] {
        guest_writes(dir, "dc2", machine, 12, "13M", "64k");
    }
    ok(run(dir, &["approve", "q.yaml", "gate/complete-failover", "--by", "oncall"]));
    let out = ok(run(dir, &["resume", "q.yaml"]));
    assert!(out.contains("synced 65536 bytes dc2 → dc1 (delta)"), "only the last write moves: {out}");
    for machine in ["web", "db"] {
        let home = guest_view(dir, "dc1", machine);
        assert_eq!(home, guest_view(dir, "dc2", machine), "{machine} after failback");
        assert!(home[13 << 20..(13 << 20) + 65536].iter().all(|&b| b == 12), "the last write came home");
    }
    let out = run(dir, &["plan", "q.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged: {}", transcript(&out));
}

#[test]
fn validate_checks_site_settings_against_the_schema_the_plugin_publishes() {
    if !have_tools(TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plugin = serde_json::to_string(&["python3", provider().to_str().unwrap()]).unwrap();
    let plan = |settings: &str| {
        format!(
            "version: 1\nname: q\nsites:\n  dc1: {{ provider: qcow2, path: dc1, plugin: {plugin} }}\n  dc2:\n    \
             provider: qcow2\n    path: dc2\n    plugin: {plugin}\n    settings:\n{settings}\
             protection: {{ primary: dc1, recovery: dc2, rpo: 5m, rto: 30m }}\nmachines: [ {{ name: web }} ]\n\
             groups: [ {{ name: one, machines: [web] }} ]\ntarget:\n  active: dc1\n"
        )
    };
    std::fs::write(dir.path().join("bad.yaml"), plan("      verfy: \"on\"\n      verify: maybe\n")).unwrap();
    let out = run(dir.path(), &["validate", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("drplan::unknown_setting") && err.contains("did you mean `verify`?"), "{err}");
    assert!(err.contains("bad.yaml:10:7"), "points at the key: {err}");
    assert!(err.contains("drplan::invalid_setting") && err.contains("one of `on`, `off`"), "{err}");
    assert!(err.contains("bad.yaml:11:15"), "points at the value: {err}");

    std::fs::write(dir.path().join("good.yaml"), plan("      verify: \"off\"\n")).unwrap();
    ok(run(dir.path(), &["validate", "good.yaml"]));

    // A plugin that cannot answer: a warning, the plan still validates (it is checked again when it runs).
    let broken = plan("      verify: \"off\"\n").replace(provider().to_str().unwrap(), "missing.py");
    std::fs::write(dir.path().join("broken.yaml"), broken).unwrap();
    let out = ok(run(dir.path(), &["validate", "broken.yaml"]));
    assert!(out.contains("drplan::settings_unchecked") && out.contains("1 warning"), "{out}");
}
