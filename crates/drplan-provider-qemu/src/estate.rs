//! The plugin: the plan's sites and machines (from `open`), the protocol's methods, and
//! where a machine's copies are.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use drplan_plugin::{Call, Plugin};
use drplan_protocol::rpc::{
    self, ClaimParams, ContentParams, CreateEstateParams, ExecuteParams, InitializeResult, MachineParams, OpenParams,
    OpenResult, ReachableParams,
};
use drplan_protocol::*;

use crate::copy::{Copy, Role};
use crate::errors::{Answer, failed_hint, not_found, setup, unreachable};
use crate::hooks::PlanHooks;
use crate::img::QemuImg;
use crate::timings::Timings;
use crate::transfer::Mover;
use crate::vm::{Accel, Hardware, Instance, Qemu};

/// What `open` (or the kit's `test/createEstate`) set up.
#[derive(Debug, Clone)]
pub struct Config {
    pub sites: BTreeMap<String, PathBuf>,
    /// Plan name → folder name (the machine's id).
    pub machines: BTreeMap<String, String>,
    pub keep_points: usize,
    pub img: QemuImg,
    pub qemu: Qemu,
    /// Compare images before a lossless failover.
    pub verify: bool,
    /// The kit's scratch folder (removed at shutdown, with its VMs).
    pub scratch: Option<PathBuf>,
    /// The plan's freeze and thaw programs, by machine.
    pub hooks: BTreeMap<String, PlanHooks>,
}

impl Default for Config {
    fn default() -> Self {
        let accel = std::env::var("DRPLAN_QEMU_ACCEL").ok().and_then(|a| Accel::parse(&a)).unwrap_or(Accel::Auto);
        Config {
            sites: BTreeMap::new(),
            machines: BTreeMap::new(),
            keep_points: 6,
            img: QemuImg { program: "qemu-img".into() },
            qemu: Qemu { program: "qemu-system-x86_64".into(), accel, network_scope: String::new() },
            verify: true,
            scratch: None,
            hooks: BTreeMap::new(),
        }
    }
}

#[derive(Default)]
pub struct Estate {
    config: RwLock<Arc<Config>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Estate {
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_config(&self, config: Config) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    fn machine_lock(&self, machine: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(machine.into()).or_default().clone()
    }
}

pub const SETTINGS_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "qemu_system": { "type": "string", "description": "the qemu-system-x86_64 program (default: found on PATH)" },
    "qemu_img": { "type": "string", "description": "the qemu-img program (default: found on PATH)" },
    "accel": { "enum": ["auto", "kvm", "tcg"], "description": "how guests execute: auto uses KVM when /dev/kvm can be opened and a short probe boot of the machine's kernel runs under it" },
    "verify": { "enum": ["on", "off"], "description": "compare the images before a lossless failover (default on)" },
    "network_scope": { "type": "string", "description": "networks of one name are one network among the sites that give the same scope (default: one scope per host)" }
  }
}"#;

pub fn capabilities() -> Capabilities {
    Capabilities { app_consistent_points: true, ..Capabilities::default() }
}

impl Plugin for Estate {
    fn initialize(&self) -> InitializeResult {
        InitializeResult {
            protocol_version: rpc::PROTOCOL_VERSION.into(),
            name: "drplan-provider-qemu".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: capabilities(),
            settings_schema: serde_json::from_str(SETTINGS_SCHEMA).ok(),
        }
    }

    async fn open(&self, params: OpenParams) -> Answer<OpenResult> {
        let plan = params.plan;
        let mut config = Config::default();
        for (name, site) in &plan.sites {
            let Some(path) = &site.path else {
                return Err(setup(format!("site `{name}` has no `path`"), "a QEMU site is a directory: give `path:`"));
            };
            config.sites.insert(name.clone(), path.clone());
            if let Some(program) = site.settings.get("qemu_img") {
                config.img.program = program.into();
            }
            if let Some(program) = site.settings.get("qemu_system") {
                config.qemu.program = program.into();
            }
            if let Some(accel) = site.settings.get("accel").and_then(|a| Accel::parse(a)) {
                config.qemu.accel = accel;
            }
            config.verify &= site.settings.get("verify").is_none_or(|v| v != "off");
            if let Some(scope) = site.settings.get("network_scope") {
                config.qemu.network_scope = scope.clone();
            }
        }
        let plan_dir = plan.plan_path.parent().map(Path::to_path_buf).unwrap_or_default();
        for machine in &plan.machines {
            config.machines.insert(machine.name.clone(), safe_name("machine id", &machine.id)?);
            if let Some(hooks) = &machine.consistency {
                let hooks =
                    PlanHooks { hooks: hooks.clone(), plan_dir: plan_dir.clone(), machine: machine.name.clone() };
                config.hooks.insert(machine.name.clone(), hooks);
            }
        }
        config.keep_points = plan.keep_points.max(1) as usize;
        self.set_config(config);
        Ok(OpenResult { capabilities: Some(capabilities()) })
    }

