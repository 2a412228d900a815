//! The v1 plan document: the public, committed-to-git format.
//!
//! Field names here are a compatibility promise. Names and references are
//! `Spanned` so that later layers can point diagnostics at the exact node.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub use drplan_protocol::SyncMode;

use super::named_map::NamedMap;
use super::schema_types::{Cidr, DurationText, IpText, Name, RecoveryPointText};

/// The value of a script's environment variable.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum EnvValue {
    /// Written in the plan. Plan files and state keep only a keyed digest of it.
    Literal(String),
    /// Taken from drplan's environment when the step runs; kept nowhere.
    FromEnv(FromEnv),
}

#[derive(Debug, Clone, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromEnv {
    /// The name of the variable in drplan's environment.
    #[schemars(with = "String")]
    pub from_env: Spanned<String>,
}

// By hand rather than `untagged`: an untagged enum buffers its input, which loses the
// positions diagnostics point at, and says only "did not match any variant".
impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = EnvValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a value, or `{ from_env: NAME }` to take drplan's variable NAME")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue::Literal(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<EnvValue, A::Error> {
                let mut from_env = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "from_env" if from_env.is_none() => from_env = Some(map.next_value::<Spanned<String>>()?),
                        "from_env" => return Err(serde::de::Error::duplicate_field("from_env")),
                        other => return Err(serde::de::Error::unknown_field(other, &["from_env"])),
                    }
                }
                let from_env = from_env.ok_or_else(|| serde::de::Error::missing_field("from_env"))?;
                Ok(EnvValue::FromEnv(FromEnv { from_env }))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A recovery plan: sites, protected machines, networks, ordered boot groups and the desired state.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "drplan recovery plan (v1)")]
pub struct PlanDocument {
    /// Format version of this document; always 1.
    #[schemars(with = "u32", range(min = 1, max = 1))]
    pub version: Spanned<u32>,
    /// Name of the plan; used in state, reports and locks.
    #[schemars(with = "Name")]
    pub name: Spanned<String>,
    /// Free text for humans.
    #[serde(default)]
    pub description: Option<String>,
    /// Places that machines can run in, by name.
    pub sites: NamedMap<Site>,
    /// Which site protects which, and the objectives.
    pub protection: Protection,
    /// Network mappings from production networks to recovery and drill networks.
    #[serde(default)]
    pub networks: Vec<NetworkMapping>,
    /// Protected machines.
    pub machines: Vec<Machine>,
    /// Ordered boot groups. A group starts when the groups it depends on are done.
    pub groups: Vec<Group>,
    /// Steps around the phases before the boot groups: shutting down the source, and
    /// failing over.
    #[serde(default)]
    pub phases: Option<Phases>,
    /// The desired state: which site should be active and how to get there.
    pub target: Target,
    /// Where drplan keeps this plan's state (default: files beside the plan).
    #[serde(default)]
    pub state: Option<StateBlock>,
    /// Azure Site Recovery values with no drplan meaning, kept by `drplan import asr` so that
    /// `drplan export asr` gives them back. drplan itself does not use them.
    #[serde(default)]
    pub asr: Option<crate::spec::asr::AsrPlan>,
}

/// Steps of the phases before the boot groups.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phases {
    /// Before the first machine shuts down, and after the last one is off (runs that shut
    /// the source down: planned failover, failback, unplanned with `try_shutdown`).
    #[serde(default)]
    #[schemars(with = "Option<PhaseSteps>")]
    pub shutdown: Option<Spanned<PhaseSteps>>,
    /// Before the first failover (after the final sync), and after the last one, before the
    /// first boot group starts. In a drill: around creating the test copies.
    #[serde(default)]
    #[schemars(with = "Option<PhaseSteps>")]
    pub failover: Option<Spanned<PhaseSteps>>,
}

/// The steps before and after a phase.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseSteps {
    /// Steps run before the phase starts.
    #[serde(default)]
    pub before: Vec<Step>,
    /// Steps run once the phase is done.
    #[serde(default)]
    pub after: Vec<Step>,
}

