//! A two-site lab on this machine for the quickstart: machines whose program keeps writing
//! sequence-numbered records to their data disk, so that "nothing was lost" can be proved
//! by reading the disks after every failover and failback.
//!
//! The machines write the lab's record format (`super::records`), the time in unix ms.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::records::{self, RECORD};
use crate::providers::local::{layout, process, records as site_records};
use crate::spec::schema::SCHEMA_FILE;

pub const DATA_DISK: &str = "data.img";

/// The lab's machines: name, group, address.
pub const MACHINES: [(&str, &str, &str); 3] =
    [("db1", "data", "10.10.0.11"), ("app1", "app", "10.10.0.21"), ("web1", "web", "10.10.0.31")];

pub struct LabOptions {
    /// Size of each disk image.
    pub disk_bytes: u64,
    /// The drplan binary the machines' `run` scripts call.
    pub drplan: PathBuf,
}

fn write_executable(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// Write the lab: `lab.yaml`, site `dc1` with three machines (two disks each), empty `dc2`.
pub fn init(dir: &Path, options: &LabOptions) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("dc2"))?;
    std::fs::create_dir_all(dir.join("scripts"))?;
    for (i, (name, _, _)) in MACHINES.iter().enumerate() {
        let machine = dir.join("dc1").join(name);
        std::fs::create_dir_all(machine.join("disks"))?;
        // An "OS" disk with real content, so replication has bytes to move.
        let os = File::create(machine.join("disks/os.img"))?;
        os.set_len(options.disk_bytes)?;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1);
        let mut chunk = vec![0u8; 1 << 20];
        let filled = options.disk_bytes / 4;
        let mut offset = 0;
        while offset < filled {
            for b in chunk.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let len = (filled - offset).min(chunk.len() as u64) as usize;
            os.write_all_at(&chunk[..len], offset)?;
            offset += len as u64;
        }
        let data = File::create(machine.join("disks").join(DATA_DISK))?;
        data.set_len(options.disk_bytes)?;
        write_executable(
            &machine.join("run"),
            &format!(
                "#!/bin/sh\n# Runs the lab machine: writes a numbered record to disks/{DATA_DISK} every 10 ms.\nexec \"{}\" lab machine\n",
                options.drplan.display()
            ),
        )?;
        write_executable(
            &machine.join("quiesce"),
            "#!/bin/sh\n# Flush writes so the recovery point is app-consistent.\nsync\n",
        )?;
    }
    write_executable(
        &dir.join("scripts/smoke.sh"),
        "#!/bin/sh\n# A post-boot check: every machine of the group answers (its console log grows).\necho \"smoke test of group $DRPLAN_GROUP at $DRPLAN_SITE: $DRPLAN_MACHINES ($DRPLAN_IPS)\"\n",
    )?;
    let plan = dir.join("lab.yaml");
    std::fs::write(&plan, plan_text())?;
    // The plan's `$schema` line points here: editors complete and check it offline.
    std::fs::write(dir.join(SCHEMA_FILE), crate::spec::schema::plan_schema_json())?;
    Ok(plan)
}

fn plan_text() -> String {
    let machines: String = MACHINES
        .iter()
        .map(|(name, _, ip)| {
            format!("  - name: {name}\n    nics: [ {{ network: lab-net, ip: {ip} }} ]\n    boot_timeout: 30s\n")
        })
        .collect();
    let common = crate::lab::PLAN_PROTECTION;
    format!(
        r#"# yaml-language-server: $schema={SCHEMA_FILE}
# A two-site lab on this machine, made by `drplan lab init`.
version: 1
name: lab
description: Three machines that keep writing numbered records to their data disks
sites:
  dc1: {{ provider: local, path: dc1 }}
  dc2: {{ provider: local, path: dc2 }}
{common}machines:
{machines}groups:
  - name: data
    machines: [db1]
  - name: app
    machines: [app1]
    after:
      - script: {{ name: smoke, run: [scripts/smoke.sh], timeout: 30s }}
  - name: web
    machines: [web1]
target:
  active: dc1
"#
    )
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The machine program: append records until SIGTERM (finishing the record in hand).
pub fn run_machine(dir: &Path) -> std::io::Result<()> {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_term as *const () as libc::sighandler_t);
    }
    let machine = std::env::var("DRPLAN_MACHINE").unwrap_or_else(|_| "machine".into());
    let site = std::env::var("DRPLAN_SITE").unwrap_or_else(|_| "site".into());
    let disk = OpenOptions::new().read(true).write(true).open(dir.join("disks").join(DATA_DISK))?;
    let capacity = disk.metadata()?.len() / RECORD - 1;
    let mut n = records::read_header(&disk)?;
    while !STOP.load(Ordering::SeqCst) {
        if n < capacity {
            n += 1;
            let ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            disk.write_all_at(&records::record(n, &machine, &site, &ms.to_string()), n * RECORD)?;
            disk.write_all_at(&records::header(n), 0)?;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    disk.sync_all()
}

/// The data disk of a machine's live copy, wherever that is.
pub fn data_disk(site_dir: &Path, machine: &str) -> PathBuf {
    site_dir.join(machine).join("disks").join(DATA_DISK)
}

/// Stop the running programs of every lab machine recorded at `sites` under `dir`, as a
/// shutdown would: SIGTERM, then SIGKILL after a grace period.
pub fn stop_all(dir: &Path, sites: &[&str]) {
    for site in sites {
        let layout = layout::SiteLayout { name: site.to_string(), root: dir.join(site) };
        for (machine, _, _) in MACHINES {
            let record = site_records::load::<site_records::MachineRecord>(&layout.record_path(machine));
            if let Ok(Some(record)) = record
                && let Some(process) = &record.process
            {
                let _ = process::stop(process, Duration::from_secs(5));
            }
        }
    }
}
