//! Network mappings, drill-network isolation, and the addresses machines get after failover.

use std::collections::HashMap;
use std::net::IpAddr;

use miette::SourceSpan;
use serde_saphyr::Spanned;

use super::checker::Checker;
use super::error::ValidationError;
use super::model::{NetworkSpec, NicSpec, TargetAddress};
use crate::spec::{AddressPolicy, Machine, NetworkMapping, PlanDocument, span_of, suggest};

/// The mappings of a plan, indexed by production (source) network.
pub(super) struct Networks<'d> {
    pub specs: Vec<NetworkSpec>,
    mappings: Vec<&'d NetworkMapping>,
    by_source: HashMap<&'d str, usize>,
    source_subnets: Vec<Option<Subnet>>,
    target_subnets: Vec<Option<Subnet>>,
    /// Parsed `map` entries per mapping: source ip -> (target ip, span of the entry's value).
    address_maps: Vec<HashMap<IpAddr, (IpAddr, SourceSpan)>>,
}

pub(super) fn check_networks<'d>(cx: &mut Checker, doc: &'d PlanDocument) -> Networks<'d> {
    let mut nets = Networks {
        specs: Vec::new(),
        mappings: Vec::new(),
        by_source: HashMap::new(),
        source_subnets: Vec::new(),
        target_subnets: Vec::new(),
        address_maps: Vec::new(),
    };
    // Every production network name, source or target side, with its first occurrence.
    let mut production: HashMap<&str, SourceSpan> = HashMap::new();
    for mapping in &doc.networks {
        cx.check_name("network", &mapping.source);
        cx.check_name("network", &mapping.target);
        cx.check_name("network", &mapping.test);
        production.entry(&mapping.source.value).or_insert(span_of(&mapping.source));
        production.entry(&mapping.target.value).or_insert(span_of(&mapping.target));
    }
    for mapping in &doc.networks {
        if let Some(&production_at) = production.get(mapping.test.value.as_str()) {
            cx.report(ValidationError::TestNetworkNotIsolated {
                name: mapping.test.value.clone(),
                at: span_of(&mapping.test),
                production: production_at,
            });
        }
        if let Some(&first) = nets.by_source.get(mapping.source.value.as_str()) {
            cx.report(ValidationError::DuplicateNetworkMapping {
                name: mapping.source.value.clone(),
                at: span_of(&mapping.source),
                first: span_of(&nets.mappings[first].source),
            });
            continue;
        }
        nets.by_source.insert(&mapping.source.value, nets.specs.len());
        let source_subnet = mapping.source_subnet.as_ref().and_then(|s| Subnet::parse(cx, s));
        nets.specs.push(NetworkSpec {
            source: mapping.source.value.clone(),
            target: mapping.target.value.clone(),
            test: mapping.test.value.clone(),
            retain: matches!(mapping.addresses.as_ref().map(|a| &a.value), None | Some(AddressPolicy::Retain)),
            source_subnet: source_subnet.as_ref().map(|s| (s.network, s.prefix, s.at)),
        });
        nets.mappings.push(mapping);
        nets.source_subnets.push(source_subnet);
        nets.target_subnets.push(mapping.target_subnet.as_ref().and_then(|s| Subnet::parse(cx, s)));
        let mut address_map = HashMap::new();
        if let Some(Spanned { value: AddressPolicy::Map(entries), .. }) = &mapping.addresses {
            for (from, to) in entries.iter() {
                if let (Some(from_ip), Some(to_ip)) = (parse_ip(cx, from), parse_ip(cx, to)) {
                    address_map.insert(from_ip, (to_ip, span_of(to)));
                }
            }
        }
        nets.address_maps.push(address_map);
    }
    nets
}

