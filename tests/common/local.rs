//! A local two-site lab (plus a third site) with real disk images: machines m1 and m2 of three
//! disks each, random writes between steps, byte-for-byte comparison of copies.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use super::transcript;

pub const MIB: u64 = 1024 * 1024;
pub const BLOCK: u64 = 64 * 1024;
pub const MACHINES: [&str; 2] = ["m1", "m2"];
pub const DISKS: [&str; 3] = ["a.img", "b.img", "c.img"];

pub struct Lab {
    pub dir: tempfile::TempDir,
    seed: u64,
}

impl Lab {
    pub fn new(disk_mib: u64) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let mut lab = Lab { dir, seed: 0x1234_5678 };
        for m in MACHINES {
            let disks = lab.path().join("dc1").join(m).join("disks");
            std::fs::create_dir_all(&disks).unwrap();
            for d in DISKS {
                let f = std::fs::File::create(disks.join(d)).unwrap();
                f.set_len(disk_mib * MIB).unwrap();
            }
        }
        std::fs::create_dir_all(lab.path().join("dc2")).unwrap();
        std::fs::create_dir_all(lab.path().join("dc3")).unwrap();
        // Real content everywhere, then protection starts from it.
        for m in MACHINES {
            lab.scribble("dc1", m, 200);
        }
        lab.target("active: dc1");
        lab
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn target(&self, target: &str) {
        let body: String = target.lines().map(|l| format!("  {}\n", l.trim())).collect();
        let plan = format!(
            "version: 1\nname: local\nsites:\n  dc1: {{ provider: local, path: dc1 }}\n  dc2: {{ provider: local, path: dc2 }}\n  dc3: {{ provider: local, path: dc3 }}\n\
             protection: {{ primary: dc1, recovery: dc2, rpo: 5m, rto: 30m, keep_points: 4 }}\n\
             networks:\n  - {{ source: prod, target: dr, test: drill }}\n\
             machines:\n  - {{ name: m1, nics: [ {{ network: prod, ip: 10.0.0.1 }} ] }}\n  - {{ name: m2, nics: [ {{ network: prod, ip: 10.0.0.2 }} ] }}\n\
             groups:\n  - {{ name: one, machines: [m1] }}\n  - {{ name: two, machines: [m2] }}\n\
             target:\n{body}"
        );
        std::fs::write(self.path().join("local.yaml"), plan).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Output {
        super::drplan(self.path()).args(args).timeout(Duration::from_secs(300)).output().unwrap()
    }

    pub fn apply(&self) -> Value {
        let out = self.run(&["apply", "local.yaml", "--auto-approve", "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn replicate(&self) -> Value {
        let out = self.run(&["replicate", "local.yaml", "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn next(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// Write random bytes into `blocks` distinct random blocks of every disk of a machine;
    /// returns how many blocks changed.
    pub fn scribble(&mut self, site: &str, machine: &str, blocks: u64) -> u64 {
        use std::os::unix::fs::FileExt;
        let mut changed = 0;
        for d in DISKS {
            let path = self.path().join(site).join(machine).join("disks").join(d);
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let count = file.metadata().unwrap().len() / BLOCK;
            let mut chosen = std::collections::BTreeSet::new();
            while (chosen.len() as u64) < blocks.min(count) {
                chosen.insert(self.next() % count);
            }
            for b in &chosen {
                let data: Vec<u8> = (0..512).map(|_| self.next() as u8).collect();
                file.write_all_at(&data, b * BLOCK + self.next() % (BLOCK - 512)).unwrap();
            }
            changed += chosen.len() as u64;
        }
        changed
    }

    pub fn disks(&self, site: &str, machine: &str) -> Vec<Vec<u8>> {
        DISKS
            .iter()
            .map(|d| std::fs::read(self.path().join(site).join(machine).join("disks").join(d)).unwrap())
            .collect()
    }

    pub fn replica_state(&self, site: &str, machine: &str) -> Value {
        let path = self.path().join(site).join(".drplan/replicas").join(machine).join("state.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    pub fn approve_and_resume(&self, report: &Value) -> Value {
        for step in report["awaiting"].as_array().unwrap() {
            let out = self.run(&["approve", "local.yaml", step.as_str().unwrap(), "--by", "test"]);
            assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        }
        let out = self.run(&["resume", "local.yaml", "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}
