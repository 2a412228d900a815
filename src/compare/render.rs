//! A comparison for people (terminal, pull-request comment) and for programs.

use std::fmt::Write as _;

use super::{Comparison, Section};

/// For a terminal: the headline, then each section's changes with a sign.
pub fn human(c: &Comparison, old: &str, new: &str) -> String {
    let mut out = format!("drplan diff {old} → {new}\n");
    if let Some(headline) = &c.headline {
        let _ = writeln!(out, "\n{headline}");
    }
    if c.changes.is_empty() {
        out.push_str("\nNo changes.\n");
        return out;
    }
    let mut section = None;
    for change in &c.changes {
        if section != Some(change.section()) {
            section = Some(change.section());
            let _ = writeln!(out, "\n{}", change.section().title());
        }
        let _ = writeln!(out, "  {} {}", change.sign(), change.describe().replace('`', ""));
    }
    let _ = writeln!(out, "\n{}", counts(c));
    out
}

/// For a pull-request comment or a job summary.
pub fn markdown(c: &Comparison, old: &str, new: &str) -> String {
    let mut out = format!("### drplan diff: `{old}` → `{new}`\n\n");
    match &c.headline {
        Some(headline) => {
            let _ = writeln!(out, "**{headline}**");
        }
        None => out.push_str("No machine changes site.\n"),
    }
    if c.changes.is_empty() {
        out.push_str("\nNo changes.\n");
        return out;
    }
    let mut section: Option<Section> = None;
    for change in &c.changes {
        if section != Some(change.section()) {
            section = Some(change.section());
            let _ = writeln!(out, "\n#### {}\n", change.section().title());
        }
        let sign = match change.sign() {
            "+" => "➕",
            "-" => "➖",
            "↕" => "↕️",
            _ => "✏️",
        };
        let _ = writeln!(out, "- {sign} {}", change.describe());
    }
    let _ = writeln!(out, "\n{}", counts(c));
    out
}

pub fn json(c: &Comparison, old: &str, new: &str) -> String {
    let value = serde_json::json!({ "old": old, "new": new, "headline": c.headline, "changes": c.changes });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn counts(c: &Comparison) -> String {
    let count = |sign: &str| c.changes.iter().filter(|ch| ch.sign() == sign).count();
    format!(
        "{} changes: {} added, {} removed, {} moved, {} changed.",
        c.changes.len(),
        count("+"),
        count("-"),
        count("↕"),
        count("~")
    )
}
