//! Checks across plans validated together: what one plan cannot know about the others.

use std::net::IpAddr;

use super::Validation;
use super::error::ValidationError;
use crate::spec::FileDiagnostic;

/// Two plans that both keep the addresses of one subnet (or of overlapping subnets) split it:
/// the routers can send it to one site only. Reported in the later plan, naming the earlier.
pub fn across_plans(validations: &[&Validation]) -> Vec<FileDiagnostic> {
    let mut found = Vec::new();
    let models: Vec<_> = validations.iter().filter_map(|v| v.model.as_ref()).collect();
    for (j, later) in models.iter().enumerate() {
        for earlier in &models[..j] {
            for net in later.networks.iter().filter(|n| n.retain) {
                let Some((addr, prefix, at)) = net.source_subnet else { continue };
                let clash = earlier
                    .networks
                    .iter()
                    .filter(|n| n.retain)
                    .filter_map(|n| n.source_subnet.map(|(a, p, _)| (n, a, p)))
                    .find(|&(_, a, p)| overlap((addr, prefix), (a, p)));
                if let Some((other, a, p)) = clash {
                    found.push(FileDiagnostic::new(
                        later.source.clone(),
                        ValidationError::SubnetSplit {
                            subnet: format!("{addr}/{prefix}"),
                            other_subnet: format!("{a}/{p}"),
                            other_plan: earlier.name.clone(),
                            other_file: earlier.source.path().display().to_string(),
                            other_network: other.source.clone(),
                            at,
                        },
                    ));
                }
            }
        }
    }
    found
}

/// Whether two subnets share any address: the shorter prefix contains the other's network.
fn overlap((a, pa): (IpAddr, u32), (b, pb): (IpAddr, u32)) -> bool {
    let prefix = pa.min(pb);
    let bits = |ip: IpAddr| -> Option<(u128, u32)> {
        match ip {
            IpAddr::V4(v) => Some((u32::from(v) as u128, 32)),
            IpAddr::V6(v) => Some((u128::from(v), 128)),
        }
    };
    match (bits(a), bits(b)) {
        (Some((x, wx)), Some((y, wy))) if wx == wy => {
            prefix == 0 || (x >> (wx - prefix.min(wx))) == (y >> (wy - prefix.min(wy)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_overlap_when_one_contains_the_other() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(overlap((ip("10.0.1.0"), 24), (ip("10.0.1.128"), 25)));
        assert!(overlap((ip("10.0.0.0"), 16), (ip("10.0.1.0"), 24)));
        assert!(!overlap((ip("10.0.1.0"), 24), (ip("10.0.2.0"), 24)));
        assert!(!overlap((ip("10.0.1.0"), 24), (ip("fd00::"), 64)));
    }
}
