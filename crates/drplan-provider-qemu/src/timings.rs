//! How long a machine's boots and power-downs took at a site, measured when they happen: the
//! provider's estimates come from them (a guest's boot under TCG, or one that honours ACPI
//! power-down within a second, is nothing like a default).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::copy::write_replacing;
use crate::errors::{Answer, failed};

/// `timings.json` in a copy's folder (it stays with the site: it is not replicated).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Timings {
    /// From the start of QEMU to the guest's ready line (or QEMU running, without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_ms: Option<u64>,
    /// An ACPI power-down until QEMU was gone (with the hard stop, when it came to that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_ms: Option<u64>,
}

const FILE: &str = "timings.json";

impl Timings {
    /// None measured yet, or a file nobody can read: no measurements.
    pub fn read(dir: &Path) -> Timings {
        std::fs::read(dir.join(FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    pub fn boot(dir: &Path, took: Duration) -> Answer<()> {
        Self::update(dir, |t| t.boot_ms = Some(millis(took)))
    }

    pub fn shutdown(dir: &Path, took: Duration) -> Answer<()> {
        Self::update(dir, |t| t.shutdown_ms = Some(millis(took)))
    }

    fn update(dir: &Path, change: impl FnOnce(&mut Timings)) -> Answer<()> {
        let mut timings = Self::read(dir);
        change(&mut timings);
        let bytes = serde_json::to_vec_pretty(&timings).map_err(|e| failed(e.to_string()))?;
        write_replacing(&dir.join(FILE), &bytes)
    }

    /// The slower of two sites' measurements, for each kind.
    pub fn slower(self, other: Timings) -> Timings {
        Timings { boot_ms: self.boot_ms.max(other.boot_ms), shutdown_ms: self.shutdown_ms.max(other.shutdown_ms) }
    }
}

fn millis(took: Duration) -> u64 {
    u64::try_from(took.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_are_kept_per_kind_and_the_slower_site_wins() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Timings::read(dir.path()).boot_ms.is_none());
        Timings::boot(dir.path(), Duration::from_millis(4_800)).unwrap();
        Timings::shutdown(dir.path(), Duration::from_millis(350)).unwrap();
        Timings::boot(dir.path(), Duration::from_millis(4_300)).unwrap();
        let here = Timings::read(dir.path());
        assert_eq!((here.boot_ms, here.shutdown_ms), (Some(4_300), Some(350)));
        let there = Timings { boot_ms: Some(6_000), shutdown_ms: None };
        let both = here.slower(there);
        assert_eq!((both.boot_ms, both.shutdown_ms), (Some(6_000), Some(350)));
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        assert!(Timings::read(dir.path()).boot_ms.is_none());
    }
}
