//! Where things live at a local site (a public convention):
//!
//! ```text
//! P/M/disks/*.img          the disks of machine M (any size; sparse files welcome)
//! P/M/run                  optional: started as the machine (cwd P/M), stopped by SIGTERM
//! P/M/quiesce              optional: run before a recovery point, which is then app-consistent
//! P/.drplan/machines/M.json          drplan's record of M at this site (live or stale, power, pid)
//! P/.drplan/replicas/M/current/      the replica of M's disks held at this site
//! P/.drplan/replicas/M/points/ID/    a recovery point: block hashes, and the undo blocks that
//!                                    turn the next point's data back into this one
//! P/.drplan/drills/DRILL/M/          a drill's test copy of M
//! P/.drplan/claims.json              which plan manages each machine at this site
//! ```

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SiteLayout {
    pub name: String,
    pub root: PathBuf,
}

impl SiteLayout {
    pub fn machine_dir(&self, machine: &str) -> PathBuf {
        self.root.join(machine)
    }

    pub fn disks_dir(&self, machine: &str) -> PathBuf {
        self.machine_dir(machine).join("disks")
    }

    pub fn run_script(&self, machine: &str) -> PathBuf {
        self.machine_dir(machine).join("run")
    }

    pub fn quiesce_script(&self, machine: &str) -> PathBuf {
        self.machine_dir(machine).join("quiesce")
    }

    fn meta(&self) -> PathBuf {
        self.root.join(".drplan")
    }

    pub fn record_path(&self, machine: &str) -> PathBuf {
        self.meta().join("machines").join(format!("{machine}.json"))
    }

    pub fn replica_dir(&self, machine: &str) -> PathBuf {
        self.meta().join("replicas").join(machine)
    }

    pub fn replica_current(&self, machine: &str) -> PathBuf {
        self.replica_dir(machine).join("current")
    }

    pub fn replica_state(&self, machine: &str) -> PathBuf {
        self.replica_dir(machine).join("state.json")
    }

    pub fn point_dir(&self, machine: &str, point: u64) -> PathBuf {
        self.replica_dir(machine).join("points").join(point.to_string())
    }

    pub fn drill_dir(&self, drill: &str, machine: &str) -> PathBuf {
        self.meta().join("drills").join(drill).join(machine)
    }

    pub fn drill_record(&self, drill: &str, machine: &str) -> PathBuf {
        self.meta().join("drills").join(drill).join(format!("{machine}.json"))
    }

    pub fn claims(&self) -> PathBuf {
        self.meta().join("claims.json")
    }

    pub fn drills_root(&self) -> PathBuf {
        self.meta().join("drills")
    }

    /// A site is reachable when its directory can be listed.
    pub fn reachable(&self) -> Result<(), String> {
        match std::fs::read_dir(&self.root) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{}: {e}", self.root.display())),
        }
    }
}

/// The disk images in a directory (`*.img`), sorted by name. A disk that is a symbolic link
/// is an error, never silently skipped: drplan copies the images themselves.
pub fn disks_in(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut disks = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "img") {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            return Err(std::io::Error::other(format!(
                "disk {} is a symbolic link: drplan copies disk images themselves; put the image file there",
                path.display()
            )));
        }
        if kind.is_file() {
            disks.push((entry.file_name().to_string_lossy().into_owned(), path));
        }
    }
    disks.sort();
    Ok(disks)
}
