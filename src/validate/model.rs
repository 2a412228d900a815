//! The validated plan: every reference resolved to an index, every value parsed.
//!
//! Later layers consume this and never re-check what validation guarantees.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::contract::NicAssignment;
use crate::spec::{CommitMode, Direction, OnFailure, Operation, ProviderKind, SourceFile, Via};

use crate::contract::SyncMode;

pub type SiteId = usize;
pub type NetworkId = usize;
pub type MachineId = usize;
pub type GroupId = usize;

/// Default recovery points kept when `protection.keep_points` is absent.
pub const DEFAULT_KEEP_POINTS: u32 = 24;
/// Default boot (and stop) timeout of a machine.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(300);
/// Default timeout of a script step.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a freeze or thaw program may run.
pub const DEFAULT_CONSISTENCY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Model {
    pub source: SourceFile,
    pub name: String,
    pub description: Option<String>,
    /// blake3 of the plan text: a saved plan refuses to apply once the document changed.
    pub document_hash: String,
    pub sites: Vec<SiteSpec>,
    pub protection: ProtectionSpec,
    pub networks: Vec<NetworkSpec>,
    pub machines: Vec<MachineSpec>,
    /// In document order.
    pub groups: Vec<GroupSpec>,
    /// Steps around shutting the source down (`phases.shutdown`).
    pub shutdown_steps: PhaseStepSpecs,
    /// Steps around failing over (`phases.failover`).
    pub failover_steps: PhaseStepSpecs,
    pub target: TargetSpec,
    /// Where the plan's state lives.
    pub state: StateBackend,
}

/// Where the plan's state lives, as validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StateBackend {
    File,
    /// In PostgreSQL; the connection string is in environment variable `url_env`.
    Postgres {
        url_env: String,
    },
}

impl Model {
    pub fn site(&self, id: SiteId) -> &SiteSpec {
        &self.sites[id]
    }

    pub fn site_id(&self, name: &str) -> Option<SiteId> {
        self.sites.iter().position(|s| s.name == name)
    }

    pub fn machine_id(&self, name: &str) -> Option<MachineId> {
        self.machines.iter().position(|m| m.name == name)
    }

    pub fn group_id(&self, name: &str) -> Option<GroupId> {
        self.groups.iter().position(|g| g.name == name)
    }

    /// The names of a group's machines, in document order.
    pub fn group_machine_names(&self, group: GroupId) -> Vec<String> {
        self.groups[group].machines.iter().map(|&m| self.machines[m].name.clone()).collect()
    }

    /// Where a machine that now runs at `current` should run once the target is reached.
    /// The alternate location stands in for the primary: machines failing back go there, and
    /// machines already there stay.
    pub fn desired_site_for(&self, current: Option<SiteId>) -> SiteId {
        let target = &self.target;
        match target.alternate {
            Some(alt) if target.active == self.protection.primary && current != Some(self.protection.primary) => alt,
            _ => target.active,
        }
    }