/// Where the plan's state, journal and lock live.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateBlock {
    /// `file` (default): `.drplan/` beside the plan, for one runner; `postgres`: a PostgreSQL
    /// database that runners on several machines share.
    #[serde(default)]
    pub backend: StateBackendKind,
    /// The environment variable holding the PostgreSQL connection string (default
    /// `DRPLAN_PG_URL`). The string itself never appears in a plan, state, report or log.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub url_env: Option<Spanned<String>>,
}

/// A state backend.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StateBackendKind {
    #[default]
    File,
    Postgres,
}

/// Which kind of platform a site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// Directories on this machine; real disk image files moved by block-level replication.
    Local,
    /// A simulated datacenter kept in a JSON world file (for rehearsals, chaos and scale tests).
    Sim,
    /// Another program, spoken to over the plugin protocol (`drplan-provider-NAME`).
    Plugin,
}

impl ProviderKind {
    /// The built-in provider of this name, else a plugin.
    pub fn of(name: &str) -> ProviderKind {
        match name {
            "local" => ProviderKind::Local,
            "sim" => ProviderKind::Sim,
            _ => ProviderKind::Plugin,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::Sim => "sim",
            ProviderKind::Plugin => "plugin",
        }
    }
}

/// The program of provider plugin `name`.
pub fn plugin_program(name: &str) -> String {
    format!("drplan-provider-{name}")
}

/// A named place that machines can run in.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// The provider that drives this site: `local`, `sim`, or a plugin's NAME (the program
    /// `drplan-provider-NAME` next to drplan or on PATH).
    #[schemars(with = "String", regex(pattern = r"^[a-z][a-z0-9-]{0,62}$"))]
    pub provider: Spanned<String>,
    /// Run this plugin (argv, never a shell string; a program with a `/` is relative to the
    /// plan file) instead of looking `drplan-provider-NAME` up.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub plugin: Option<Spanned<Vec<String>>>,
    /// `local`: the site directory; `sim`: the world file. Relative to the plan file.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// Provider-specific settings passed through to the provider (a plugin's are checked
    /// against the schema it publishes).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub settings: NamedMap<Spanned<String>>,
    /// At most this many provider operations run at once against this site.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_parallel: Option<u32>,
}

/// Protection: which site is primary, which is recovery, and the objectives.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Protection {
    /// The site the machines normally run in.
    #[schemars(with = "Name")]
    pub primary: Spanned<String>,
    /// The site the machines fail over to.
    #[schemars(with = "Name")]
    pub recovery: Spanned<String>,
    /// Recovery point objective: the most data, in time, the business accepts to lose.
    #[schemars(with = "DurationText")]
    pub rpo: Spanned<String>,
    /// Recovery time objective: how long recovery may take.
    #[schemars(with = "DurationText")]
    pub rto: Spanned<String>,
    /// How many recovery points are retained (default 24).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub keep_points: Option<u32>,
}

/// A network mapping: a production network, where it goes on failover, and its isolated drill network.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkMapping {
    /// The production network at the primary site.
    #[schemars(with = "Name")]
    pub source: Spanned<String>,
    /// The production network at the recovery site.
    #[schemars(with = "Name")]
    pub target: Spanned<String>,
    /// The isolated network used by drills; never a production network.
    #[schemars(with = "Name")]
    pub test: Spanned<String>,
    /// How machines get addresses after failover (default `retain`).
    #[serde(default)]
    #[schemars(with = "AddressPolicy")]
    pub addresses: Option<Spanned<AddressPolicy>>,
    /// The source network's subnet; NIC addresses must lie in it.
    #[serde(default)]
    #[schemars(with = "Option<Cidr>")]
    pub source_subnet: Option<Spanned<String>>,
    /// The target network's subnet; addresses after failover must lie in it.
    #[serde(default)]
    #[schemars(with = "Option<Cidr>")]
    pub target_subnet: Option<Spanned<String>>,
    /// Every machine with an address in `source_subnet` is in this plan, so the subnet fails
    /// over as a whole (which `addresses: retain` needs). Default false: drplan warns.
    #[serde(default)]
    pub whole_subnet: bool,
}

