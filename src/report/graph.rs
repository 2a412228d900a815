//! The boot-group and step DAG of a plan, as Graphviz dot or a Mermaid flowchart.

use std::fmt::Write as _;

use crate::graph::GroupGraph;
use crate::validate::{GroupSpec, Model, StepKind, StepSpec};

/// At most this many machine names in a group's node; the rest are counted.
const NAMES_SHOWN: usize = 6;

fn machines_label(model: &Model, group: &GroupSpec) -> String {
    let names: Vec<&str> = group.machines.iter().take(NAMES_SHOWN).map(|&m| model.machines[m].name.as_str()).collect();
    let more = group.machines.len().saturating_sub(NAMES_SHOWN);
    let mut label = names.join(", ");
    if more > 0 {
        let _ = write!(label, " … (+{more})");
    }
    label
}

fn step_label(step: &StepSpec) -> String {
    let name = step.id.rsplit('/').next().unwrap_or(&step.id);
    match &step.kind {
        StepKind::Script(s) => format!("▶ {name}: {}", s.argv.join(" ")),
        StepKind::Manual(_) => format!("? {name} (approval)"),
    }
}

/// The nodes of one group in order: before steps, machines, after steps.
fn group_nodes(model: &Model, group: &GroupSpec) -> Vec<(String, String, &'static str)> {
    let mut nodes = Vec::new();
    for step in &group.before {
        nodes.push((step.id.clone(), step_label(step), "step"));
    }
    if !group.machines.is_empty() {
        nodes.push((format!("{}/machines", group.name), machines_label(model, group), "machines"));
    }
    for step in &group.after {
        nodes.push((step.id.clone(), step_label(step), "step"));
    }
    if nodes.is_empty() {
        nodes.push((format!("{}/empty", group.name), "(empty)".into(), "step"));
    }
    nodes
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn to_dot(model: &Model) -> String {
    let graph = GroupGraph::new(model);
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&model.name));
    let _ =
        writeln!(out, "  rankdir=LR;\n  compound=true;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];");
    let mut ends = Vec::new();
    for (g, group) in model.groups.iter().enumerate() {
        let nodes = group_nodes(model, group);
        let _ = writeln!(out, "  subgraph {} {{", quote(&format!("cluster_{}", group.name)));
        let _ = writeln!(out, "    label={};", quote(&format!("group {}", group.name)));
        for (id, label, kind) in &nodes {
            let shape = if *kind == "machines" { "box3d" } else { "note" };
            let _ = writeln!(out, "    {} [label={}, shape={shape}];", quote(id), quote(label));
        }
        for pair in nodes.windows(2) {
            let _ = writeln!(out, "    {} -> {};", quote(&pair[0].0), quote(&pair[1].0));
        }
        let _ = writeln!(out, "  }}");
        ends.push((g, nodes.first().map(|n| n.0.clone()), nodes.last().map(|n| n.0.clone())));
    }
    for (g, first, _) in &ends {
        for dep in graph.dependencies(*g) {
            if let (Some(from), Some(to)) = (&ends[dep].2, first) {
                let _ = writeln!(
                    out,
                    "  {} -> {} [ltail={}, lhead={}];",
                    quote(from),
                    quote(to),
                    quote(&format!("cluster_{}", model.groups[dep].name)),
                    quote(&format!("cluster_{}", model.groups[*g].name))
                );
            }
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid_id(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn mermaid_text(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "#quot;"))
}

pub fn to_mermaid(model: &Model) -> String {
    let graph = GroupGraph::new(model);
    let mut out = String::from("flowchart LR\n");
    for group in &model.groups {
        let nodes = group_nodes(model, group);
        let _ = writeln!(
            out,
            "  subgraph g_{}[{}]",
            mermaid_id(&group.name),
            mermaid_text(&format!("group {}", group.name))
        );
        for (id, label, kind) in &nodes {
            let (open, close) = if *kind == "machines" { ("[", "]") } else { ("([", "])") };
            let _ = writeln!(out, "    n_{}{open}{}{close}", mermaid_id(id), mermaid_text(label));
        }
        for pair in nodes.windows(2) {
            let _ = writeln!(out, "    n_{} --> n_{}", mermaid_id(&pair[0].0), mermaid_id(&pair[1].0));
        }
        out.push_str("  end\n");
    }
    for (g, group) in model.groups.iter().enumerate() {
        for dep in graph.dependencies(g) {
            let _ = writeln!(out, "  g_{} --> g_{}", mermaid_id(&model.groups[dep].name), mermaid_id(&group.name));
        }
    }
    out
}
