//! Labs on this machine for the quickstart and the demos: machines that keep writing
//! numbered, checksummed records (`records`), so "nothing was lost" is proved by reading their
//! disks after every move. `local`: programs on disk images; `qemu`: real VMs booting a small
//! Debian guest.

pub mod demo;
pub mod local;
pub mod qemu;
pub mod records;

/// What every lab plan protects and maps alike: dc1 → dc2, the lab's objectives, and the
/// production, recovery and drill networks.
pub(crate) const PLAN_PROTECTION: &str = "protection:
  primary: dc1
  recovery: dc2
  rpo: 1m
  rto: 10m
  keep_points: 6
networks:
  - source: lab-net
    target: lab-dr
    test: lab-drill
    addresses: retain
";