/// Resolve every machine's NICs: mapped network, source address, address after failover.
/// Also checks subnet membership, duplicate target addresses and unused map entries.
pub(super) fn check_nics(cx: &mut Checker, machines: &[Machine], nets: &Networks) -> Option<Vec<Vec<NicSpec>>> {
    let mut all = Vec::with_capacity(machines.len());
    let mut ok = true;
    // (target network, address) -> where it was first assigned.
    let mut assigned: HashMap<(&str, IpAddr), SourceSpan> = HashMap::new();
    let mut used_map_entries: Vec<Vec<IpAddr>> = vec![Vec::new(); nets.specs.len()];
    for machine in machines {
        let mut nics = Vec::with_capacity(machine.nics.len());
        for nic in &machine.nics {
            let Some(&network) = nets.by_source.get(nic.network.value.as_str()) else {
                ok = false;
                cx.report(ValidationError::UnmappedNetwork {
                    name: nic.network.value.clone(),
                    at: span_of(&nic.network),
                    help: unmapped_help(&nic.network.value, nets),
                });
                continue;
            };
            let ip = nic.ip.as_ref().map(|t| (parse_ip(cx, t), span_of(t)));
            let target_override = nic.target_ip.as_ref().map(|t| (parse_ip(cx, t), span_of(t)));
            if ip.as_ref().is_some_and(|(p, _)| p.is_none())
                || target_override.as_ref().is_some_and(|(p, _)| p.is_none())
            {
                ok = false;
                continue;
            }
            let ip = ip.map(|(p, s)| (p.expect("checked above"), s));
            let target_override = target_override.map(|(p, s)| (p.expect("checked above"), s));

            if let (Some((addr, at)), Some(subnet)) = (ip, &nets.source_subnets[network])
                && !subnet.contains(addr)
            {
                cx.report(subnet.outside(addr, at));
            }

            let policy = nets.mappings[network].addresses.as_ref().map(|a| &a.value);
            let mapped = ip.and_then(|(addr, _)| nets.address_maps[network].get(&addr).map(|&m| (addr, m)));
            let (target, target_at) = match (target_override, policy, ip) {
                (Some((addr, at)), _, _) => (TargetAddress::Static(addr), Some(at)),
                (None, Some(AddressPolicy::Dhcp), _) => (TargetAddress::Dhcp, None),
                (None, Some(AddressPolicy::Map(_)), Some(_)) if mapped.is_some() => {
                    let (source_addr, (addr, at)) = mapped.expect("matched above");
                    used_map_entries[network].push(source_addr);
                    (TargetAddress::Static(addr), Some(at))
                }
                // Retain (also for addresses a map does not mention).
                (None, _, Some((addr, at))) => (TargetAddress::Static(addr), Some(at)),
                (None, _, None) => (TargetAddress::Dhcp, None),
            };
            if let (TargetAddress::Static(addr), Some(at)) = (target, target_at) {
                if let Some(subnet) = &nets.target_subnets[network]
                    && !subnet.contains(addr)
                {
                    cx.report(subnet.outside(addr, at));
                }
                let target_network = nets.specs[network].target.as_str();
                match assigned.get(&(target_network, addr)) {
                    Some(&first) => cx.report(ValidationError::DuplicateTargetIp {
                        ip: addr.to_string(),
                        network: target_network.to_string(),
                        at,
                        first,
                    }),
                    None => {
                        assigned.insert((target_network, addr), at);
                    }
                }
            }
            nics.push(NicSpec { network, ip: ip.map(|(a, _)| a), target });
        }
        all.push(nics);
    }
    check_retained_subnets(cx, nets, machines);
    for (network, mapping) in nets.mappings.iter().enumerate() {
        if let Some(Spanned { value: AddressPolicy::Map(entries), .. }) = &mapping.addresses {
            for (from, _) in entries.iter() {
                if let Ok(addr) = from.value.trim().parse::<IpAddr>()
                    && !used_map_entries[network].contains(&addr)
                {
                    cx.report(ValidationError::UnusedAddressMapEntry {
                        ip: from.value.clone(),
                        network: mapping.source.value.clone(),
                        at: span_of(from),
                    });
                }
            }
        }
    }
    ok.then_some(all)
}