/// How a machine's addresses are assigned after failover.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum AddressPolicy {
    /// Keep the same address (the whole subnet fails over).
    Retain,
    /// The recovery network's DHCP assigns addresses.
    Dhcp,
    /// Explicit source address -> target address pairs; unmapped addresses are retained.
    Map(#[schemars(with = "BTreeMap<IpText, IpText>")] NamedMap<Spanned<String>>),
}

/// A protected machine.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// The machine's name in this plan.
    #[schemars(with = "Name")]
    pub name: Spanned<String>,
    /// Identity at the provider when it differs from `name` (VM id, inventory name; for
    /// `local` sites, the machine's directory name in the site).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub id: Option<Spanned<String>>,
    /// Network interfaces, each on a named production network.
    #[serde(default)]
    pub nics: Vec<Nic>,
    /// How long to wait for the machine to boot before failing the step, and how long it gets
    /// to shut down by itself before it is forced off.
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    pub boot_timeout: Option<Spanned<String>>,
    /// App-consistent recovery points: programs the provider runs right before each point of
    /// this machine (freeze) and right after it (thaw).
    #[serde(default)]
    pub consistency: Option<Consistency>,
    /// Azure Site Recovery values kept for `drplan export asr`.
    #[serde(default)]
    pub asr: Option<crate::spec::asr::AsrItem>,
}

/// A machine's freeze and thaw programs: argv lists (never a shell string); a program with a
/// `/` is relative to the plan file, a bare name is looked up in `PATH`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consistency {
    /// Quiesces the application and flushes its data; the point is app-consistent when it
    /// succeeds.
    #[schemars(with = "Vec<String>")]
    pub freeze: Spanned<Vec<Spanned<String>>>,
    /// Lets the application go on; run after every freeze that was tried, even a failed one.
    #[schemars(with = "Vec<String>")]
    pub thaw: Spanned<Vec<Spanned<String>>>,
    /// Each is killed after this long (default 1m): the application waits while frozen.
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<Spanned<String>>,
}

/// A network interface.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nic {
    /// The production network this interface is on; it must have a mapping.
    #[schemars(with = "Name")]
    pub network: Spanned<String>,
    /// The interface's address at the primary site.
    #[serde(default)]
    #[schemars(with = "Option<IpText>")]
    pub ip: Option<Spanned<String>>,
    /// The address after failover, overriding the network's address policy.
    #[serde(default)]
    #[schemars(with = "Option<IpText>")]
    pub target_ip: Option<Spanned<String>>,
}

/// An ordered boot group: its machines start in parallel, after the groups it depends on.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// The group's name.
    #[schemars(with = "Name")]
    pub name: Spanned<String>,
    /// Groups that must be done before this one starts. Default: the previous group.
    #[serde(default)]
    #[schemars(with = "Option<Vec<Name>>")]
    pub depends_on: Option<Vec<Spanned<String>>>,
    /// The machines of this group.
    #[serde(default)]
    #[schemars(with = "Vec<Name>")]
    pub machines: Vec<Spanned<String>>,
    /// Steps run before the group's machines start.
    #[serde(default)]
    pub before: Vec<Step>,
    /// Steps run after the group's machines have started.
    #[serde(default)]
    pub after: Vec<Step>,
}

/// A step in a group: a manual approval or a script.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum Step {
    /// Run a program.
    Script(ScriptStep),
    /// Pause until a person approves.
    Manual(ManualStep),
}

