//! An action plan for people: phases, boot groups and a summary, Terraform-like.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::style::{Color, Painter};
use crate::contract::ProviderOp;
use crate::contract::{Power, SyncMode};
use crate::diff::MachineDiff;
use crate::planner::{Action, ActionKind, ActionPlan, FailurePolicy, Phase, RunKind};
use crate::spec::OnFailure;
use crate::spec::time_format::{human_bytes, human_duration};

pub fn render(plan: &ActionPlan, painter: Painter) -> String {
    let mut out = String::new();
    let p = painter;
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "{} `{}` matches its target: nothing to do.",
            p.paint("No changes.", Color::Green),
            plan.plan
        );
        return out;
    }
    if let Some(run) = &plan.pending.run {
        out.push_str(&unfinished(run, &plan.plan, p));
    }
    if !plan.has_actions() {
        let _ = writeln!(
            out,
            "{} `{}` has not reached its target:",
            p.paint("Nothing to execute now, but", Color::Yellow),
            plan.plan
        );
        out.push_str(&pending(plan, p));
        return out;
    }
    let _ = writeln!(out, "{}", headline(plan, p));
    let _ = writeln!(out);

    let diffs: HashMap<&str, &MachineDiff> = plan.machines.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut phase_number = 0;
    let mut phases: Vec<Phase> = plan.actions.iter().filter(|a| visible(a)).map(|a| a.phase).collect();
    phases.sort();
    phases.dedup();
    for phase in phases {
        phase_number += 1;
        let _ = writeln!(out, "{}", p.paint(&format!("{phase_number}. {}", phase_title(plan, phase)), Color::Bold));
        for action in plan.actions.iter().filter(|a| a.phase == phase) {
            if let ActionKind::Barrier = action.kind {
                if matches!(phase, Phase::Boot | Phase::Drill)
                    && let Some(group) = action.id.strip_prefix("begin/")
                {
                    let waits: Vec<&str> = action.after.iter().filter_map(|a| a.strip_prefix("done/")).collect();
                    let after = if waits.is_empty() { String::new() } else { format!(" (after {})", waits.join(", ")) };
                    let _ = writeln!(
                        out,
                        "   {}{}",
                        p.paint(&format!("group {group}"), Color::Bold),
                        p.paint(&after, Color::Dim)
                    );
                }
                continue;
            }
            let indent = if matches!(phase, Phase::Boot | Phase::Drill) { "     " } else { "   " };
            let _ = writeln!(out, "{indent}{}", line(action, &diffs, p));
        }
        let _ = writeln!(out);
    }

    if !plan.drift.is_empty() {
        let _ = writeln!(out, "{}", p.paint("Drift at the live copies (review before failing back):", Color::Bold));
        for drift in &plan.drift {
            for l in drift.diff.lines() {
                let colored = if l.starts_with('+') && !l.starts_with("+++") {
                    p.paint(l, Color::Green)
                } else if l.starts_with('-') && !l.starts_with("---") {
                    p.paint(l, Color::Red)
                } else {
                    l.to_string()
                };
                let _ = writeln!(out, "   {colored}");
            }
        }
        let _ = writeln!(out);
    }
    if !plan.pending.commits.is_empty() || !plan.pending.unprotected.is_empty() || !plan.pending.claimed.is_empty() {
        let _ = writeln!(out, "{}", p.paint("Still pending after this plan:", Color::Bold));
        out.push_str(&pending(plan, p));
        let _ = writeln!(out);
    }
    out.push_str(&summary(plan, p));
    out
}

