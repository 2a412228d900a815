//! What changed at the live copy while it ran away from home: settings, disks, NICs, as a
//! reviewable unified diff.

use similar::TextDiff;

use crate::contract::MachineCopy;
use crate::spec::time_format::human_bytes;

fn describe(copy: &MachineCopy) -> String {
    let mut out = String::from("settings:\n");
    for (key, value) in &copy.settings {
        out.push_str(&format!("  {key}: {value}\n"));
    }
    out.push_str("disks:\n");
    for disk in &copy.disks {
        out.push_str(&format!("  {}: {}\n", disk.name, human_bytes(disk.size_bytes)));
    }
    out.push_str("nics:\n");
    for nic in &copy.nics {
        let ip = nic.ip.map_or_else(|| "dhcp".to_string(), |ip| ip.to_string());
        out.push_str(&format!("  {} {ip}\n", nic.network));
    }
    out
}

/// A unified diff of the original copy (at `home`) against the live one; empty when equal.
/// NICs differ by design after a failover (recovery networks), so only settings and disks
/// count as drift; NICs are shown for context.
pub fn drift_text(
    machine: &str,
    home: &str,
    original: Option<&MachineCopy>,
    live_site: &str,
    live: &MachineCopy,
) -> String {
    let drifted = match original {
        Some(o) => o.settings != live.settings || o.disks != live.disks,
        None => true,
    };
    if !drifted {
        return String::new();
    }
    let before = original.map(describe).unwrap_or_default();
    let after = describe(live);
    TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{machine}@{home} (original)"), &format!("{machine}@{live_site} (live)"))
        .to_string()
}