/// A script step: runs an argv, never a shell string built from plan values.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    /// A name for the step, used in step ids (`group/after/NAME`). Default: its position.
    #[serde(default)]
    #[schemars(with = "Option<Name>")]
    pub name: Option<Spanned<String>>,
    /// The program and its arguments; a relative program path is resolved against the plan file.
    #[schemars(with = "Vec<String>")]
    pub run: Spanned<Vec<Spanned<String>>>,
    /// Working directory, relative to the plan file (default: the plan's directory).
    #[serde(default)]
    pub dir: Option<String>,
    /// Extra environment variables: a value, or `{ from_env: NAME }` to pass drplan's own
    /// variable NAME at run time (for secrets: never written to plan files or state).
    #[serde(default)]
    pub env: BTreeMap<String, EnvValue>,
    /// Kill the script after this long (default 10m).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<Spanned<String>>,
    /// Extra attempts after a failure.
    #[serde(default)]
    pub retries: u32,
    /// What a failure does to the run. Default: the operation's policy, `stop` in a planned
    /// failover and a failback, `continue` in an unplanned failover and a drill.
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
    /// Run only in these operations (default: all).
    #[serde(default)]
    pub only: Option<Vec<Operation>>,
    /// Run only in these directions (default: both).
    #[serde(default)]
    pub direction: Option<Vec<Direction>>,
    /// Azure Site Recovery values kept for `drplan export asr`.
    #[serde(default)]
    pub asr: Option<crate::spec::asr::AsrAction>,
}

/// A manual step: pauses the run until approved with `drplan approve`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualStep {
    /// A name for the step, used in step ids (`group/before/NAME`). Default: its position.
    #[serde(default)]
    #[schemars(with = "Option<Name>")]
    pub name: Option<Spanned<String>>,
    /// What the person must check or do before approving.
    pub prompt: String,
    /// Who may approve (free-form names; empty means anyone).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Run only in these operations (default: all).
    #[serde(default)]
    pub only: Option<Vec<Operation>>,
    /// Run only in these directions (default: both).
    #[serde(default)]
    pub direction: Option<Vec<Direction>>,
    /// Azure Site Recovery values kept for `drplan export asr`.
    #[serde(default)]
    pub asr: Option<crate::spec::asr::AsrAction>,
}

/// A kind of run, for step filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Drill,
    Planned,
    Unplanned,
    Failback,
}

impl Operation {
    /// As written in a plan.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Drill => "drill",
            Operation::Planned => "planned",
            Operation::Unplanned => "unplanned",
            Operation::Failback => "failback",
        }
    }
}

/// Forward: primary to recovery. Back: recovery to primary (or the alternate location).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Forward,
    Back,
}

impl Direction {
    /// As written in a plan.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Back => "back",
        }
    }
}

/// What a failed script does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Stop the run (steps already started finish).
    Stop,
    /// Record the failure and go on.
    Continue,
}

/// The desired state.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The site that should run the machines.
    #[schemars(with = "Name")]
    pub active: Spanned<String>,
    /// How to get there when `active` changes (default `planned`).
    #[serde(default)]
    pub via: Via,
    /// Which recovery point to fail over to (default `latest`).
    #[serde(default)]
    #[schemars(with = "Option<RecoveryPointText>")]
    pub recovery_point: Option<Spanned<String>>,
    /// How data is synchronised on failback (default `delta`).
    #[serde(default)]
    pub sync: SyncMode,
    /// Where machines go on failback (default `original`).
    #[serde(default)]
    #[schemars(with = "Location")]
    pub location: Option<Spanned<Location>>,
    /// Commit the failover automatically, or wait for `drplan commit` (default `auto`).
    #[serde(default)]
    pub commit: CommitMode,
    /// Start reverse replication after the failover is committed (default true).
    #[serde(default = "default_true")]
    pub reprotect: bool,
    /// Unplanned only: try to shut the source down and sync its last data first (default false).
    #[serde(default)]
    pub try_shutdown: bool,
}

fn default_true() -> bool {
    true
}

/// Planned (zero data loss, source shut down first) or unplanned (from a recovery point).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    #[default]
    Planned,
    Unplanned,
}

/// Where machines go on failback.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum Location {
    /// Back where they came from.
    Original,
    /// Another site, creating the machines there when absent.
    Alternate(#[schemars(with = "Name")] Spanned<String>),
}

/// Whether a failover is committed automatically.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CommitMode {
    #[default]
    Auto,
    Manual,
}