    async fn inventory(&self) -> Answer<Inventory> {
        let config = self.config();
        let mut machines = BTreeMap::new();
        for machine in config.machines.keys() {
            machines.insert(machine.clone(), config.machine_inventory(machine).await?);
        }
        Ok(Inventory { taken_at: SystemTime::now(), sites: config.site_states(), machines })
    }

    async fn sites(&self) -> Answer<BTreeMap<String, SiteInventory>> {
        Ok(self.config().site_states())
    }

    async fn estimates(&self, machines: Vec<String>) -> Answer<rpc::Estimates> {
        let config = self.config();
        let names = if machines.is_empty() { config.machines.keys().cloned().collect() } else { machines };
        let mut out = BTreeMap::new();
        for machine in names {
            let (mut size, mut measured) = (0, Timings::default());
            for copy in config.copies(&machine)? {
                let mut sum = 0;
                for (_, image) in copy.heads()? {
                    sum += config.img.size(&image).await.unwrap_or(0);
                }
                size = size.max(sum);
                measured = measured.slower(Timings::read(&copy.dir));
            }
            // About 200 MB/s for a backup job on a local disk. Boots and power-downs as this
            // machine's last ones took (the slower site's), else a few seconds.
            let copy_ms = 200 + size / 200_000;
            let boot_ms = measured.boot_ms.unwrap_or(5_000);
            let kinds = [
                (OpKind::EnableProtection, copy_ms),
                (OpKind::TakePoint, 500 + copy_ms / 20),
                (OpKind::Shutdown, measured.shutdown_ms.unwrap_or(5_000)),
                (OpKind::Start, boot_ms),
                (OpKind::Sync, 500 + copy_ms / 20),
                (OpKind::Failover, 500),
                (OpKind::Commit, copy_ms),
                (OpKind::ChangePoint, 300),
                (OpKind::Revert, 500),
                (OpKind::Reprotect, copy_ms / 5),
                (OpKind::CreateTestCopy, boot_ms),
                (OpKind::RemoveTestCopy, 1_000),
            ];
            out.insert(machine, kinds.into_iter().collect());
        }
        Ok(out)
    }

    async fn execute(&self, call: Call, params: ExecuteParams) -> Answer<OpOutcome> {
        let config = self.config();
        config.folder(params.op.machine())?;
        let lock = self.machine_lock(params.op.machine());
        let _held = lock.lock().await;
        if call.is_cancelled() {
            return Err(crate::errors::cancelled());
        }
        let outcome = config.execute(&call, &params.op).await?;
        eprintln!("{}: {:?} {}: {}", params.operation, params.op.kind(), params.op.machine(), outcome.summary);
        Ok(outcome)
    }

    async fn claims(&self, params: ClaimParams) -> Answer<Vec<ForeignClaim>> {
        self.config().foreign(&params.me)
    }

    async fn claim(&self, params: ClaimParams) -> Answer<()> {
        let config = self.config();
        if let Some(first) = config.foreign(&params.me)?.first() {
            return Err(setup(
                format!("`{}` is managed by {}", first.machine, first.owner),
                "one machine, one plan: remove it from the other plan first",
            ));
        }
        let owner = serde_json::to_vec(&Owner { owner: params.me, since: SystemTime::now() })
            .map_err(|e| crate::errors::failed(e.to_string()))?;
        for machine in config.machines.keys() {
            for copy in config.copies(machine)? {
                crate::copy::write_synced(&copy.dir.join("owner.json"), &owner)?;
            }
        }
        Ok(())
    }

    async fn shutdown(&self) {
        crate::kit::close(&self.config()).await;
    }

    async fn test_create_estate(&self, params: CreateEstateParams) -> Answer<OpenResult> {
        self.set_config(crate::kit::create(params.machines).await?);
        Ok(OpenResult { capabilities: Some(capabilities()) })
    }

