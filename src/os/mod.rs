//! The operating system, handled with care: files opened without following links, created
//! with explicit modes whatever the umask, and process identities that survive pid reuse.
//! Every layer that touches files or processes goes through here.

pub mod fs;
pub mod process;

/// This machine's name, for messages and records of who did what.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}
