//! What the lab guests say on their serial consoles (`*.console.log` beside their disks):
//! their NICs, who answers for their peers' addresses, whether someone else holds theirs.
//! A drill's isolation is proved from these lines.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One boot's network view, from the last boot in a console log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetView {
    /// (MAC, address) of each NIC.
    pub nics: Vec<(String, String)>,
    /// (peer address, MAC that answers or `none`), latest per peer.
    pub peers: Vec<(String, String)>,
    /// Our address answered by another host (duplicate address detection).
    pub conflicts: Vec<String>,
    pub writing: bool,
}

/// The view of the last boot in `log`.
pub fn read(log: &Path) -> NetView {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut view = NetView::default();
    for line in text.lines() {
        let Some(said) = line.strip_prefix("drplan-guest: ") else { continue };
        let words: Vec<&str> = said.split_whitespace().collect();
        match words.as_slice() {
            [nic, mac, ip, rest @ ..] if nic.starts_with("eth") && mac.contains(':') => {
                if *nic == "eth0" {
                    view = NetView::default(); // a new boot
                }
                view.nics.push((mac.to_string(), ip.to_string()));
                if rest.starts_with(&["in", "use"]) {
                    view.conflicts.push(ip.to_string());
                }
            }
            ["peer", ip, "at", mac] => {
                view.peers.retain(|(p, _)| p != ip);
                view.peers.push((ip.to_string(), mac.to_string()));
            }
            [_, "at", _, "writing", ..] => view.writing = true,
            _ => {}
        }
    }
    view
}

/// The console logs of drill copies in a machine's folder.
fn drill_logs(folder: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("drill-") && n.ends_with(".console.log"))
        })
        .collect();
    logs.sort();
    logs
}

/// Wait until the drill copies at `drill_site` are up and see each other, then check that
/// none of them reaches a production VM at `production_site` (same addresses, other MACs) and
/// that no address is claimed twice. Returns what was seen.
pub fn drill_isolated(
    dir: &Path,
    production_site: &str,
    drill_site: &str,
    machines: &[&str],
    timeout: Duration,
) -> Result<String, String> {
    let production: Vec<NetView> =
        machines.iter().map(|m| read(&dir.join(production_site).join(m).join("vm.console.log"))).collect();
    let production_macs: Vec<&str> =
        production.iter().flat_map(|v| v.nics.iter().map(|(mac, _)| mac.as_str())).collect();
    if production_macs.len() < machines.len() {
        return Err(format!("the production VMs at {production_site} did not report their NICs"));
    }
    let began = Instant::now();
    let drills: Vec<NetView> = loop {
        let views: Vec<NetView> = machines
            .iter()
            .map(|m| drill_logs(&dir.join(drill_site).join(m)).last().map(|l| read(l)).unwrap_or_default())
            .collect();
        let others = machines.len() - 1;
        let ready =
            views.iter().all(|v| v.writing && v.peers.iter().filter(|(_, mac)| mac != "none").count() >= others);
        if ready {
            break views;
        }
        if began.elapsed() > timeout {
            return Err(format!("the drill's VMs did not come up and see each other within {timeout:?}: {views:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let drill_macs: Vec<&str> = drills.iter().flat_map(|v| v.nics.iter().map(|(mac, _)| mac.as_str())).collect();
    let mut seen = Vec::new();
    for (machine, view) in machines.iter().zip(&drills) {
        if let Some(ip) = view.conflicts.first() {
            return Err(format!("{machine}'s drill copy found {ip} in use: the drill network is not isolated"));
        }
        for (peer, mac) in &view.peers {
            if production_macs.contains(&mac.as_str()) {
                return Err(format!(
                    "{machine}'s drill copy reached production's {peer} ({mac}): the drill network is not isolated"
                ));
            }
            if mac != "none" && !drill_macs.contains(&mac.as_str()) {
                return Err(format!("{machine}'s drill copy reached {peer} at an unknown {mac}"));
            }
            seen.push(format!("{machine} → {peer} at {mac}"));
        }
    }
    let addresses: Vec<String> = drills.iter().flat_map(|v| v.nics.iter().map(|(_, ip)| ip.clone())).collect();
    Ok(format!(
        "the drill copies hold production's addresses ({}) without conflict and reach only each other ({})",
        addresses.join(", "),
        if seen.is_empty() { "no peers".into() } else { seen.join(", ") }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_boot_counts() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("vm.console.log");
        std::fs::write(
            &log,
            "drplan-guest: eth0 52:54:00:00:00:01 10.0.0.1 in use by another host\n\
             drplan-guest: peer 10.0.0.2 at none\n\
             [    7.1] reboot: Power down\n\
             drplan-guest: eth0 52:54:00:00:00:02 10.0.0.1\n\
             drplan-guest: db1 at dc2 writing records from 5 to /dev/vda\n\
             drplan-guest: peer 10.0.0.2 at none\n\
             drplan-guest: peer 10.0.0.2 at 52:54:00:00:00:03\n",
        )
        .unwrap();
        let view = read(&log);
        assert_eq!(view.nics, vec![("52:54:00:00:00:02".into(), "10.0.0.1".into())]);
        assert_eq!(view.peers, vec![("10.0.0.2".into(), "52:54:00:00:00:03".into())]);
        assert!(view.conflicts.is_empty() && view.writing);
    }
}
