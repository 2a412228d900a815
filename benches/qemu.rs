//! The QEMU provider on real VMs (the lab guest, under TCG):
//!
//! 1. Replication of a running VM with 1 % of a 1 GiB disk changed (160 writes of 64 KiB at
//!    seeded, distinct, cluster-aligned offsets, made inside the running QEMU): bytes moved /
//!    bytes changed, and the wall time of `drplan replicate` against the baseline measured in
//!    the same run, `qemu-img convert` of the whole disk.
//! 2. A planned failover of three VMs: the measured RTO split into power-down, final sync and
//!    boot (QEMU up, then the guests writing again), against the plan's estimate.
//! 3. Reprotect after an unplanned failover (the old copy wrote 1 % of a full 1 GiB disk after
//!    the point, then its QEMU was killed): bytes moved / bytes that differ, and the reprotect's
//!    wall time against `qemu-img convert` of the whole disk (what a full copy costs).
//!
//! Run: `cargo bench --bench qemu` (about six minutes; needs qemu-system-x86, qemu-utils and
//! apt's package lists for the guest; `-- replication`, `rto` or `reprotect` runs one part).
//! Prints Markdown tables for README.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use drplan::lab::qemu;

#[path = "support/mod.rs"]
mod support;

use support::median;

const RUNS: usize = 5;
const DISK: u64 = 1 << 30;
const WRITE: u64 = 64 << 10;
const WRITES: u64 = 160; // 160 × 64 KiB = 10 MiB ≈ 1 % of 1 GiB

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    build_provider();
    // `cargo bench --bench qemu -- replication` (or `rto`, `reprotect`) runs one part.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if only.as_deref().is_none_or(|o| o == "replication") {
        replication();
    }
    if only.as_deref().is_none_or(|o| o == "rto") {
        failover_rto();
    }
    if only.as_deref().is_none_or(|o| o == "reprotect") {
        reprotect_after_unplanned();
    }
}

fn drplan() -> &'static str {
    env!("CARGO_BIN_EXE_drplan")
}

