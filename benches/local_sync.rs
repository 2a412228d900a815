//! The local provider's data movement against standard tools on the same 1 GiB disk, in the
//! same run: a delta point after 1 % of the blocks changed versus
//! `rsync --inplace --no-whole-file`, and a full sync versus `cp`.
//!
//! Run: `cargo bench --bench local_sync` (needs `rsync`; page cache warm for both sides).

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use drplan::contract::ProviderOp;
use drplan::spec::SyncMode;
use tokio_util::sync::CancellationToken;

const DISK: u64 = 1 << 30;
const BLOCK: u64 = 64 * 1024;
const ROUNDS: usize = 3;

#[path = "support/mod.rs"]
mod support;

use support::median;

fn fill(path: &Path, seed: u64) {
    let file = std::fs::File::create(path).unwrap();
    let mut x = seed;
    let mut chunk = vec![0u8; 8 << 20];
    let mut offset = 0;
    while offset < DISK {
        for b in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes());
        }
        file.write_all_at(&chunk, offset).unwrap();
        offset += chunk.len() as u64;
    }
    file.sync_all().unwrap();
}

/// Change one byte range in 1 % of the blocks, chosen at random.
fn change_one_percent(path: &Path, seed: &mut u64) -> u64 {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let blocks = DISK / BLOCK;
    let mut chosen = std::collections::BTreeSet::new();
    while (chosen.len() as u64) < blocks / 100 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        chosen.insert(*seed % blocks);
    }
    for b in &chosen {
        file.write_all_at(&seed.to_le_bytes().repeat(64), b * BLOCK + 1000).unwrap();
    }
    file.sync_all().unwrap();
    chosen.len() as u64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if Command::new("rsync").arg("--version").output().is_err() {
        eprintln!("rsync is not installed (apt-get install rsync); it is this benchmark's baseline");
        std::process::exit(1);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir_in(".").unwrap();
    let root = dir.path();
    for site in ["dc1", "dc2", "dc3"] {
        std::fs::create_dir_all(root.join(site)).unwrap();
    }
    std::fs::create_dir_all(root.join("dc1/m/disks")).unwrap();
    let disk = root.join("dc1/m/disks/disk.img");
    fill(&disk, 42);
    let plan = root.join("bench.yaml");
    std::fs::write(
        &plan,
        "version: 1\nname: bench\nsites:\n  dc1: { provider: local, path: dc1 }\n  dc2: { provider: local, path: dc2 }\n  dc3: { provider: local, path: dc3 }\n\
         protection: { primary: dc1, recovery: dc2, rpo: 5m, rto: 1h, keep_points: 100 }\nmachines:\n  - { name: m }\n\
         groups:\n  - { name: g, machines: [m] }\ntarget:\n  active: dc1\n",
    )
    .unwrap();
    let model = drplan::validate::validate_file(&plan).model.expect("the bench plan is valid");
    let provider = drplan::providers::open(&model).unwrap();
    let run = |op: ProviderOp| runtime.block_on(provider.execute(&op, CancellationToken::new())).unwrap();
    run(ProviderOp::EnableProtection { machine: "m".into(), from: "dc1".into(), to: "dc2".into() });

    let mut seed = 7u64;
    let (mut delta, mut rsync, mut moved) = (Vec::new(), Vec::new(), 0);
    let rsync_copy = root.join("rsync-target.img");
    for _ in 0..ROUNDS {
        // rsync starts from the same data the replica holds: the disk before the change.
        std::fs::copy(root.join("dc2/.drplan/replicas/m/current/disk.img"), &rsync_copy).unwrap();
        let changed = change_one_percent(&disk, &mut seed);
        let start = Instant::now();
        let outcome = run(ProviderOp::TakePoint { machine: "m".into(), from: "dc1".into(), to: "dc2".into() });
        delta.push(start.elapsed());
        moved = outcome.bytes_transferred.unwrap_or(0);
        assert_eq!(moved, changed * BLOCK, "only the changed blocks move");
        let start = Instant::now();
        // --ignore-times: the quick check compares mtimes at one-second granularity and would skip
        // the file (leaving it different) when both were written within the same second.
        let status = Command::new("rsync")
            .args(["--inplace", "--no-whole-file", "--ignore-times"])
            .arg(&disk)
            .arg(&rsync_copy)
            .status()
            .unwrap();
        rsync.push(start.elapsed());
        assert!(status.success());
        let digest = |p: &Path| blake3::hash(&std::fs::read(p).unwrap()).to_hex().to_string();
        let (src, rs, rep) =
            (digest(&disk), digest(&rsync_copy), digest(&root.join("dc2/.drplan/replicas/m/current/disk.img")));
        assert!(src == rs && src == rep, "source {src}\nrsync {rs}\nreplica {rep}");
    }

    let (mut full, mut cp) = (Vec::new(), Vec::new());
    let cp_copy = root.join("cp-target.img");
    for _ in 0..ROUNDS {
        let _ = std::fs::remove_dir_all(root.join("dc3/.drplan"));
        let _ = std::fs::remove_file(&cp_copy);
        let start = Instant::now();
        run(ProviderOp::Sync {
            machine: "m".into(),
            from: "dc1".into(),
            to: "dc3".into(),
            mode: SyncMode::Full,
            final_sync: false,
        });
        full.push(start.elapsed());
        let start = Instant::now();
        assert!(Command::new("cp").arg(&disk).arg(&cp_copy).status().unwrap().success());
        Command::new("sync").arg(&cp_copy).status().unwrap();
        cp.push(start.elapsed());
    }
    let (delta, rsync, full, cp) = (median(delta), median(rsync), median(full), median(cp));
    println!("| operation on a 1 GiB disk | drplan | baseline | ratio (target) |");
    println!("|---|---|---|---|");
    println!(
        "| delta sync, 1 % of 64 KiB blocks changed ({} moved) | {:.0} ms | rsync --inplace --no-whole-file -I: {:.0} ms | {:.2} (< 1.0) |",
        drplan::spec::time_format::human_bytes(moved),
        delta.as_secs_f64() * 1e3,
        rsync.as_secs_f64() * 1e3,
        delta.as_secs_f64() / rsync.as_secs_f64()
    );
    println!(
        "| full sync | {:.0} ms | cp + sync: {:.0} ms | {:.2} (< 1.3) |",
        full.as_secs_f64() * 1e3,
        cp.as_secs_f64() * 1e3,
        full.as_secs_f64() / cp.as_secs_f64()
    );
}