    async fn test_write(&self, params: MachineParams) -> Answer<()> {
        crate::kit::write(&self.config(), &params.machine).await
    }

    async fn test_set_reachable(&self, params: ReachableParams) -> Answer<()> {
        crate::kit::set_reachable(&self.config(), &params.site, params.reachable)
    }

    async fn test_content(&self, params: ContentParams) -> Answer<String> {
        crate::kit::content(&self.config(), &params.machine, &params.site).await
    }
}

/// A name that becomes a file or folder name: no separators, no `..`, nothing hidden.
pub fn safe_name(what: &str, name: &str) -> Answer<String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(setup(
            format!("{what} `{name}` cannot name a folder"),
            "use letters, digits, '-', '_' and '.' (not first)",
        ));
    }
    Ok(name.to_string())
}

impl Config {
    pub fn site_states(&self) -> BTreeMap<String, SiteInventory> {
        self.sites
            .iter()
            .map(|(name, path)| {
                let reachable = path.is_dir();
                let error = (!reachable).then(|| format!("{} is not there", path.display()));
                (name.clone(), SiteInventory { reachable, error })
            })
            .collect()
    }

    pub fn reachable(&self, site: &str) -> Answer<bool> {
        let path = self.sites.get(site).ok_or_else(|| {
            setup(format!("site `{site}` is not one of this plan's sites"), "inventory lists the plan's sites")
        })?;
        Ok(path.is_dir())
    }

    pub fn need(&self, sites: &[&str]) -> Answer<()> {
        for site in sites {
            if !self.reachable(site)? {
                return Err(unreachable(site, format!("{} cannot be reached", self.sites[*site].display())));
            }
        }
        Ok(())
    }

    pub fn folder(&self, machine: &str) -> Answer<&str> {
        self.machines.get(machine).map(String::as_str).ok_or_else(|| {
            failed_hint(format!("`{machine}` is not a machine of this plan"), "inventory lists the plan's machines")
        })
    }

    pub fn copy(&self, machine: &str, site: &str) -> Answer<Copy> {
        self.reachable(site)?;
        Copy::read(site, self.sites[site].join(self.folder(machine)?))
    }

    /// The machine's copies at the sites that can be reached.
    pub fn copies(&self, machine: &str) -> Answer<Vec<Copy>> {
        let mut found = Vec::new();
        for site in self.sites.keys() {
            if self.reachable(site)? {
                let copy = self.copy(machine, site)?;
                if copy.exists() {
                    found.push(copy);
                }
            }
        }
        Ok(found)
    }

    /// The site of the live copy: the newest live one, or the source a replica names when
    /// that source is dark.
    pub fn active(&self, machine: &str) -> Answer<Option<String>> {
        let mut best: Option<(String, u64)> = None;
        let mut replica_from = None;
        for copy in self.copies(machine)? {
            let state = copy.state();
            if state.role == Role::Live && best.as_ref().is_none_or(|(_, g)| state.generation > *g) {
                best = Some((copy.site.clone(), state.generation));
            }
            if let (Role::Replica, Some(from)) = (state.role, &state.from)
                && !self.reachable(from)?
            {
                replica_from = Some(from.clone());
            }
        }
        Ok(best.map(|(site, _)| site).or(replica_from))
    }

    pub fn live(&self, machine: &str, site: &str) -> Answer<Copy> {
        let copy = self.copy(machine, site)?;
        if !copy.exists() {
            return Err(not_found(machine, site));
        }
        if self.active(machine)?.as_deref() != Some(site) {
            return Err(failed_hint(
                format!("the live copy of `{machine}` is not at `{site}`"),
                "inventory shows where it runs",
            ));
        }
        Ok(copy)
    }

    pub fn replica(&self, machine: &str, site: &str, source: &str) -> Answer<Copy> {
        let copy = self.copy(machine, site)?;
        let state = copy.state.as_ref();
        if !state.is_some_and(|s| s.role == Role::Replica && s.from.as_deref() == Some(source)) {
            return Err(failed_hint(
                format!("`{machine}` has no replica from `{source}` at `{site}`"),
                "enable protection first",
            ));
        }
        Ok(copy)
    }

