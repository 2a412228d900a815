//! The conformance kit's hands on a test estate: sites `dc1`..`dc3` in a scratch folder,
//! machines `m1`..`mN` running at `dc1` as real VMs (firmware only: no guest OS is needed to
//! write to their disks, which the kit does through QEMU's own `qemu-io`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use crate::errors::{Answer, failed, io};
use crate::estate::Config;
use crate::qmp::Qmp;
use crate::vm::{Hardware, Instance};

static WRITES: AtomicU64 = AtomicU64::new(0);

pub async fn create(machines: usize) -> Answer<Config> {
    let scratch = std::env::temp_dir().join(format!("drplan-qemu-kit-{}-{}", std::process::id(), unique()));
    let mut config = Config { scratch: Some(scratch.clone()), ..Config::default() };
    // Each kit its own networks: kits of parallel tests must not see each other's VMs.
    config.qemu.network_scope = scratch.display().to_string();
    for site in ["dc1", "dc2", "dc3"] {
        let path = scratch.join(site);
        std::fs::create_dir_all(&path).map_err(|e| io("cannot create", &path, e))?;
        config.sites.insert(site.into(), path);
    }
    for i in 1..=machines {
        let name = format!("m{i}");
        config.machines.insert(name.clone(), name.clone());
        let folder = config.sites["dc1"].join(&name);
        std::fs::create_dir_all(&folder).map_err(|e| io("cannot create", &folder, e))?;
        let hardware = Hardware { memory_mib: 64, ..Hardware::default() };
        let text = serde_json::to_vec_pretty(&hardware).map_err(|e| failed(e.to_string()))?;
        crate::copy::write_synced(&folder.join("machine.json"), &text)?;
        let mut disks = Vec::new();
        for disk in ["os", "data"] {
            let image = folder.join(format!("{disk}.qcow2"));
            config.img.create(&image, 16 << 20).await?;
            disks.push((disk.to_string(), image));
        }
        let vm = Instance::vm(&folder, format!("{name}@dc1"));
        vm.start(&config.qemu, &hardware, &disks, &[]).await?;
        write(&config, &name).await?;
    }
    Ok(config)
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// The guest writes: a new pattern at a new place of each disk of the live copy.
pub async fn write(config: &Config, machine: &str) -> Answer<()> {
    let site = config.active(machine)?.ok_or_else(|| failed(format!("`{machine}` has no live copy")))?;
    let copy = config.copy(machine, &site)?;
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    let mut running = Qmp::connect(&Instance::vm(&copy.dir, String::new()).socket()).await;
    for (disk, image) in copy.heads()? {
        let size = config.img.size(&image).await?;
        let offset = (n * 3 * 65536) % (size - 65536);
        let command = format!("write -q -P {} {offset} 64k", n % 250 + 1);
        match running.as_mut() {
            Some(qmp) => {
                let line = format!("qemu-io d-{disk} \"{command}\"");
                // The monitor answers errors as text, not as a QMP error.
                let said = qmp.execute("human-monitor-command", json!({ "command-line": line })).await?;
                if let Some(text) = said.as_str().filter(|t| !t.trim().is_empty()) {
                    return Err(failed(format!("qemu-io on the running {machine}: {}", text.trim())));
                }
            }
            None => {
                let output = tokio::process::Command::new("qemu-io")
                    .args(["-f", "qcow2", "-c", &command])
                    .arg(&image)
                    .output()
                    .await
                    .map_err(|e| failed(format!("qemu-io: {e}")))?;
                if !output.status.success() {
                    return Err(failed(format!("qemu-io: {}", String::from_utf8_lossy(&output.stderr))));
                }
            }
        }
    }
    Ok(())
}

pub fn set_reachable(config: &Config, site: &str, reachable: bool) -> Answer<()> {
    let path = config.sites.get(site).ok_or_else(|| failed(format!("no site `{site}`")))?;
    let dark = dark(path);
    let result = match reachable {
        true if dark.is_dir() => std::fs::rename(&dark, path),
        false if path.is_dir() => std::fs::rename(path, &dark),
        _ => Ok(()),
    };
    result.map_err(|e| io("cannot rename", path, e))
}

fn dark(path: &std::path::Path) -> PathBuf {
    path.with_extension("dark")
}

/// A digest of what the guest sees on each disk of the copy at `site`.
pub async fn content(config: &Config, machine: &str, site: &str) -> Answer<String> {
    let copy = config.copy(machine, site)?;
    if let Some(mut qmp) = Qmp::connect(&Instance::vm(&copy.dir, String::new()).socket()).await {
        // A running VM's caches reach its image files before they are read.
        for disk in copy.disks()? {
            let line = format!("qemu-io d-{disk} flush");
            let said = qmp.execute("human-monitor-command", json!({ "command-line": line })).await?;
            if let Some(text) = said.as_str().filter(|t| !t.trim().is_empty()) {
                return Err(failed(format!("flush of the running {machine}: {}", text.trim())));
            }
        }
    }
    let mut digest = blake3::Hasher::new();
    for (disk, image) in copy.heads()? {
        let raw = copy.dir.join(format!(".{disk}.raw"));
        config.img.run(&["convert", "-U", "-O", "raw", &image.to_string_lossy(), &raw.to_string_lossy()], &[0]).await?;
        let bytes = std::fs::read(&raw).map_err(|e| io("cannot read", &raw, e))?;
        let _ = std::fs::remove_file(&raw);
        digest.update(disk.as_bytes());
        digest.update(&[0]);
        digest.update(&bytes);
    }
    Ok(digest.finalize().to_hex().to_string())
}

/// Stop the kit's VMs and remove its folder.
pub async fn close(config: &Config) {
    let Some(scratch) = &config.scratch else { return };
    for site in config.sites.keys() {
        let _ = set_reachable(config, site, true);
    }
    for path in config.sites.values() {
        let Ok(machines) = std::fs::read_dir(path) else { continue };
        for folder in machines.filter_map(|e| e.ok()).map(|e| e.path()) {
            let Ok(files) = std::fs::read_dir(&folder) else { continue };
            for file in files.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()) {
                if let Some(instance) = file.strip_suffix(".qmp") {
                    Instance { folder: folder.clone(), instance: instance.into(), label: String::new() }.quit().await;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(scratch);
}