/// The provider, built like the bench's drplan (release), so drplan finds it beside itself.
fn build_provider() {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "--release", "-p", "drplan-provider-qemu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success());
    assert!(Path::new(drplan()).with_file_name("drplan-provider-qemu").exists(), "the provider is beside {}", drplan());
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(drplan()).current_dir(dir).args(args).env("NO_COLOR", "1").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "drplan {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// A lab of `machines` VMs, under TCG, protected and writing.
fn lab(machines: usize, extra: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::Builder::new().prefix("drplan-qemu-bench-").tempdir().unwrap();
    let dir = scratch.path().join("lab");
    run(
        scratch.path(),
        &[
            "lab",
            "init",
            "--provider",
            "qemu",
            "--accel",
            "tcg",
            "--machines",
            &machines.to_string(),
            dir.to_str().unwrap(),
        ],
    );
    extra(&dir);
    run(&dir, &["apply", "lab.yaml", "--auto-approve"]);
    let names: Vec<&str> = qemu::MACHINES.iter().take(machines).map(|m| m.0).collect();
    qemu::wait_for_records(&dir.join("dc1"), &names, 3, Duration::from_secs(180)).unwrap();
    (scratch, dir)
}

/// The 1 GiB disk `big` of the one-VM lab's db1 at dc1, full of data, so the baseline copies
/// real data.
fn big_disk(dir: &Path) {
    let big = dir.join("dc1/db1/big.qcow2");
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&big)
        .arg(DISK.to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", &format!("write -q -P 0x11 0 {DISK}")])
        .arg(&big)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// 1 % of the running VM's disk `big` in `folder` changed: WRITES writes of WRITE bytes at
/// distinct, cluster-aligned offsets from the seeded generator, flushed. Returns the bytes.
fn change_one_percent(folder: &Path, seed: &mut u64, pattern: u64) -> u64 {
    let mut offsets = std::collections::BTreeSet::new();
    while (offsets.len() as u64) < WRITES {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        offsets.insert(*seed % (DISK / WRITE) * WRITE);
    }
    for offset in &offsets {
        qemu::monitor_qemu_io(folder, "big", &format!("write -q -P {pattern} {offset} {WRITE}")).unwrap();
    }
    qemu::monitor_qemu_io(folder, "big", "flush").unwrap();
    WRITES * WRITE
}

/// The baseline: `qemu-img convert` of the whole disk `big` in `folder`.
fn convert_whole_disk(folder: &Path) -> Duration {
    let target = folder.with_file_name("convert.qcow2");
    let began = Instant::now();
    let ok = Command::new("qemu-img")
        .args(["convert", "-U", "-O", "qcow2"])
        .arg(folder.join("big.qcow2"))
        .arg(&target)
        .status()
        .unwrap();
    let took = began.elapsed();
    assert!(ok.success());
    let _ = std::fs::remove_file(&target);
    took
}

fn replication() {
    let (_scratch, dir) = lab(1, big_disk);
    let folder = dir.join("dc1/db1");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let (mut moved, mut changed) = (0u64, 0u64);
    let (mut replicate, mut convert) = (Vec::new(), Vec::new());
    for round in 0..RUNS {
        changed += change_one_percent(&folder, &mut seed, 0x20 + round as u64);
        let began = Instant::now();
        let text = run(&dir, &["replicate", "lab.yaml"]);
        replicate.push(began.elapsed());
        let bytes: u64 = text
            .lines()
            .find_map(|l| l.split(": ").nth(1)?.strip_suffix(" bytes of changed blocks")?.parse().ok())
            .unwrap_or_else(|| panic!("no byte count in {text}"));
        moved += bytes;
        convert.push(convert_whole_disk(&folder));
    }
    // The fixed cost: a replication with nothing changed but the guest's records (drplan and
    // its plugin start, QMP, the guest's freeze and thaw, the point's images).
    let mut fixed = Vec::new();
    for _ in 0..RUNS {
        let began = Instant::now();
        run(&dir, &["replicate", "lab.yaml"]);
        fixed.push(began.elapsed());
    }
    qemu::stop_all(&dir);
    let (r, c, f) = (median(replicate), median(convert), median(fixed));
    println!("| running VM, 1 GiB disk, 1 % changed ({RUNS} rounds) | value |");
    println!("|---|---|");
    println!(
        "| bytes changed (160 × 64 KiB per round; the guest's records add a little) | {:.1} MiB |",
        changed as f64 / 1048576.0
    );
    println!("| bytes moved by `drplan replicate` | {:.1} MiB |", moved as f64 / 1048576.0);
    println!("| moved / changed | {:.3} |", moved as f64 / changed as f64);
    println!("| `drplan replicate`, median wall | {} ms |", r.as_millis());
    println!("| baseline `qemu-img convert` of the whole disk, median wall | {} ms |", c.as_millis());
    println!("| replicate / convert | {:.2} |", r.as_secs_f64() / c.as_secs_f64());
    println!("| `drplan replicate` with nothing changed (the fixed cost), median wall | {} ms |", f.as_millis());
    println!();
}

fn millis(report: &serde_json::Value, at: &str) -> i64 {
    let text = report[at].as_str().unwrap_or_default();
    parse_ms(text)
}

/// Milliseconds since the epoch of an RFC 3339 UTC time as the reports write it.
fn parse_ms(text: &str) -> i64 {
    let t = drplan::spec::time_format::parse_rfc3339(text).unwrap_or_else(|| panic!("not a time: {text}"));
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// First start and last end of the steps whose id starts with `prefix`.
fn phase(report: &serde_json::Value, prefix: &str) -> (i64, i64) {
    let steps: Vec<&serde_json::Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"].as_str().unwrap_or("").starts_with(prefix))
        .collect();
    let start = steps.iter().map(|s| millis(s, "started_at")).min().unwrap();
    let end = steps.iter().map(|s| millis(s, "finished_at")).max().unwrap();
    (start, end)
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn set_active(plan: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(plan).unwrap();
    std::fs::write(plan, text.replace(&format!("active: {from}"), &format!("active: {to}"))).unwrap();
}

/// Three planned failovers dc1 → dc2, each measured, with an unmeasured failback between.
fn failover_rto() {
    let (_scratch, dir) = lab(3, |_| {});
    let names = ["db1", "app1", "web1"];
    let plan = dir.join("lab.yaml");
    println!(
        "| planned failover dc1 → dc2, 3 VMs | power-down | final sync | failover | boot (QEMU up) | RTO measured by drplan | until the guests write again | plan's estimate |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for round in 0..3 {
        set_active(&plan, "dc1", "dc2");
        let preview = run(&dir, &["plan", "lab.yaml"]);
        let estimate = preview
            .lines()
            .find_map(|l| l.strip_prefix("Estimated RTO ")?.split(' ').next())
            .unwrap_or("?")
            .to_string();
        let report_dir = format!("reports/{round}");
        run(&dir, &["apply", "lab.yaml", "--auto-approve", "--report", &report_dir]);
        qemu::wait_for_records(&dir.join("dc2"), &names, 1, Duration::from_secs(180)).unwrap();
        let writing = epoch_ms();
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(&report_dir).join("report.json")).unwrap()).unwrap();
        let (down_start, down_end) = phase(&report, "shutdown/");
        let (sync_start, sync_end) = phase(&report, "sync/");
        let (fo_start, fo_end) = phase(&report, "failover/");
        let (boot_start, boot_end) = phase(&report, "start/");
        let since = parse_ms(report["rto"]["since"].as_str().unwrap());
        println!(
            "| round {} | {} ms | {} ms | {} ms | {} ms | {} ms | {} ms | {estimate} |",
            round + 1,
            down_end - down_start,
            sync_end - sync_start,
            fo_end - fo_start,
            boot_end - boot_start,
            report["rto"]["measured_ms"],
            writing - since,
        );
        // Back home (not measured): through the "complete failover" gate.
        set_active(&plan, "dc2", "dc1");
        apply_through_gate(&dir);
        qemu::wait_for_records(&dir.join("dc1"), &names, 3, Duration::from_secs(180)).unwrap();
    }
    qemu::stop_all(&dir);
}

/// Rounds of: 1 % of the disk written at dc1 after its newest point, dc1's QEMU killed, an
/// unplanned failover to dc2 (whose run reprotects dc2 → dc1 while the VM runs there), then a
/// planned failback (not measured).
fn reprotect_after_unplanned() {
    const ROUNDS: usize = 3;
    let (_scratch, dir) = lab(1, big_disk);
    let plan = dir.join("lab.yaml");
    let (dc1, dc2) = (dir.join("dc1/db1"), dir.join("dc2/db1"));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    println!(
        "| reprotect after an unplanned failover, 1 GiB disk, 1 % written after the point | bytes that differ | bytes moved | moved / differ | reprotect wall | baseline `qemu-img convert` of the whole disk | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for round in 0..ROUNDS {
        run(&dir, &["replicate", "lab.yaml"]);
        let differ = change_one_percent(&dc1, &mut seed, 0x40 + round as u64);
        qemu::wait_for_records(&dir.join("dc1"), &["db1"], 2, Duration::from_secs(120)).unwrap();
        qemu::crash(&dir, "dc1");
        let text = std::fs::read_to_string(&plan).unwrap().replace("active: dc1\n", "active: dc2\n  via: unplanned\n");
        std::fs::write(&plan, text).unwrap();
        let report_dir = format!("reports/unplanned-{round}");
        run(&dir, &["apply", "lab.yaml", "--auto-approve", "--report", &report_dir]);
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(&report_dir).join("report.json")).unwrap()).unwrap();
        let step = report["steps"].as_array().unwrap().iter().find(|s| s["id"] == "reprotect/db1").unwrap();
        assert_eq!(step["status"], "succeeded", "{step}");
        let moved = step["outcome"]["bytes_transferred"].as_u64().unwrap();
        let wall = millis(step, "finished_at") - millis(step, "started_at");
        let convert = convert_whole_disk(&dc2);
        println!(
            "| round {} | {:.1} MiB (+ the guest's records) | {:.1} MiB | {:.3} | {wall} ms | {} ms | {:.2} |",
            round + 1,
            differ as f64 / 1048576.0,
            moved as f64 / 1048576.0,
            moved as f64 / differ as f64,
            convert.as_millis(),
            wall as f64 / convert.as_millis() as f64,
        );
        // Back home (not measured): a planned failback through the "complete failover" gate.
        let text = std::fs::read_to_string(&plan).unwrap().replace("active: dc2\n  via: unplanned\n", "active: dc1\n");
        std::fs::write(&plan, text).unwrap();
        apply_through_gate(&dir);
        qemu::wait_for_records(&dir.join("dc1"), &["db1"], 2, Duration::from_secs(180)).unwrap();
    }
    println!();
    qemu::stop_all(&dir);
}

/// Apply the plan, approving the "complete failover" gate when the run stops there.
fn apply_through_gate(dir: &Path) {
    let out = Command::new(drplan())
        .current_dir(dir)
        .args(["apply", "lab.yaml", "--auto-approve"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    if out.status.code() == Some(3) {
        run(dir, &["approve", "lab.yaml", "gate/complete-failover", "--by", "bench"]);
        run(dir, &["resume", "lab.yaml"]);
    } else {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}
