//! Test estates of the local provider for the contract suite: three site directories and
//! machines of two small disk images each, with real random content.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::LocalProvider;
use super::layout::disks_in;
use crate::contract::Provider;
use crate::contract::suite::{
    ALTERNATE, BoxFuture, Estate, Fixture, PRIMARY, RECOVERY, ScratchDir, estate_model, estate_plan,
};

const DISK_BYTES: u64 = 512 * 1024;
const DISKS: [&str; 2] = ["os.img", "data.img"];

/// Makes local estates.
pub struct LocalFixture;

struct LocalEstate {
    provider: Arc<LocalProvider>,
    dir: ScratchDir,
    seed: AtomicU64,
}

impl Fixture for LocalFixture {
    fn name(&self) -> String {
        "local".into()
    }

    fn create(&self, machines: usize) -> BoxFuture<'_, Result<Box<dyn Estate>, String>> {
        Box::pin(async move {
            let dir = ScratchDir::new("drplan-contract-local").map_err(|e| e.to_string())?;
            for site in [PRIMARY, RECOVERY, ALTERNATE] {
                std::fs::create_dir_all(dir.0.join(site)).map_err(|e| e.to_string())?;
            }
            let seed = AtomicU64::new(0x5eed);
            for i in 1..=machines {
                let disks = dir.0.join(PRIMARY).join(format!("m{i}")).join("disks");
                std::fs::create_dir_all(&disks).map_err(|e| e.to_string())?;
                for disk in DISKS {
                    let file = std::fs::File::create(disks.join(disk)).map_err(|e| e.to_string())?;
                    file.set_len(DISK_BYTES).map_err(|e| e.to_string())?;
                }
                scribble(&seed, &disks, 64)?;
            }
            let model = estate_model(&dir.0, &estate_plan("local", [PRIMARY, RECOVERY, ALTERNATE], machines))?;
            let provider = Arc::new(LocalProvider::open(&model).map_err(|e| e.to_string())?);
            Ok(Box::new(LocalEstate { provider, dir, seed }) as Box<dyn Estate>)
        })
    }
}

/// A xorshift step: reproducible "random" data.
fn next(seed: &AtomicU64) -> u64 {
    let mut x = seed.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    seed.store(x, Ordering::Relaxed);
    x
}

/// Random bytes at `writes` random places of every disk in `disks`.
fn scribble(seed: &AtomicU64, disks: &Path, writes: usize) -> Result<(), String> {
    for (_, path) in disks_in(disks).map_err(|e| e.to_string())? {
        let file = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| e.to_string())?;
        for _ in 0..writes {
            let data: Vec<u8> = (0..256).map(|_| next(seed) as u8).collect();
            file.write_all_at(&data, next(seed) % (DISK_BYTES - 256)).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

impl LocalEstate {
    /// The machine's disks at `site`: its live (or old) copy, else the replica held there.
    fn disks_at(&self, machine: &str, site: &str) -> PathBuf {
        let root = self.dir.0.join(site);
        let own = root.join(machine).join("disks");
        if disks_in(&own).is_ok_and(|d| !d.is_empty()) {
            return own;
        }
        root.join(".drplan/replicas").join(machine).join("current")
    }
}

impl Estate for LocalEstate {
    fn provider(&self) -> Arc<dyn Provider> {
        self.provider.clone()
    }

    fn write<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let inventory = self.provider.inventory().await.map_err(|e| e.to_string())?;
            let site = inventory
                .machines
                .get(machine)
                .and_then(|m| m.active_site.clone())
                .ok_or_else(|| format!("{machine} is live nowhere"))?;
            scribble(&self.seed, &self.dir.0.join(&site).join(machine).join("disks"), 8)
        })
    }

    fn set_reachable<'a>(&'a self, site: &'a str, reachable: bool) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let (up, dark) = (self.dir.0.join(site), self.dir.0.join(format!("{site}.dark")));
            let (from, to) = if reachable { (dark, up) } else { (up, dark) };
            std::fs::rename(&from, &to).map_err(|e| format!("cannot move {} to {}: {e}", from.display(), to.display()))
        })
    }

    fn content<'a>(&'a self, machine: &'a str, site: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { super::digest(&self.disks_at(machine, site)).map_err(|e| e.to_string()) })
    }
}
