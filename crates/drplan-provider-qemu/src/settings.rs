//! A machine copy's settings as inventory reports them: its hardware and the files that go
//! with it. drplan compares them between the original and the live copy before a failback,
//! so a review shows what was changed at the recovery site (more memory, a new kernel).

use std::path::Path;

use drplan_protocol::SmallMap;

use crate::errors::Answer;
use crate::vm::Hardware;

/// The settings of the copy in `folder`, whose `machine.json` read as `hardware`.
pub fn settings_of(folder: &Path, hardware: &Answer<Hardware>) -> SmallMap<String, String> {
    let mut out = SmallMap::new();
    let hardware = match hardware {
        Ok(hardware) => hardware,
        Err(e) => {
            out.insert("machine.json".into(), format!("unreadable: {}", e.message));
            return out;
        }
    };
    out.insert("memory_mib".into(), hardware.memory_mib.to_string());
    out.insert("cpus".into(), hardware.cpus.to_string());
    let optional = [
        ("append", Some(hardware.append.clone()).filter(|a| !a.is_empty())),
        ("boot_disk", hardware.boot_disk.clone()),
        ("ready_line", hardware.ready_line.clone()),
        ("agent", hardware.agent.then(|| "on".to_string())),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            out.insert(key.into(), value);
        }
    }
    for name in hardware.travelling_files(folder).into_iter().filter(|n| n != "machine.json") {
        out.insert(format!("file {name}"), file_summary(&folder.join(&name)));
    }
    out
}

/// Size and content hash of a file, and whether it is executable.
fn file_summary(path: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else { return "missing".into() };
    let hash = std::fs::File::open(path)
        .and_then(|f| blake3::Hasher::new().update_reader(f).map(|h| h.finalize().to_hex()[..12].to_string()));
    let hash = hash.unwrap_or_else(|e| format!("unreadable ({e})"));
    let mode = if meta.permissions().mode() & 0o111 != 0 { ", executable" } else { "" };
    format!("{} bytes, blake3 {hash}{mode}", meta.len())
}
