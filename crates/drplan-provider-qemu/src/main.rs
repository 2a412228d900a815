//! `drplan-provider-qemu`: drplan's provider for QEMU/KVM virtual machines, a plugin speaking
//! the public provider protocol on stdin and stdout.
//!
//! A site is a directory; a machine is a folder in it named by the machine's `id`, holding
//! its qcow2 disks, `machine.json` (memory, CPUs, kernel and initrd) and the provider's
//! records. VMs run as daemonized `qemu-system-x86_64` processes controlled through QMP, so
//! they keep running between drplan commands. See `README.md` in this crate's folder.

mod copy;
mod errors;
mod estate;
mod hooks;
mod img;
mod kit;
mod kvm;
mod ops;
mod qmp;
mod settings;
mod timings;
mod transfer;
mod vm;

#[tokio::main]
async fn main() {
    drplan_plugin::serve_stdio(estate::Estate::default()).await;
}
