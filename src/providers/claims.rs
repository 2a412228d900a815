//! The record, kept where the machines live, of which plan owns each machine: a JSON file
//! per place (a local site, a sim world) beside a lock file, read under a shared lock and
//! changed under an exclusive one, so that two plans claiming at once cannot both win.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::contract::{Claimant, ForeignClaim, ProviderError};
use crate::os::fs::{PRIVATE_FILE, open_write};
use crate::state::atomic::write_atomic;

const FORMAT: u32 = 1;

/// One place's record of owners.
#[derive(Debug, Clone)]
pub struct ClaimFile {
    path: PathBuf,
}

/// A plan's machine: its name in the plan and its identity where it lives.
pub struct Machine<'a> {
    pub name: &'a str,
    pub id: &'a str,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Registry {
    format: u32,
    /// Keyed by the machine's identity where it lives.
    machines: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    owner: Claimant,
    #[serde(with = "crate::spec::time_format")]
    since: SystemTime,
}

impl ClaimFile {
    pub fn new(path: PathBuf) -> Self {
        ClaimFile { path }
    }

    fn lock(&self, exclusive: bool) -> Result<Held, ProviderError> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(dir) = path.parent() {
            crate::os::fs::create_private_dir(dir).map_err(|e| self.error("create the directory of", e))?;
        }
        let file = open_write(&path, PRIVATE_FILE).map_err(|e| self.error("open the lock of", e))?;
        let held = if exclusive { file.lock() } else { file.lock_shared() };
        held.map_err(|e| self.error("lock", e))?;
        Ok(Held(file))
    }

    fn read(&self) -> Result<Registry, ProviderError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Registry::default()),
            Err(e) => return Err(self.error("read", e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::setup(
                format!("the record of machine owners `{}` is not valid: {e}", self.path.display()),
                "restore it from a backup, or remove it: the next apply of each plan claims its machines again",
            )
        })
    }

    fn write(&self, registry: &Registry) -> Result<(), ProviderError> {
        let mut bytes = serde_json::to_vec_pretty(registry).map_err(|e| ProviderError::failed(e.to_string()))?;
        bytes.push(b'\n');
        write_atomic(&self.path, &bytes).map_err(|e| self.error("write", e))
    }

    fn error(&self, what: &str, e: std::io::Error) -> ProviderError {
        ProviderError::failed(format!("cannot {what} the record of machine owners `{}`: {e}", self.path.display()))
    }
}

/// Unlocked when dropped.
struct Held(File);

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Other plans' claims on `machines`, as the files record them now.
pub fn foreign(files: &[ClaimFile], me: &Claimant, machines: &[Machine]) -> Result<Vec<ForeignClaim>, ProviderError> {
    let mut found = Vec::new();
    for file in files {
        let _shared = file.lock(false)?;
        found.push(file.read()?);
    }
    Ok(conflicts(&found, me, machines))
}

/// Make `me` the owner of `machines` in every file, and let go of what `me` owned there and
/// no longer has; change nothing when another plan owns one of them.
pub fn claim(files: &[ClaimFile], me: &Claimant, machines: &[Machine]) -> Result<(), ProviderError> {
    // Locks in one order, so that two claimants never wait for each other.
    let mut order: Vec<&ClaimFile> = files.iter().collect();
    order.sort_by(|a, b| a.path.cmp(&b.path));
    order.dedup_by(|a, b| a.path == b.path);
    let mut held = Vec::new();
    let mut registries = Vec::new();
    for file in &order {
        held.push(file.lock(true)?);
        registries.push(file.read()?);
    }
    let taken = conflicts(&registries, me, machines);
    if !taken.is_empty() {
        return Err(refusal(&taken));
    }
    let now = SystemTime::now();
    let mine: std::collections::HashSet<&str> = machines.iter().map(|m| m.id).collect();
    for (file, mut registry) in order.into_iter().zip(registries) {
        let before = serde_json::to_value(&registry.machines).ok();
        registry.format = FORMAT;
        registry
            .machines
            .retain(|id, entry| (!entry.owner.same_owner(me) && !is_stale(&entry.owner)) || mine.contains(id.as_str()));
        for m in machines {
            let since = registry.machines.get(m.id).filter(|e| e.owner.same_owner(me)).map_or(now, |e| e.since);
            registry.machines.insert(m.id.to_string(), Entry { owner: me.clone(), since });
        }
        if serde_json::to_value(&registry.machines).ok() != before {
            file.write(&registry)?;
        }
    }
    Ok(())
}

fn conflicts(registries: &[Registry], me: &Claimant, machines: &[Machine]) -> Vec<ForeignClaim> {
    let mut taken: Vec<ForeignClaim> = Vec::new();
    for m in machines {
        let owner = registries
            .iter()
            .filter_map(|r| r.machines.get(m.id))
            .find(|e| !e.owner.same_owner(me) && !is_stale(&e.owner));
        if let Some(entry) = owner {
            taken.push(ForeignClaim { machine: m.name.to_string(), owner: entry.owner.clone(), since: entry.since });
        }
    }
    taken
}

/// A claim whose state was deleted on this host (a removed checkout): nobody manages the
/// machine through it any more.
fn is_stale(owner: &Claimant) -> bool {
    let path = Path::new(&owner.state);
    owner.host == crate::os::host_name() && path.is_absolute() && !path.exists()
}

fn refusal(taken: &[ForeignClaim]) -> ProviderError {
    const LISTED: usize = 5;
    let mut lines: Vec<String> =
        taken.iter().take(LISTED).map(|c| format!("machine `{}` is managed by {}", c.machine, c.owner)).collect();
    if taken.len() > LISTED {
        lines.push(format!("and {} more", taken.len() - LISTED));
    }
    ProviderError::setup(
        lines.join("; "),
        "one plan manages a machine at a time: remove the machine from one of the plans (applying that plan \
         lets it go), or delete the other plan's state if it is gone for good",
    )
}
