//! Labs on this machine for the quickstart and the demos: machines that keep writing
//! numbered, checksummed records (`records`), so "nothing was lost" is proved by reading their
//! disks after every move. `local`: programs on disk images; `qemu`: real VMs booting a small
//! Debian guest.

pub mod demo;
pub mod local;
pub mod qemu;
pub mod records;