/// `retain` keeps addresses only when the whole subnet fails over together. One plan cannot
/// see machines outside it: when it moves fewer addresses than the subnet holds and does not
/// say it holds all of them (`whole_subnet: true`), that is worth a warning.
fn check_retained_subnets(cx: &mut Checker, nets: &Networks, machines: &[Machine]) {
    for (network, mapping) in nets.mappings.iter().enumerate() {
        let Some(subnet) = &nets.source_subnets[network] else { continue };
        if !nets.specs[network].retain || mapping.whole_subnet {
            continue;
        }
        let mut moved: Vec<IpAddr> = machines
            .iter()
            .flat_map(|m| &m.nics)
            .filter(|nic| nic.network.value == mapping.source.value)
            .filter_map(|nic| nic.ip.as_ref()?.value.trim().parse().ok())
            .filter(|ip| subnet.contains(*ip))
            .collect();
        moved.sort_unstable();
        moved.dedup();
        let hosts = subnet.host_count();
        if hosts.is_some_and(|h| moved.len() as u128 >= h) {
            continue;
        }
        let of = hosts.map_or_else(|| "the".to_string(), |h| format!("the {h}"));
        cx.report(ValidationError::PartialSubnetRetained {
            subnet: subnet.text.clone(),
            moved: moved.len(),
            of,
            at: subnet.at,
        });
    }
}

fn unmapped_help(name: &str, nets: &Networks) -> String {
    if let Some(m) = nets.mappings.iter().find(|m| m.target.value == name || m.test.value == name) {
        let role = if m.target.value == name { "recovery" } else { "drill" };
        return format!(
            "`{name}` is the {role} network of the mapping for `{}`; a NIC names its production network",
            m.source.value
        );
    }
    match suggest::closest(name, nets.specs.iter().map(|s| s.source.as_str())) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("add a mapping: `networks: [{{ source: {name}, target: ..., test: ... }}]`"),
    }
}

fn parse_ip(cx: &mut Checker, text: &Spanned<String>) -> Option<IpAddr> {
    match text.value.trim().parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            cx.report(ValidationError::InvalidIp { text: text.value.clone(), at: span_of(text) });
            None
        }
    }
}

/// A CIDR subnet, for membership checks.
struct Subnet {
    network: IpAddr,
    prefix: u32,
    text: String,
    at: SourceSpan,
}

impl Subnet {
    fn parse(cx: &mut Checker, text: &Spanned<String>) -> Option<Subnet> {
        let parsed = text.value.trim().split_once('/').and_then(|(addr, prefix)| {
            let network: IpAddr = addr.parse().ok()?;
            let prefix: u32 = prefix.parse().ok()?;
            let max = if network.is_ipv4() { 32 } else { 128 };
            (prefix <= max).then_some((network, prefix))
        });
        match parsed {
            Some((network, prefix)) => Some(Subnet { network, prefix, text: text.value.clone(), at: span_of(text) }),
            None => {
                cx.report(ValidationError::InvalidSubnet { text: text.value.clone(), at: span_of(text) });
                None
            }
        }
    }

    /// Usable host addresses of an IPv4 subnet (none to count for IPv6: effectively unbounded).
    fn host_count(&self) -> Option<u128> {
        match self.network {
            IpAddr::V4(_) if self.prefix >= 31 => Some(1u128 << (32 - self.prefix)),
            IpAddr::V4(_) => Some((1u128 << (32 - self.prefix)) - 2),
            IpAddr::V6(_) => None,
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, width: u32, prefix: u32) -> u128 {
            if prefix == 0 { 0 } else { bits >> (width - prefix) }
        }
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n) as u128, 32, self.prefix) == masked(u32::from(a) as u128, 32, self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), 128, self.prefix) == masked(u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }

    fn outside(&self, ip: IpAddr, at: SourceSpan) -> ValidationError {
        ValidationError::IpOutsideSubnet { ip: ip.to_string(), subnet: self.text.clone(), at, subnet_at: self.at }
    }
}
