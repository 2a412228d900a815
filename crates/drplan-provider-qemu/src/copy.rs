//! A machine's copy at one site: a folder of qcow2 disks (`NAME.qcow2` the head, `NAME@pN`
//! recovery points, `NAME@drill-D` drill copies), `machine.json`, and `copy.json` (what the
//! copy is: live, replica or stale, its points, drills and replication records).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use drplan_protocol::NicAssignment;
use drplan_protocol::time as time_format;
use serde::{Deserialize, Serialize};

use crate::errors::{Answer, failed_hint, io};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The machine itself (it runs here, or may).
    Live,
    /// A replica, written only by replication from `from`.
    Replica,
    /// The old copy a failover left behind.
    Stale,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub id: u64,
    /// The instant the point's data is from (when its backup jobs started).
    #[serde(with = "time_format")]
    pub time: SystemTime,
    /// The guest was frozen by the machine's `freeze` program at that instant.
    #[serde(default)]
    pub app_consistent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Drill {
    pub point: u64,
    #[serde(default)]
    pub nics: Vec<NicAssignment>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastSync {
    /// The source was off: nothing was written after this sync.
    pub final_sync: bool,
    #[serde(with = "time_format")]
    pub time: SystemTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyState {
    pub role: Role,
    /// Which live copy is newest when two claim to be (a dark site came back).
    #[serde(default)]
    pub generation: u64,
    #[serde(default)]
    pub nics: Vec<NicAssignment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default)]
    pub protected: bool,
    #[serde(default = "yes")]
    pub consistent: bool,
    #[serde(default)]
    pub points: Vec<Point>,
    #[serde(default)]
    pub drills: BTreeMap<String, Drill>,
    #[serde(default)]
    pub commit_pending: bool,
    #[serde(default, with = "time_format::opt_time", skip_serializing_if = "Option::is_none")]
    pub failed_over_at: Option<SystemTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_over_from: Option<String>,
    /// The point a failover used (`None`: the final sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<LastSync>,
    #[serde(default)]
    pub source_generation: u64,
    /// Replication records, per disk: the generation of the source's dirty bitmap
    /// (`drplan.SITE.G` on the source's disk) that has tracked every write since this copy's
    /// data last equalled the source's. Absent: the next transfer compares or copies whole.
    #[serde(default)]
    pub bitmaps: BTreeMap<String, u64>,
    /// Where the running VM's boot began in its console log: a start asked again while the
    /// VM runs waits for the ready line from there (the first wait may have timed out, or
    /// drplan may have crashed during it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mark: Option<u64>,
}

fn yes() -> bool {
    true
}

impl CopyState {
    pub fn new(role: Role) -> CopyState {
        CopyState {
            role,
            generation: 0,
            nics: Vec::new(),
            from: None,
            protected: false,
            consistent: true,
            points: Vec::new(),
            drills: BTreeMap::new(),
            commit_pending: false,
            failed_over_at: None,
            failed_over_from: None,
            point: None,
            last_sync: None,
            source_generation: 0,
            bitmaps: BTreeMap::new(),
            boot_mark: None,
        }
    }

    pub fn replica_of(from: &str, source_generation: u64) -> CopyState {
        CopyState { from: Some(from.into()), source_generation, ..CopyState::new(Role::Replica) }
    }
}

pub struct Copy {
    pub site: String,
    pub dir: PathBuf,
    pub state: Option<CopyState>,
}

impl Copy {
    pub fn read(site: &str, dir: PathBuf) -> Answer<Copy> {
        let path = dir.join("copy.json");
        let mut state = match std::fs::read(&path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                failed_hint(format!("{} is damaged: {e}", path.display()), "restore it, or remove the copy")
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("cannot read", &path, e)),
        };
        let copy = Copy { site: site.into(), dir, state: None };
        if state.is_none() && !copy.disks()?.is_empty() {
            // Disks put here by hand: the machine itself, not protected yet.
            state = Some(CopyState::new(Role::Live));
        }
        Ok(Copy { state, ..copy })
    }

    pub fn exists(&self) -> bool {
        self.state.is_some()
    }

    pub fn state(&self) -> &CopyState {
        self.state.as_ref().expect("a copy that exists has a state")
    }

    pub fn state_mut(&mut self) -> &mut CopyState {
        self.state.get_or_insert_with(|| CopyState::new(Role::Replica))
    }

    pub fn role(&self) -> Option<Role> {
        self.state.as_ref().map(|s| s.role)
    }

    /// Written whole to a temporary file, then renamed over the old one: never half-written.
    pub fn save(&self) -> Answer<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io("cannot create", &self.dir, e))?;
        let bytes = serde_json::to_vec_pretty(self.state()).map_err(|e| failed_hint(e.to_string(), ""))?;
        write_replacing(&self.dir.join("copy.json"), &bytes)
    }

    /// The disk names (heads), sorted.
    pub fn disks(&self) -> Answer<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("cannot list", &self.dir, e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter_map(|n| n.strip_suffix(".qcow2").map(str::to_string))
            .filter(|n| !n.contains('@') && !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The head image of `disk`, or one of its variants (`@p3`, `@drill-d1`, `@incoming`).
    pub fn disk(&self, disk: &str, variant: &str) -> PathBuf {
        self.dir.join(format!("{disk}{variant}.qcow2"))
    }

    pub fn heads(&self) -> Answer<Vec<(String, PathBuf)>> {
        Ok(self.disks()?.into_iter().map(|d| (d.clone(), self.disk(&d, ""))).collect())
    }

    pub fn point(&self, id: u64) -> Answer<&Point> {
        self.state().points.iter().find(|p| p.id == id).ok_or_else(|| {
            failed_hint(format!("recovery point {id} does not exist at `{}`", self.site), "inventory lists the points")
        })
    }

    pub fn newest_point(&self) -> Option<u64> {
        self.state.as_ref().and_then(|s| s.points.last()).map(|p| p.id)
    }
}

/// Replace the file at `path` whole: written to a hidden temporary file beside it, synced,
/// then renamed over it, so a crash leaves the old content or the new, never half.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> Answer<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    write_synced(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| io("cannot replace", path, e))
}

/// Copy `source` over `target` (permissions included) unless their contents are already the
/// same, through a temporary file beside it renamed over it.
pub fn copy_when_different(source: &Path, target: &Path) -> Answer<()> {
    let same = std::fs::read(target).ok().zip(std::fs::read(source).ok()).is_some_and(|(a, b)| a == b);
    if same {
        return Ok(());
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("cannot create", parent, e))?;
    }
    let tmp = target.with_extension("incoming");
    std::fs::copy(source, &tmp).map_err(|e| io("cannot copy", source, e))?;
    std::fs::rename(&tmp, target).map_err(|e| io("cannot replace", target, e))
}

pub fn write_synced(path: &Path, bytes: &[u8]) -> Answer<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| io("cannot create", path, e))?;
    file.write_all(bytes).and_then(|_| file.sync_all()).map_err(|e| io("cannot write", path, e))
}