/// The unfinished run that `apply` would continue, and how far it got.
fn unfinished(run: &crate::planner::PendingRun, plan: &str, p: Painter) -> String {
    let mut out = String::new();
    let waits = if run.awaiting.is_empty() {
        String::new()
    } else {
        format!(", waiting for approval of {}", run.awaiting.join(", "))
    };
    let _ = writeln!(
        out,
        "{} {} run {} of `{plan}` is {}{waits}: {} of {} done.",
        p.paint("Unfinished:", Color::Magenta),
        run.kind,
        crate::state::short_id(&run.id),
        run.status,
        run.steps_done,
        super::style::plural(run.steps_total, "step", "steps")
    );
    if run.same_document {
        let _ = writeln!(out, "`drplan apply` (or `drplan resume`) continues it; these are its steps:\n");
    } else {
        let _ = writeln!(
            out,
            "The plan document changed since it started: `drplan resume` continues it, `drplan cancel` abandons it; `drplan apply` refuses until then. Its steps:\n"
        );
    }
    out
}

/// Commits that wait for `drplan commit`, machines left unprotected and machines another
/// plan manages, one line each.
fn pending(plan: &ActionPlan, p: Painter) -> String {
    let mut out = String::new();
    for machine in &plan.pending.commits {
        let _ = writeln!(
            out,
            "   {} {machine}: its failover awaits `drplan commit` (commit: manual)",
            p.paint("…", Color::Yellow)
        );
    }
    for u in &plan.pending.unprotected {
        let _ = writeln!(out, "   {} {}: not protected: {}", p.paint("!", Color::Red), u.machine, u.reason);
    }
    for c in &plan.pending.claimed {
        let _ = writeln!(
            out,
            "   {} {}: managed by {} since {}: apply refuses until one of the plans lets it go",
            p.paint("!", Color::Red),
            c.machine,
            c.owner,
            humantime::format_rfc3339_seconds(c.since)
        );
    }
    out
}

fn visible(action: &Action) -> bool {
    !matches!(action.kind, ActionKind::Barrier)
        || (matches!(action.phase, Phase::Boot | Phase::Drill) && action.id.starts_with("begin/"))
}

fn headline(plan: &ActionPlan, p: Painter) -> String {
    let route = match (&plan.from, &plan.to) {
        (Some(from), Some(to)) => format!(": {from} → {to}"),
        _ => String::new(),
    };
    let policy = match plan.policy {
        FailurePolicy::Stop => "stops at the first error; re-running continues",
        FailurePolicy::Continue => "continues past errors and reports them all",
    };
    let what = match plan.run {
        RunKind::Converge => format!("converge `{}` (protection, commits, power)", plan.plan),
        other => {
            let title = other.title();
            let article = if title.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
            format!("perform {article} {} of `{}`{route}", p.paint(title, Color::Bold), plan.plan)
        }
    };
    format!("drplan will {what} ({policy}).")
}

fn phase_title(plan: &ActionPlan, phase: Phase) -> String {
    let at = |s: &Option<String>| s.clone().unwrap_or_default();
    match phase {
        Phase::Shutdown => format!("Shut down at {}, in reverse group order", at(&plan.from)),
        Phase::PreSync => format!("Sync {} → {} while the machines keep running", at(&plan.from), at(&plan.to)),
        Phase::Gate => "Complete the failover (approval)".into(),
        Phase::FinalSync => format!("Final sync {} → {}", at(&plan.from), at(&plan.to)),
        Phase::Failover => format!("Fail over to {}", at(&plan.to)),
        Phase::Boot => "Boot groups in order".into(),
        Phase::Commit => "Commit".into(),
        Phase::Protect => "Protect".into(),
        Phase::Drill => format!("Test copies at {}, in group order, on the isolated drill networks", at(&plan.to)),
        Phase::Cleanup => "Remove the drill's test copies".into(),
    }
}

