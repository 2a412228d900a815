//! The boot-group DAG of a validated plan: which group waits for which, and in what order
//! they can run. Validation guarantees it is acyclic.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::validate::{GroupId, Model};

/// Edges point from a group to the groups that wait for it.
#[derive(Debug, Clone)]
pub struct GroupGraph {
    graph: DiGraph<GroupId, ()>,
    nodes: Vec<NodeIndex>,
}

impl GroupGraph {
    pub fn new(model: &Model) -> Self {
        let mut graph = DiGraph::with_capacity(model.groups.len(), model.groups.len());
        let nodes: Vec<NodeIndex> = (0..model.groups.len()).map(|g| graph.add_node(g)).collect();
        for (g, group) in model.groups.iter().enumerate() {
            for &dep in &group.depends_on {
                graph.add_edge(nodes[dep], nodes[g], ());
            }
        }
        GroupGraph { graph, nodes }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The groups `g` waits for.
    pub fn dependencies(&self, g: GroupId) -> Vec<GroupId> {
        self.neighbours(g, Direction::Incoming)
    }

    /// The groups that wait for `g`.
    pub fn dependents(&self, g: GroupId) -> Vec<GroupId> {
        self.neighbours(g, Direction::Outgoing)
    }

    fn neighbours(&self, g: GroupId, direction: Direction) -> Vec<GroupId> {
        let mut out: Vec<GroupId> =
            self.graph.neighbors_directed(self.nodes[g], direction).map(|n| self.graph[n]).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// A topological order that prefers document order among ready groups, so output is
    /// stable and reads like the plan.
    pub fn boot_order(&self) -> Vec<GroupId> {
        let mut waiting: Vec<usize> =
            self.nodes.iter().map(|&n| self.graph.neighbors_directed(n, Direction::Incoming).count()).collect();
        let mut ready: BinaryHeap<Reverse<GroupId>> =
            (0..self.nodes.len()).filter(|&g| waiting[g] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(Reverse(g)) = ready.pop() {
            order.push(g);
            for next in self.graph.neighbors_directed(self.nodes[g], Direction::Outgoing) {
                let n = self.graph[next];
                waiting[n] -= 1;
                if waiting[n] == 0 {
                    ready.push(Reverse(n));
                }
            }
        }
        debug_assert_eq!(order.len(), self.nodes.len(), "validation rejects cycles");
        order
    }

    /// The order machines shut down in: dependents before the groups they wait for.
    pub fn shutdown_order(&self) -> Vec<GroupId> {
        let mut order = self.boot_order();
        order.reverse();
        order
    }

    /// Groups with nothing to wait for.
    pub fn roots(&self) -> Vec<GroupId> {
        (0..self.nodes.len()).filter(|&g| self.dependencies(g).is_empty()).collect()
    }
}