    /// The site that replicates with `site`: the recovery site for the primary or the
    /// alternate location, the home site (primary or alternate) for the recovery site.
    pub fn partner_of(&self, site: SiteId) -> SiteId {
        if site == self.protection.recovery {
            match self.target.alternate {
                Some(alt) if self.target.active == self.protection.primary => alt,
                _ => self.protection.primary,
            }
        } else {
            self.protection.recovery
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteSpec {
    pub name: String,
    pub provider: ProviderKind,
    /// As written: `local`, `sim` or a plugin's name.
    pub provider_name: String,
    /// A plugin's command (argv), given or found (`drplan-provider-NAME`); None when not found
    /// here (an error only when the plan runs).
    pub plugin: Option<Vec<String>>,
    /// Resolved against the plan's directory.
    pub path: Option<PathBuf>,
    /// Where `path` is written.
    #[serde(skip)]
    pub path_span: Option<miette::SourceSpan>,
    pub settings: BTreeMap<String, String>,
    /// Where each setting is written: its key and its value.
    #[serde(skip)]
    pub setting_spans: BTreeMap<String, (miette::SourceSpan, miette::SourceSpan)>,
    /// Where `provider` is written.
    #[serde(skip)]
    pub provider_span: miette::SourceSpan,
    pub max_parallel: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct ProtectionSpec {
    pub primary: SiteId,
    pub recovery: SiteId,
    pub rpo: Duration,
    pub rto: Duration,
    pub keep_points: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkSpec {
    pub source: String,
    pub target: String,
    pub test: String,
    /// Addresses are kept after failover (the whole subnet must move together).
    #[serde(skip)]
    pub retain: bool,
    /// The declared source subnet (network address, prefix) and where it is written.
    #[serde(skip)]
    pub source_subnet: Option<(std::net::IpAddr, u32, miette::SourceSpan)>,
}

#[derive(Debug, Clone)]
pub struct MachineSpec {
    pub name: String,
    /// Identity at the provider.
    pub provider_id: String,
    pub nics: Vec<NicSpec>,
    pub boot_timeout: Duration,
    pub group: GroupId,
    pub consistency: Option<ConsistencySpec>,
}

/// A machine's freeze and thaw programs, each argv with its program resolved (a path relative
/// to the plan made absolute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencySpec {
    pub freeze: Vec<String>,
    pub thaw: Vec<String>,
    pub timeout: Duration,
    /// As the plan writes it, for people (`drplan diff`).
    pub shown: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NicSpec {
    pub network: NetworkId,
    pub ip: Option<IpAddr>,
    /// The address on the recovery (and drill) network.
    pub target: TargetAddress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "ip")]
pub enum TargetAddress {
    Static(IpAddr),
    Dhcp,
}

#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub name: String,
    pub depends_on: Vec<GroupId>,
    pub machines: Vec<MachineId>,
    pub before: Vec<StepSpec>,
    pub after: Vec<StepSpec>,
}

/// The steps before and after one of the phases that precede the boot groups.
#[derive(Debug, Clone, Default)]
pub struct PhaseStepSpecs {
    pub before: Vec<StepSpec>,
    pub after: Vec<StepSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Before,
    After,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StepSpec {
    /// `group/before/NAME-or-position`: stable, used by `drplan approve`.
    pub id: String,
    pub kind: StepKind,
    pub only: Option<Vec<Operation>>,
    pub direction: Option<Vec<Direction>>,
}

impl StepSpec {
    /// Whether this step takes part in a run that is each of `operations`, in `direction`.
    pub fn applies_to(&self, operations: &[Operation], direction: Direction) -> bool {
        self.only.as_ref().is_none_or(|o| operations.iter().any(|op| o.contains(op)))
            && self.direction.as_ref().is_none_or(|d| d.contains(&direction))
    }
}

#[derive(Debug, Clone)]
pub enum StepKind {
    Script(ScriptSpec),
    Manual(ManualSpec),
}

#[derive(Debug, Clone, Serialize)]
pub struct ScriptSpec {
    /// As written in the plan (for display).
    pub argv: Vec<String>,
    /// The program to execute: relative paths resolved against the plan's directory.
    pub program: PathBuf,
    pub dir: PathBuf,
    /// Not serialized: it may hold secrets.
    #[serde(skip)]
    pub env: BTreeMap<String, EnvSpec>,
    pub timeout: Duration,
    pub retries: u32,
    /// None: the operation's policy decides.
    pub on_failure: Option<OnFailure>,
}

/// A script's environment variable: a value from the document, or drplan's own variable.
#[derive(Clone)]
pub enum EnvSpec {
    Literal(String),
    FromEnv(String),
}

impl std::fmt::Debug for EnvSpec {
    // Never the value: a debug print may end up in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvSpec::Literal(_) => f.write_str("<literal>"),
            EnvSpec::FromEnv(name) => write!(f, "<from_env {name}>"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ManualSpec {
    pub prompt: String,
    pub approvers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub active: SiteId,
    /// Where `target.active` is written: plan-time diagnostics point at it.
    pub active_span: miette::SourceSpan,
    pub via: Via,
    pub recovery_point: RecoveryPointSel,
    /// Where `target.recovery_point` is written, when it is.
    pub recovery_point_span: Option<miette::SourceSpan>,
    pub sync: SyncMode,
    /// The failback location when it is not the original one.
    pub alternate: Option<SiteId>,
    pub commit: CommitMode,
    pub reprotect: bool,
    pub try_shutdown: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryPointSel {
    Latest,
    LatestAppConsistent,
    LatestProcessed,
    /// The newest point at or before this time.
    At(#[serde(with = "crate::spec::time_format")] SystemTime),
}

impl RecoveryPointSel {
    /// `latest`, `latest-app-consistent`, `latest-processed` or an RFC 3339 time.
    pub fn parse(text: &str) -> Option<RecoveryPointSel> {
        match text.trim() {
            "latest" => Some(RecoveryPointSel::Latest),
            "latest-app-consistent" => Some(RecoveryPointSel::LatestAppConsistent),
            "latest-processed" => Some(RecoveryPointSel::LatestProcessed),
            other => crate::spec::time_format::parse_rfc3339(other).map(RecoveryPointSel::At),
        }
    }
}

impl std::fmt::Display for RecoveryPointSel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecoveryPointSel::Latest => f.write_str("latest"),
            RecoveryPointSel::LatestAppConsistent => f.write_str("latest-app-consistent"),
            RecoveryPointSel::LatestProcessed => f.write_str("latest-processed"),
            RecoveryPointSel::At(t) => write!(f, "{}", humantime::format_rfc3339_seconds(*t)),
        }
    }
}

/// Where a machine's NICs attach: the networks and addresses it gets there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Failover to the recovery site: recovery networks, mapped addresses.
    Recovery,
    /// Back to the primary site or the alternate location: production networks, original addresses.
    Home,
    /// A drill: isolated test networks, the addresses the machine would get on failover.
    Drill,
}

impl Model {
    pub fn addresses(&self, machine: MachineId, destination: Destination) -> Vec<NicAssignment> {
        self.machines[machine]
            .nics
            .iter()
            .map(|nic| {
                let mapping = &self.networks[nic.network];
                let mapped = match nic.target {
                    TargetAddress::Static(ip) => Some(ip),
                    TargetAddress::Dhcp => None,
                };
                match destination {
                    Destination::Recovery => NicAssignment { network: mapping.target.clone(), ip: mapped },
                    Destination::Home => NicAssignment { network: mapping.source.clone(), ip: nic.ip },
                    Destination::Drill => NicAssignment { network: mapping.test.clone(), ip: mapped },
                }
            })
            .collect()
    }
}