    pub fn mover(&self) -> Mover<'_> {
        Mover { img: &self.img, qemu: &self.qemu, hooks: None }
    }

    /// A mover that takes `machine`'s points with the plan's freeze and thaw around them.
    pub fn mover_for(&self, machine: &str) -> Mover<'_> {
        Mover { hooks: self.hooks.get(machine), ..self.mover() }
    }

    async fn machine_inventory(&self, machine: &str) -> Answer<MachineInventory> {
        let active = self.active(machine)?;
        let mut out = MachineInventory { active_site: active.clone(), ..Default::default() };
        for copy in self.copies(machine)? {
            let state = copy.state();
            // Read once: the power (its ready line) and the settings both come from it.
            let hardware = Hardware::read(&copy.dir);
            let power = power_of(&copy, &hardware).await?;
            let mut disks = Vec::new();
            for (name, image) in copy.heads()? {
                disks.push(DiskInfo { name, size_bytes: self.img.size(&image).await? });
            }
            let nics = match power {
                Power::On => state.nics.iter().map(|n| NicState { network: n.network.clone(), ip: n.ip }).collect(),
                _ => Vec::new(),
            };
            out.copies.insert(
                copy.site.clone(),
                MachineCopy {
                    power,
                    consistent: state.consistent,
                    nics,
                    settings: crate::settings::settings_of(&copy.dir, &hardware),
                    disks,
                },
            );
            let here = active.as_deref() == Some(copy.site.as_str());
            if state.role == Role::Live && here && state.commit_pending {
                out.commit_pending = true;
                out.failed_over_at = state.failed_over_at;
                out.points = point_list(&copy);
            }
            if state.role == Role::Replica && state.protected && state.from.is_some() && state.from == active {
                let from = state.from.clone().unwrap_or_default();
                let health = if !state.consistent {
                    ReplicationHealth::Inconsistent
                } else if !self.reachable(&from)? {
                    ReplicationHealth::Degraded
                } else {
                    ReplicationHealth::Healthy
                };
                let lag = state.points.last().and_then(|p| SystemTime::now().duration_since(p.time).ok());
                out.replication = Some(Replication { from, to: copy.site.clone(), health, lag, pending_bytes: None });
                out.points = point_list(&copy);
            }
            for drill in state.drills.keys() {
                let instance = Instance::drill(&copy.dir, drill, String::new());
                let power = if instance.running().await { Power::On } else { Power::Off };
                out.test_copies.push(TestCopy { site: copy.site.clone(), drill: drill.clone(), power });
            }
        }
        Ok(out)
    }

    fn foreign(&self, me: &Claimant) -> Answer<Vec<ForeignClaim>> {
        let mut found = Vec::new();
        for machine in self.machines.keys() {
            for copy in self.copies(machine)? {
                let Ok(bytes) = std::fs::read(copy.dir.join("owner.json")) else { continue };
                let Ok(owner) = serde_json::from_slice::<Owner>(&bytes) else { continue };
                if !owner.owner.same_owner(me) {
                    found.push(ForeignClaim { machine: machine.clone(), owner: owner.owner, since: owner.since });
                    break;
                }
            }
        }
        Ok(found)
    }
}

/// Who manages a machine's copy (`owner.json` beside it).
#[derive(serde::Serialize, serde::Deserialize)]
struct Owner {
    owner: Claimant,
    #[serde(with = "drplan_protocol::time")]
    since: SystemTime,
}

/// A copy's VM is booting while its guest has not printed its ready line since the boot
/// that a start began (a start that timed out leaves it so): the engine then plans a start,
/// which waits for the line.
async fn power_of(copy: &Copy, hardware: &Answer<Hardware>) -> Answer<Power> {
    let vm = Instance::vm(&copy.dir, String::new());
    if !vm.running().await {
        return Ok(Power::Off);
    }
    let Some(mark) = copy.state().boot_mark else { return Ok(Power::On) };
    Ok(match &hardware.as_ref().map_err(Clone::clone)?.ready_line {
        Some(line) if !vm.printed(line, mark).await => Power::Booting,
        _ => Power::On,
    })
}

fn point_list(copy: &Copy) -> Vec<RecoveryPoint> {
    copy.state()
        .points
        .iter()
        .map(|p| RecoveryPoint {
            id: p.id,
            time: p.time,
            consistency: Consistency::of(p.app_consistent),
            processed: true,
            bytes_after: None,
        })
        .collect()
}

/// How long from `from` to `to` (zero when `to` is earlier).
pub fn since(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or_default()
}