fn line(action: &Action, diffs: &HashMap<&str, &MachineDiff>, p: Painter) -> String {
    let (symbol, color, verb, detail) = match &action.kind {
        ActionKind::Provider { op } => provider_line(op, diffs),
        ActionKind::Script { run, timeout, retries, .. } => {
            let mut extras = vec![format!("timeout {}", human_duration(*timeout))];
            extras.push(match action.on_failure {
                OnFailure::Stop => "on failure stop".into(),
                OnFailure::Continue => "on failure continue".into(),
            });
            if *retries > 0 {
                extras.push(super::style::plural(*retries as usize, "retry", "retries"));
            }
            ("▶", Color::Blue, "run", format!("{}: {} ({})", action.id, run.join(" "), extras.join(", ")))
        }
        ActionKind::Manual { prompt, approvers } => {
            let who =
                if approvers.is_empty() { String::new() } else { format!(" (approvers: {})", approvers.join(", ")) };
            ("?", Color::Magenta, "approve", format!("{}: \"{prompt}\"{who}", action.id))
        }
        ActionKind::Barrier => (" ", Color::Dim, "", action.id.clone()),
    };
    format!("{} {verb:<10} {detail}", p.paint(symbol, color))
}

fn provider_line(op: &ProviderOp, diffs: &HashMap<&str, &MachineDiff>) -> (&'static str, Color, &'static str, String) {
    let diff = diffs.get(op.machine());
    let bytes = diff.and_then(|d| d.transfer_bytes).map(|b| format!(", ≈ {}", human_bytes(b))).unwrap_or_default();
    match op {
        ProviderOp::EnableProtection { machine, from, to } => {
            ("+", Color::Green, "protect", format!("{machine} {from} → {to} (initial replication)"))
        }
        ProviderOp::TakePoint { machine, from, to } => ("+", Color::Green, "point", format!("{machine} {from} → {to}")),
        ProviderOp::Shutdown { machine, site, .. } => ("-", Color::Red, "shut down", format!("{machine} at {site}")),
        ProviderOp::Start { machine, site, nics, .. } => {
            let nics = if nics.is_empty() { String::new() } else { format!(" on {}", list(nics)) };
            let booting = diff.is_some_and(|d| d.power == Some(Power::Booting) && d.current.as_ref() == Some(site));
            let wait = if booting { " (already running: waits for its guest to come up)" } else { "" };
            ("+", Color::Green, "start", format!("{machine} at {site}{nics}{wait}"))
        }
        ProviderOp::Sync { machine, from, to, mode, final_sync } => {
            let kind = match (mode, final_sync) {
                (SyncMode::Delta, true) => "final delta",
                (SyncMode::Full, true) => "full copy",
                (SyncMode::Delta, false) => "delta, machines running",
                (SyncMode::Full, false) => "full copy, machines running",
            };
            ("~", Color::Yellow, "sync", format!("{machine} {from} → {to} ({kind}{bytes})"))
        }
        ProviderOp::Failover { machine, from, to, point, prefer_synced, nics } => {
            let source = match (point, diff.and_then(|d| d.point.as_ref())) {
                (None, _) => "from the final sync (no data loss)".to_string(),
                (Some(id), Some(rp)) => {
                    let loss = diff.and_then(|d| d.expected_loss).map_or_else(String::new, |l| {
                        let bytes = l.bytes.map(|b| format!(" and {}", human_bytes(b))).unwrap_or_default();
                        format!(", loses up to {}{bytes}", human_duration(l.time))
                    });
                    let kind = match rp.consistency {
                        crate::contract::Consistency::App => "app-consistent",
                        crate::contract::Consistency::Crash => "crash-consistent",
                    };
                    let preferred = if *prefer_synced { "the final sync if it completes, else " } else { "" };
                    format!("from {preferred}point {id} ({}, {kind}{loss})", humantime::format_rfc3339_seconds(rp.time))
                }
                (Some(id), None) => format!("from point {id}"),
            };
            let nics = if nics.is_empty() { String::new() } else { format!("; {}", list(nics)) };
            ("»", Color::Cyan, "fail over", format!("{machine} {from} → {to} {source}{nics}"))
        }
        ProviderOp::Commit { machine, site } => ("✓", Color::Green, "commit", format!("{machine} at {site}")),
        ProviderOp::ChangePoint { machine, site, point } => {
            ("~", Color::Yellow, "repoint", format!("{machine} at {site} to recovery point {point}"))
        }
        ProviderOp::Revert { machine, from, to } => {
            ("«", Color::Cyan, "revert", format!("{machine} {from} → {to} (undo the failover)"))
        }
        ProviderOp::Reprotect { machine, from, to } => {
            ("↺", Color::Cyan, "reprotect", format!("{machine} {from} → {to} (reverse replication, delta)"))
        }
        ProviderOp::CreateTestCopy { machine, site, point, nics, .. } => {
            ("+", Color::Green, "test copy", format!("{machine} at {site} from point {point} on {}", list(nics)))
        }
        ProviderOp::RemoveTestCopy { machine, site, drill } => {
            ("-", Color::Red, "remove", format!("{machine} test copy at {site} (drill {drill})"))
        }
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn summary(plan: &ActionPlan, p: Painter) -> String {
    let mut out = String::new();
    let counts: Vec<String> = plan.summary.counts.iter().map(|c| c.phrase()).collect();
    let _ = writeln!(out, "{} {}.", p.paint("Plan:", Color::Bold), counts.join(", "));
    let s = &plan.summary;
    let facts: Vec<String> = facts(plan, p).into_iter().map(|(label, text)| format!("{label} {text}")).collect();
    if !facts.is_empty() {
        let _ = writeln!(out, "{}.", facts.join("; "));
    }
    for note in &s.notes {
        let _ = writeln!(out, "Note: {note}.");
    }
    out
}

/// The estimate against the objectives: (label, text).
fn facts(plan: &ActionPlan, p: Painter) -> Vec<(&'static str, String)> {
    let s = &plan.summary;
    let mut facts = Vec::new();
    if let Some(rto) = s.estimated_rto_ms {
        let (rto, objective) = (Duration::from_millis(rto), Duration::from_millis(s.rto_objective_ms));
        let verdict = if rto <= objective { p.paint("met", Color::Green) } else { p.paint("MISSED", Color::Red) };
        facts.push((
            "Estimated RTO",
            format!("{} (objective {}: {verdict})", human_duration(rto), human_duration(objective)),
        ));
    }
    if let Some(lag) = s.max_replication_lag_ms {
        let (lag, objective) = (Duration::from_millis(lag), Duration::from_millis(s.rpo_objective_ms));
        let verdict = if lag <= objective { p.paint("met", Color::Green) } else { p.paint("MISSED", Color::Red) };
        facts.push((
            "replication lag",
            format!("{} (RPO {}: {verdict})", human_duration(lag), human_duration(objective)),
        ));
    }
    if let Some(loss) = &s.expected_data_loss {
        let text = if loss.max_time_ms == 0 && loss.total_bytes.unwrap_or(0) == 0 {
            "none".to_string()
        } else {
            let bytes = loss.total_bytes.map(|b| format!(", {} in all", human_bytes(b))).unwrap_or_default();
            format!("up to {}{bytes}", human_duration(Duration::from_millis(loss.max_time_ms)))
        };
        facts.push(("expected data loss:", text));
    }
    facts
}

/// The plan for a pull-request comment or a job summary: what it does, the estimate against
/// the objectives, and the whole plan folded away.
pub fn markdown(plan: &ActionPlan) -> String {
    let plain = Painter { enabled: false };
    let mut out = format!("### drplan plan: `{}`\n\n", plan.plan);
    if !plan.has_changes() {
        out.push_str("No changes: the world matches the plan.\n");
        return out;
    }
    let _ = writeln!(out, "{}\n", headline(plan, plain));
    out.push_str("| | |\n|---|---|\n");
    let counts: Vec<String> = plan.summary.counts.iter().map(|c| c.phrase()).collect();
    let _ = writeln!(out, "| Actions | {} |", counts.join(", "));
    for (label, text) in facts(plan, plain) {
        let label = label.trim_end_matches(':');
        let mut label = label.to_string();
        label[..1].make_ascii_uppercase();
        let _ = writeln!(out, "| {label} | {text} |");
    }
    let _ = write!(
        out,
        "\n<details><summary>The whole plan</summary>\n\n```text\n{}```\n\n</details>\n",
        render(plan, plain)
    );
    out
}
