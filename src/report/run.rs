//! A finished (or paused) run for people: outcome, measured RTO per group, data loss, failures.

use std::fmt::Write as _;
use std::time::Duration;

use super::style::{Color, Painter};
use crate::exec::run_report::RunReport;
use crate::spec::time_format::{human_bytes, human_duration};

pub fn render_summary(report: &RunReport, p: Painter) -> String {
    let mut out = String::new();
    let took = report.finished_at.duration_since(report.started_at).unwrap_or_default();
    let route = match (&report.from, &report.to) {
        (Some(f), Some(t)) => format!(" {f} → {t}"),
        _ => String::new(),
    };
    let status = match report.status.as_str() {
        "succeeded" => p.paint("succeeded", Color::Green),
        "paused" => p.paint("paused", Color::Magenta),
        other => p.paint(other, Color::Red),
    };
    let mut title = report.kind.title().to_string();
    if let Some(first) = title.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    let _ = writeln!(out, "\n{title} of `{}`{route}: {status} after {}.", report.plan, human_duration(took));
    let mut counts: Vec<(String, usize)> = Vec::new();
    for step in &report.steps {
        match counts.iter_mut().find(|(s, _)| *s == step.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((step.status.clone(), 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let _ = writeln!(out, "  {}: {}", super::style::plural(report.steps.len(), "step", "steps"), counts.join(", "));
    if let Some(rto) = &report.rto {
        let verdict = if rto.met { p.paint("met", Color::Green) } else { p.paint("MISSED", Color::Red) };
        let _ = writeln!(
            out,
            "  RTO measured {} (objective {}: {verdict})",
            human_duration(Duration::from_millis(rto.measured_ms)),
            human_duration(Duration::from_millis(rto.objective_ms))
        );
        for g in &rto.groups {
            if g.up {
                let _ = writeln!(
                    out,
                    "    group {:<16} up after {}",
                    g.group,
                    human_duration(Duration::from_millis(g.ready_ms))
                );
            } else {
                let _ = writeln!(
                    out,
                    "    group {:<16} {}: {} did not succeed",
                    g.group,
                    p.paint("NOT UP", Color::Red),
                    g.failed.join(", ")
                );
            }
        }
    }
    if let Some(loss) = &report.data_loss {
        let verdict = if loss.within_rpo { p.paint("met", Color::Green) } else { p.paint("MISSED", Color::Red) };
        let text = if loss.max_time_ms == 0 && loss.total_bytes.unwrap_or(0) == 0 {
            "none".to_string()
        } else {
            let bytes = loss.total_bytes.map(|b| format!(", {} in all", human_bytes(b))).unwrap_or_default();
            format!("up to {}{bytes}", human_duration(Duration::from_millis(loss.max_time_ms)))
        };
        let _ = writeln!(
            out,
            "  Data loss: {text} (RPO {}: {verdict})",
            human_duration(Duration::from_millis(report.objectives.rpo_ms))
        );
    }
    let failed: Vec<_> = report.steps.iter().filter(|s| s.status == "failed" || s.status == "interrupted").collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "  {}", p.paint("Failed steps:", Color::Red));
        for s in failed {
            let _ = writeln!(out, "    ✗ {}: {}", s.id, s.error.clone().unwrap_or_default());
        }
    }
    for a in &report.approvals {
        let _ = writeln!(out, "  Approved {} by {} at {}", a.step, a.by, humantime::format_rfc3339_seconds(a.at));
    }
    out
}
