//! Semantic problems in a plan that parsed: each with a stable code, a span and a hint.

use miette::{Diagnostic, LabeledSpan, SourceSpan};
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum ValidationError {
    #[error("unsupported plan version {found}")]
    #[diagnostic(code(drplan::unsupported_version), help("this drplan reads `version: 1` plans"))]
    UnsupportedVersion {
        found: u32,
        #[label("only version 1 exists")]
        at: SourceSpan,
    },

    #[error("invalid {what} name `{name}`")]
    #[diagnostic(
        code(drplan::invalid_name),
        help(
            "names use letters, digits, `_`, `-` and `.`, start with a letter or digit and have at most 63 characters"
        )
    )]
    InvalidName {
        what: &'static str,
        name: String,
        #[label("not a valid name")]
        at: SourceSpan,
    },

    #[error("duplicate {what} `{name}`")]
    #[diagnostic(code(drplan::duplicate_name), help("each {what} needs a unique name"))]
    DuplicateName {
        what: &'static str,
        name: String,
        #[label(primary, "defined again here")]
        at: SourceSpan,
        #[label("first defined here")]
        first: SourceSpan,
    },

    #[error("unknown site `{name}`")]
    #[diagnostic(code(drplan::unknown_site))]
    UnknownSite {
        name: String,
        #[label("no site of this name under `sites:`")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    #[error("unknown machine `{name}`")]
    #[diagnostic(code(drplan::unknown_machine))]
    UnknownMachine {
        name: String,
        #[label("no machine of this name under `machines:`")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    #[error("unknown group `{name}`")]
    #[diagnostic(code(drplan::unknown_group))]
    UnknownGroup {
        name: String,
        #[label("no group of this name under `groups:`")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    #[error("network `{name}` has no mapping")]
    #[diagnostic(code(drplan::unmapped_network))]
    UnmappedNetwork {
        name: String,
        #[label("no `networks:` entry has `source: {name}`")]
        at: SourceSpan,
        #[help]
        help: String,
    },

    #[error("machine `{name}` is in no group")]
    #[diagnostic(
        code(drplan::machine_not_in_group),
        help("add `{name}` to the `machines:` of the group it should boot with")
    )]
    MachineNotInGroup {
        name: String,
        #[label("never started by any group")]
        at: SourceSpan,
    },

    #[error("machine `{name}` is in more than one group")]
    #[diagnostic(code(drplan::machine_in_two_groups), help("a machine boots exactly once; keep it in one group"))]
    MachineInTwoGroups {
        name: String,
        #[label(primary, "listed again here")]
        at: SourceSpan,
        #[label("first listed here")]
        first: SourceSpan,
    },

    #[error("groups depend on each other in a cycle: {cycle}")]
    #[diagnostic(
        code(drplan::dependency_cycle),
        help(
            "a group starts only when the groups it depends on are done, so none of these can ever start; remove one dependency (a group without `depends_on` depends on the previous group)"
        )
    )]
    DependencyCycle {
        cycle: String,
        #[label(collection)]
        links: Vec<LabeledSpan>,
    },

    #[error("test network `{name}` is a production network")]
    #[diagnostic(
        code(drplan::test_network_not_isolated),
        help(
            "drills must run in an isolated network that no production source or target network uses; name a separate drill network"
        )
    )]
    TestNetworkNotIsolated {
        name: String,
        #[label(primary, "drill copies would join this production network")]
        at: SourceSpan,
        #[label("used for production here")]
        production: SourceSpan,
    },

    #[error("target address {ip} is used twice in network `{network}`")]
    #[diagnostic(
        code(drplan::duplicate_target_ip),
        help(
            "after failover both machines would claim {ip}; give one a different address (`target_ip:` or an `addresses: {{ map: ... }}` entry)"
        )
    )]
    DuplicateTargetIp {
        ip: String,
        network: String,
        #[label(primary, "{ip} again")]
        at: SourceSpan,
        #[label("first assigned here")]
        first: SourceSpan,
    },

    #[error("address map entry {ip} matches no NIC on network `{network}`")]
    #[diagnostic(
        code(drplan::unused_address_map),
        severity(Warning),
        help("remove the entry, or check the NIC's `ip:`; no machine on `{network}` has this address")
    )]
    UnusedAddressMapEntry {
        ip: String,
        network: String,
        #[label("unused")]
        at: SourceSpan,
    },

    #[error("invalid IP address `{text}`")]
    #[diagnostic(
        code(drplan::invalid_ip),
        help("write an IPv4 address such as `10.0.1.10` or an IPv6 address such as `fd00::10`")
    )]
    InvalidIp {
        text: String,
        #[label("not an IP address")]
        at: SourceSpan,
    },

    #[error("invalid subnet `{text}`")]
    #[diagnostic(code(drplan::invalid_subnet), help("write a subnet in CIDR notation, such as `10.1.0.0/24`"))]
    InvalidSubnet {
        text: String,
        #[label("not a CIDR subnet")]
        at: SourceSpan,
    },

    #[error("address {ip} is outside subnet {subnet}")]
    #[diagnostic(code(drplan::ip_outside_subnet), help("use an address inside {subnet}, or correct the subnet"))]
    IpOutsideSubnet {
        ip: String,
        subnet: String,
        #[label(primary, "not in {subnet}")]
        at: SourceSpan,
        #[label("subnet declared here")]
        subnet_at: SourceSpan,
    },

    #[error("primary and recovery are the same site `{name}`")]
    #[diagnostic(
        code(drplan::same_primary_and_recovery),
        help("protection needs two sites: machines fail over from `primary` to a different `recovery` site")
    )]
    SamePrimaryAndRecovery {
        name: String,
        #[label(primary, "recovery")]
        at: SourceSpan,
        #[label("primary")]
        primary: SourceSpan,
    },

    #[error("target site `{name}` is neither the primary nor the recovery site")]
    #[diagnostic(
        code(drplan::active_not_protected),
        help(
            "`target.active` is `{primary}` or `{recovery}`; to fail back into another site use `location: {{ alternate: {name} }}`"
        )
    )]
    ActiveNotProtected {
        name: String,
        primary: String,
        recovery: String,
        #[label("not protected by this plan")]
        at: SourceSpan,
    },

    #[error("alternate location `{name}` is the {role} site")]
    #[diagnostic(code(drplan::invalid_alternate_location), help("{help}"))]
    InvalidAlternateLocation {
        name: String,
        role: &'static str,
        help: &'static str,
        #[label("not an alternate location")]
        at: SourceSpan,
    },

    #[error("`{field}` names no program to run")]
    #[diagnostic(code(drplan::empty_script), help("give the program and its arguments, e.g. `{field}: {example}`"))]
    EmptyScript {
        field: &'static str,
        example: &'static str,
        #[label("empty `{field}`")]
        at: SourceSpan,
    },

    #[error("`{name}` is not a provider name")]
    #[diagnostic(
        code(drplan::bad_provider_name),
        help(
            "`local`, `sim`, or a plugin's name: lowercase letters, digits and `-` (the program is `drplan-provider-NAME`)"
        )
    )]
    BadProviderName {
        name: String,
        #[label("here")]
        at: SourceSpan,
    },

    #[error("the plan's state lives inside its primary site `{site}` ({dir})")]
    #[diagnostic(
        code(drplan::state_inside_primary),
        severity(Warning),
        help(
            "a failover must not depend on the site it leaves: keep the plan (and its .drplan/) elsewhere, or use `state: {{ backend: postgres }}`"
        )
    )]
    StateInsidePrimary {
        site: String,
        dir: String,
        #[label("the primary site")]
        at: SourceSpan,
    },

    #[error("no provider plugin `{name}` is installed here")]
    #[diagnostic(
        code(drplan::plugin_not_found),
        severity(Warning),
        help(
            "install `drplan-provider-{name}` next to drplan or on PATH, or give the site `plugin: [ARGV...]`; checked again when the plan runs"
        )
    )]
    PluginNotFound {
        name: String,
        #[label("here")]
        at: SourceSpan,
    },

    #[error("unknown provider `{name}`")]
    #[diagnostic(
        code(drplan::unknown_provider),
        help("did you mean `{builtin}`? (no plugin of that name is installed either)")
    )]
    UnknownProvider {
        name: String,
        builtin: &'static str,
        #[label("here")]
        at: SourceSpan,
    },

    #[error("`{name}` is not a name an environment variable can have")]
    #[diagnostic(
        code(drplan::bad_env_name),
        help("use letters, digits and `_`, not starting with a digit, e.g. `DB_PASSWORD`")
    )]
    BadEnvName {
        name: String,
        #[label("here")]
        at: SourceSpan,
    },

    #[error("`{field}` program `{program}` {problem}")]
    #[diagnostic(code(drplan::script_not_found), severity(Warning), help("{help}"))]
    ScriptNotFound {
        /// The field that names it: `run`, `freeze`, `thaw`.
        field: &'static str,
        program: String,
        problem: &'static str,
        help: String,
        #[label("{problem}")]
        at: SourceSpan,
    },

    #[error("invalid duration `{text}`: {reason}")]
    #[diagnostic(
        code(drplan::invalid_duration),
        help("write a number and a unit, such as `30s`, `5m`, `1h 30m` or `2days`")
    )]
    InvalidDuration {
        text: String,
        reason: String,
        #[label("not a duration")]
        at: SourceSpan,
    },

    #[error("invalid recovery point `{text}`")]
    #[diagnostic(
        code(drplan::invalid_recovery_point),
        help(
            "use `latest`, `latest-app-consistent`, `latest-processed` or an RFC 3339 time such as `2026-11-02T10:00:00Z`"
        )
    )]
    InvalidRecoveryPoint {
        text: String,
        #[label("not a recovery point")]
        at: SourceSpan,
    },

    #[error("site `{name}` needs `{setting}` for provider `{provider}`")]
    #[diagnostic(code(drplan::missing_site_setting), help("{help}"))]
    MissingSiteSetting {
        name: String,
        setting: &'static str,
        provider: &'static str,
        help: &'static str,
        #[label("set `{setting}` here")]
        at: SourceSpan,
    },

    #[error("`retain` moves {moved} of {of} addresses of {subnet}")]
    #[diagnostic(
        code(drplan::partial_subnet_retained),
        severity(Warning),
        help(
            "kept addresses work only when the whole subnet fails over together, and this plan cannot see machines outside it: a machine left behind would keep an address that now lives at the other site. Put every machine of {subnet} in this plan and set `whole_subnet: true`; or map or `dhcp` the addresses; or validate the plans that share it together (`drplan validate a.yaml b.yaml`) to have them checked against each other"
        )
    )]
    PartialSubnetRetained {
        subnet: String,
        moved: usize,
        of: String,
        #[label("part of this subnet is retained")]
        at: SourceSpan,
    },

    #[error("subnet {subnet} is retained by this plan and by plan `{other_plan}`")]
    #[diagnostic(
        code(drplan::subnet_split),
        help(
            "`{other_file}` keeps the addresses of {other_subnet} (network `{other_network}`) too; a subnet can be routed to one site only, so plans that keep addresses must not share one: move those machines into one plan, or map or `dhcp` the addresses in one of them"
        )
    )]
    SubnetSplit {
        subnet: String,
        other_subnet: String,
        other_plan: String,
        other_file: String,
        other_network: String,
        #[label("also retained by `{other_plan}`")]
        at: SourceSpan,
    },

    #[error("machine id `{id}` is not a plain name")]
    #[diagnostic(
        code(drplan::unsafe_machine_id),
        help(
            "at a `local` site the id names the machine's directory inside the site: one name, without `/`, not `.` or `..`, not starting with `.`"
        )
    )]
    UnsafeMachineId {
        id: String,
        #[label("this would lead outside the site")]
        at: SourceSpan,
    },

    #[error("duplicate mapping for network `{name}`")]
    #[diagnostic(
        code(drplan::duplicate_network_mapping),
        help("each production network maps to exactly one recovery network; merge the two entries")
    )]
    DuplicateNetworkMapping {
        name: String,
        #[label(primary, "mapped again here")]
        at: SourceSpan,
        #[label("first mapped here")]
        first: SourceSpan,
    },

    #[error("duplicate step `{name}` in {scope}")]
    #[diagnostic(
        code(drplan::duplicate_name),
        help("step names make step ids (`{prefix}/before/NAME`); make them unique within the {kind}")
    )]
    DuplicateStep {
        name: String,
        /// "group `db`", or "`phases.shutdown`".
        scope: String,
        /// The step ids' prefix.
        prefix: String,
        /// "group" or "phase".
        kind: &'static str,
        #[label(primary, "defined again here")]
        at: SourceSpan,
        #[label("first defined here")]
        first: SourceSpan,
    },

    #[error("`{value}` must be greater than zero")]
    #[diagnostic(code(drplan::invalid_duration), help("{help}"))]
    ZeroDuration {
        value: String,
        help: &'static str,
        #[label("zero")]
        at: SourceSpan,
    },
}
