//! The QEMU lab's guest: Debian's cloud kernel and a busybox initramfs whose init writes
//! lab records. Built from Debian's own packages (`apt-get download`, unpacked with
//! `dpkg-deb -x`: nothing is installed) and kept in a cache, so a second lab is made offline.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::cpio::Archive;

/// The guest's init script.
const INIT: &str = include_str!("init.sh");

/// The kernel modules the guest loads, in load order: virtio disks, NICs and serial ports (the
/// agent's channel), and the power button (ACPI power-down) with the event device the init
/// watches.
const MODULES: [&str; 12] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "virtio_blk",
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_console",
    "button",
    "evdev",
];

/// A built guest: its kernel and initramfs.
#[derive(Debug, Clone)]
pub struct Guest {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The Debian package the kernel came from.
    pub kernel_package: String,
}

/// Where built guests are kept: `DRPLAN_CACHE_DIR`, else `~/.cache/drplan`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DRPLAN_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    match std::env::var_os("XDG_CACHE_HOME")
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache").into()))
    {
        Some(base) => PathBuf::from(base).join("drplan"),
        None => std::env::temp_dir().join("drplan-cache"),
    }
}

/// The guest, from the cache or built now.
pub fn guest(progress: &dyn Fn(&str)) -> Result<Guest, String> {
    let kernel_package = current_kernel_package()?;
    // The init and the module list are part of the key: a changed guest is built anew.
    let recipe = blake3::hash(format!("{INIT}{MODULES:?}").as_bytes()).to_hex();
    let dir = cache_dir().join("qemu-guest").join(format!("{kernel_package}-{}", &recipe[..12]));
    let built = Guest { kernel: dir.join("vmlinuz"), initrd: dir.join("initrd.img"), kernel_package };
    if built.kernel.is_file() && built.initrd.is_file() {
        return Ok(built);
    }
    progress(&format!(
        "Building the lab guest from Debian's {} and busybox-static (once; cached in {})",
        built.kernel_package,
        dir.display()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let work = Scratch(dir.join(format!(".build-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(work.path());
    let debs = work.path().join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| format!("cannot create {}: {e}", debs.display()))?;
    run(Command::new("apt-get").args(["download", "-q", &built.kernel_package, "busybox-static"]).current_dir(&debs))
        .map_err(|e| format!("{e} (is the machine online, and has `apt-get update` run?)"))?;
    let root = work.path().join("root");
    for deb in std::fs::read_dir(&debs).map_err(|e| e.to_string())? {
        let deb = deb.map_err(|e| e.to_string())?.path();
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    }
    let kernel = find(&root.join("boot"), |name| name.starts_with("vmlinuz-"))
        .ok_or_else(|| format!("{} has no kernel in /boot", built.kernel_package))?;
    let busybox = root.join("bin/busybox");
    let initramfs = initramfs(&root, &busybox)?;
    // Kernel and initramfs are renamed into place last: a cache entry is whole or absent.
    let kernel_tmp = work.path().join("vmlinuz");
    std::fs::copy(&kernel, &kernel_tmp).map_err(|e| format!("cannot copy {}: {e}", kernel.display()))?;
    let initrd_tmp = work.path().join("initrd.img");
    std::fs::write(&initrd_tmp, initramfs).map_err(|e| e.to_string())?;
    std::fs::rename(&initrd_tmp, &built.initrd).map_err(|e| e.to_string())?;
    std::fs::rename(&kernel_tmp, &built.kernel).map_err(|e| e.to_string())?;
    Ok(built)
}

/// The package of the newest Debian cloud kernel apt knows (what `linux-image-cloud-amd64`
/// depends on).
fn current_kernel_package() -> Result<String, String> {
    let output = Command::new("apt-cache")
        .args(["depends", "linux-image-cloud-amd64"])
        .output()
        .map_err(|e| format!("cannot run apt-cache (the QEMU lab builds its guest from Debian's packages): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_string)
        .ok_or_else(|| "apt knows no linux-image-cloud-amd64 package: run `apt-get update` first".to_string())
}

/// The initramfs: busybox, the init, the modules (flat, with their load order), a console.
fn initramfs(root: &Path, busybox: &Path) -> Result<Vec<u8>, String> {
    let mut archive = Archive::new();
    for dir in ["bin", "dev", "lib", "lib/modules", "proc", "sys", "run"] {
        archive.dir(dir);
    }
    archive.char_device("dev/console", 0o600, 5, 1);
    archive.file("init", 0o755, INIT.as_bytes());
    let bytes = std::fs::read(busybox).map_err(|e| format!("busybox-static has no {}: {e}", busybox.display()))?;
    archive.file("bin/busybox", 0o755, &bytes);
    let modules_root = root.join("lib/modules");
    let mut order = Vec::new();
    for module in MODULES {
        let file = format!("{module}.ko");
        // Built into this kernel when there is no module file.
        if let Some(path) = find_recursive(&modules_root, &file) {
            let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            archive.file(&format!("lib/modules/{file}"), 0o644, &bytes);
            order.push(module);
        }
    }
    archive.file("lib/modules/order", 0o644, format!("{}\n", order.join("\n")).as_bytes());
    Ok(archive.finish())
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed: {}", command.get_program(), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

fn find(dir: &Path, matches: impl Fn(&str) -> bool) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&matches))
}

fn find_recursive(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if entry.file_type().ok()?.is_dir() {
            if let Some(found) = find_recursive(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}

/// A build folder, removed when the build ends (built or not).
struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
