//! The operating system, handled with care: files opened without following links, created
//! with explicit modes whatever the umask, and process identities that survive pid reuse.
//! Every layer that touches files or processes goes through here.

pub mod fs;
pub mod process;
