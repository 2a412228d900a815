//! Boot groups: membership (every machine in exactly one group), dependencies and cycles.

use std::collections::{HashMap, VecDeque};

use miette::{LabeledSpan, SourceSpan};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::checker::{Checker, NameTable};
use super::error::ValidationError;
use super::model::{GroupId, MachineId};
use crate::spec::{PlanDocument, span_of};

/// Group membership and dependencies, resolved to indices.
pub(super) struct Groups {
    pub members: Vec<Vec<MachineId>>,
    pub machine_group: Vec<GroupId>,
    pub depends_on: Vec<Vec<GroupId>>,
}

pub(super) fn check_groups(
    cx: &mut Checker,
    doc: &PlanDocument,
    machines: &NameTable,
    groups: &NameTable,
) -> Option<Groups> {
    let mut ok = true;
    let mut members = Vec::with_capacity(doc.groups.len());
    // machine -> (group, span of the first listing)
    let mut placed: HashMap<MachineId, (GroupId, SourceSpan)> = HashMap::new();
    for (g, group) in doc.groups.iter().enumerate() {
        let mut list = Vec::with_capacity(group.machines.len());
        for reference in &group.machines {
            let Some(m) =
                machines.resolve(cx, reference, |name, at, help| ValidationError::UnknownMachine { name, at, help })
            else {
                ok = false;
                continue;
            };
            match placed.get(&m) {
                Some(&(_, first)) => {
                    ok = false;
                    cx.report(ValidationError::MachineInTwoGroups {
                        name: reference.value.clone(),
                        at: span_of(reference),
                        first,
                    });
                }
                None => {
                    placed.insert(m, (g, span_of(reference)));
                    list.push(m);
                }
            }
        }
        members.push(list);
    }
    let mut machine_group = vec![0; doc.machines.len()];
    for (m, machine) in doc.machines.iter().enumerate() {
        match placed.get(&m) {
            Some(&(g, _)) => machine_group[m] = g,
            // A duplicate machine name is reported once, as a duplicate.
            None if machines.get(&machine.name.value) == Some(m) => {
                ok = false;
                cx.report(ValidationError::MachineNotInGroup {
                    name: machine.name.value.clone(),
                    at: span_of(&machine.name),
                });
            }
            None => ok = false,
        }
    }

    let depends_on = check_dependencies(cx, doc, groups)?;
    ok.then_some(Groups { members, machine_group, depends_on })
}

/// Why one group waits for another: an explicit `depends_on` entry or the default.
#[derive(Clone, Copy)]
enum Because {
    Listed(SourceSpan),
    Previous(SourceSpan),
}

fn check_dependencies(cx: &mut Checker, doc: &PlanDocument, groups: &NameTable) -> Option<Vec<Vec<GroupId>>> {
    let mut ok = true;
    let mut graph: DiGraph<GroupId, Because> = DiGraph::with_capacity(doc.groups.len(), doc.groups.len());
    let nodes: Vec<NodeIndex> = (0..doc.groups.len()).map(|g| graph.add_node(g)).collect();
    let mut depends_on = Vec::with_capacity(doc.groups.len());
    for (g, group) in doc.groups.iter().enumerate() {
        let mut deps = Vec::new();
        match &group.depends_on {
            None if g > 0 => {
                deps.push(g - 1);
                graph.add_edge(nodes[g], nodes[g - 1], Because::Previous(span_of(&group.name)));
            }
            None => {}
            Some(list) => {
                for reference in list {
                    let resolved = groups.resolve(cx, reference, |name, at, help| ValidationError::UnknownGroup {
                        name,
                        at,
                        help,
                    });
                    match resolved {
                        Some(d) if !deps.contains(&d) => {
                            deps.push(d);
                            graph.add_edge(nodes[g], nodes[d], Because::Listed(span_of(reference)));
                        }
                        Some(_) => {}
                        None => ok = false,
                    }
                }
            }
        }
        depends_on.push(deps);
    }

    let mut cycles: Vec<Vec<NodeIndex>> =
        tarjan_scc(&graph).into_iter().filter(|scc| scc.len() > 1 || graph.contains_edge(scc[0], scc[0])).collect();
    // Report in document order, whatever order tarjan finds them in.
    for scc in &mut cycles {
        scc.sort_by_key(|n| graph[*n]);
    }
    cycles.sort_by_key(|scc| graph[scc[0]]);
    for scc in cycles {
        ok = false;
        cx.report(describe_cycle(doc, &graph, &scc));
    }
    ok.then_some(depends_on)
}

/// At most this many links of a cycle are labelled and named; the rest are counted (a cycle
/// through ten thousand groups must not take minutes to show).
const CYCLE_SHOWN: usize = 12;

/// Find one concrete cycle through the component's first group and label each link.
fn describe_cycle(doc: &PlanDocument, graph: &DiGraph<GroupId, Because>, scc: &[NodeIndex]) -> ValidationError {
    let start = scc[0];
    let members: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
    // Breadth-first from `start` along "waits for" edges, staying inside the component.
    let mut came_from: HashMap<NodeIndex, (NodeIndex, Because)> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    let mut closing = None;
    'search: while let Some(node) = queue.pop_front() {
        for edge in graph.edges(node) {
            use petgraph::visit::EdgeRef;
            let next = edge.target();
            if next == start {
                closing = Some((node, *edge.weight()));
                break 'search;
            }
            if members.contains(&next) && !came_from.contains_key(&next) {
                came_from.insert(next, (node, *edge.weight()));
                queue.push_back(next);
            }
        }
    }
    // Walk back from the closing edge to rebuild the path start -> ... -> start.
    let mut links = Vec::new();
    if let Some((last, because)) = closing {
        links.push((last, start, because));
        let mut node = last;
        while node != start {
            let (prev, because) = came_from[&node];
            links.push((prev, node, because));
            node = prev;
        }
    }
    links.reverse();

    let name = |n: NodeIndex| doc.groups[graph[n]].name.value.as_str();
    let mut path: Vec<&str> = links.iter().take(CYCLE_SHOWN).map(|(from, _, _)| name(*from)).collect();
    let mut cycle = path.drain(..).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" → ");
    if links.len() > CYCLE_SHOWN {
        cycle.push_str(&format!(" → … ({} more)", links.len() - CYCLE_SHOWN));
    }
    cycle.push_str(&format!(" → `{}` (each waits for the next)", name(start)));
    let in_path: std::collections::HashSet<NodeIndex> = links.iter().map(|(from, _, _)| *from).collect();
    let others: Vec<String> =
        scc.iter().filter(|n| !in_path.contains(n)).take(CYCLE_SHOWN).map(|n| format!("`{}`", name(*n))).collect();
    let more_others = scc.len() - in_path.len() - others.len();
    if !others.is_empty() {
        let more = if more_others > 0 { format!(" and {more_others} more") } else { String::new() };
        cycle.push_str(&format!(" (also caught in the cycle: {}{more})", others.join(", ")));
    }
    let labels = links
        .iter()
        .take(CYCLE_SHOWN)
        .map(|&(from, to, because)| match because {
            Because::Listed(at) => {
                LabeledSpan::new_with_span(Some(format!("`{}` waits for `{}`", name(from), name(to))), at)
            }
            Because::Previous(at) => LabeledSpan::new_with_span(
                Some(format!("`{}` waits for the previous group `{}` (no `depends_on`)", name(from), name(to))),
                at,
            ),
        })
        .collect();
    ValidationError::DependencyCycle { cycle, links: labels }
}
