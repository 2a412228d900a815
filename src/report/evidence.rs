//! Run evidence for auditors and pipelines: Markdown (pull requests, job summaries), JUnit
//! XML (CI test results), an SVG timeline, and the JSON report itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::exec::run_report::{RunReport, StepReport};
use crate::spec::time_format::{human_bytes, human_duration};

pub const JSON_NAME: &str = "report.json";
pub const MARKDOWN_NAME: &str = "report.md";
pub const JUNIT_NAME: &str = "junit.xml";
pub const TIMELINE_NAME: &str = "timeline.svg";

/// Write all four files into `dir` (created if needed); returns their paths.
pub fn write_all(report: &RunReport, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    crate::os::fs::create_private_dir(dir)?;
    let mut written = Vec::new();
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    for (name, bytes) in [
        (JSON_NAME, json),
        (MARKDOWN_NAME, markdown(report).into_bytes()),
        (JUNIT_NAME, junit(report).into_bytes()),
        (TIMELINE_NAME, timeline_svg(report).into_bytes()),
    ] {
        let path = dir.join(name);
        crate::state::atomic::write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

fn ms(d: u64) -> String {
    human_duration(Duration::from_millis(d))
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn title(report: &RunReport) -> String {
    let mut kind = report.kind.title().to_string();
    if let Some(first) = kind.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    let route = match (&report.from, &report.to) {
        (Some(f), Some(t)) => format!(" ({f} → {t})"),
        _ => String::new(),
    };
    format!("{kind} of `{}`{route}", report.plan)
}

fn verdict(met: bool) -> &'static str {
    if met { "met ✅" } else { "MISSED ❌" }
}

/// A summary a pipeline can post to a pull request or a job summary.
/// Rows per Markdown table before it is cut short, and the most steps listed one by one: the
/// summary must stay postable (a pull-request comment holds 65,536 characters).
const MARKDOWN_ROWS: usize = 50;
const MARKDOWN_STEPS: usize = 200;

pub fn markdown(report: &RunReport) -> String {
    let mut out = String::new();
    let status = match report.status.as_str() {
        "succeeded" => "✅ succeeded".to_string(),
        "paused" => "⏸ paused (waiting for approval)".to_string(),
        other => format!("❌ {other}"),
    };
    let _ = writeln!(out, "## drplan: {} — {status}\n", title(report));
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| Run | `{}` |", report.run);
    let _ = writeln!(out, "| Started | {} |", rfc3339(report.started_at));
    let took = report.finished_at.duration_since(report.started_at).unwrap_or_default();
    let _ = writeln!(out, "| Duration | {} |", human_duration(took));
    match &report.rto {
        Some(rto) => {
            let _ = writeln!(
                out,
                "| Measured RTO | {} (objective {}: {}) |",
                ms(rto.measured_ms),
                ms(rto.objective_ms),
                verdict(rto.met)
            );
        }
        None => {
            let _ = writeln!(out, "| RTO objective | {} |", ms(report.objectives.rto_ms));
        }
    }
    if let Some(loss) = &report.data_loss {
        let what = if loss.max_time_ms == 0 && loss.total_bytes.unwrap_or(0) == 0 {
            "none".to_string()
        } else {
            let bytes = loss.total_bytes.map(|b| format!(", {}", human_bytes(b))).unwrap_or_default();
            format!("up to {}{bytes}", ms(loss.max_time_ms))
        };
        let _ = writeln!(
            out,
            "| Data loss | {what} (RPO {}: {}) |",
            ms(report.objectives.rpo_ms),
            verdict(loss.within_rpo)
        );
    }
    let points: Vec<String> = report.points_used.iter().map(|(m, p)| format!("{m} → point {p}")).collect();
    if !points.is_empty() && points.len() <= 12 {
        let _ = writeln!(out, "| Recovery points | {} |", points.join(", "));
    }
    let commit = report.git_commit.clone().map(|c| format!(" at git `{c}`")).unwrap_or_default();
    let _ =
        writeln!(out, "| Plan document | `{}`{commit} |", &report.document_hash[..report.document_hash.len().min(16)]);
    for note in &report.notes {
        let _ = writeln!(out, "| Notes | {} |", md_text(note));
    }

    if let Some(rto) = &report.rto
        && !rto.groups.is_empty()
    {
        let _ = writeln!(out, "\n### Groups\n\n| group | up after |\n|---|---|");
        // Boot order: the first and the last groups tell the story; the middle is in report.json.
        let n = rto.groups.len();
        for (i, g) in rto.groups.iter().enumerate() {
            if n > MARKDOWN_ROWS && i == MARKDOWN_ROWS / 2 {
                let _ = writeln!(out, "| … | {} more groups in report.json |", n - MARKDOWN_ROWS);
            }
            if n <= MARKDOWN_ROWS || i < MARKDOWN_ROWS / 2 || i >= n - MARKDOWN_ROWS / 2 {
                let up = if g.up { ms(g.ready_ms) } else { format!("❌ not up: {}", g.failed.join(", ")) };
                let _ = writeln!(out, "| {} | {up} |", g.group);
            }
        }
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for s in &report.steps {
        match counts.iter_mut().find(|(k, _)| *k == s.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((s.status.clone(), 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let _ = writeln!(out, "\n### Steps ({})\n", counts.join(", "));
    // Failures, and successes that needed more than one try (their failures are evidence too).
    let problems: Vec<&StepReport> = report
        .steps
        .iter()
        .filter(|s| (s.status != "succeeded" && s.status != "not-run") || s.failed_attempts().next().is_some())
        .collect();
    if !problems.is_empty() {
        let _ = writeln!(out, "| step | result | detail |\n|---|---|---|");
        for s in problems.iter().take(MARKDOWN_ROWS) {
            let (result, detail) = match s.failed_attempts().next() {
                Some(first) if s.status == "succeeded" => (
                    format!("succeeded after {} attempts", s.attempts),
                    format!("earlier attempt {}: {}", first.result, first.error.as_deref().unwrap_or_default()),
                ),
                _ => (s.status.clone(), s.error.clone().unwrap_or_default()),
            };
            let _ = writeln!(out, "| `{}` | {result} | {} |", md_code(&s.id), md_text(&detail));
        }
        if problems.len() > MARKDOWN_ROWS {
            let _ = writeln!(out, "| … | | {} more in report.json |", problems.len() - MARKDOWN_ROWS);
        }
        let _ = writeln!(out);
    }
    // Every step while that stays postable; beyond it, the slowest ones.
    let mut listed: Vec<&StepReport> = report.steps.iter().collect();
    let summary = if listed.len() <= MARKDOWN_STEPS {
        "All steps".to_string()
    } else {
        listed.sort_by_key(|s| std::cmp::Reverse(s.duration()));
        listed.truncate(MARKDOWN_ROWS);
        format!("The {MARKDOWN_ROWS} slowest of {} steps (all of them are in report.json)", report.steps.len())
    };
    let _ = writeln!(out, "<details><summary>{summary}</summary>\n\n| step | result | duration |\n|---|---|---|");
    for s in listed {
        let took = s.duration().map(human_duration).unwrap_or_default();
        let _ = writeln!(out, "| `{}` | {} | {took} |", md_code(&s.id), s.status);
    }
    let _ = writeln!(out, "\n</details>");
    if !report.approvals.is_empty() {
        let _ = writeln!(out, "\n### Approvals\n\n| step | by | at |\n|---|---|---|");
        for a in &report.approvals {
            let _ = writeln!(out, "| `{}` | {} | {} |", md_code(&a.step), md_text(&a.by), rfc3339(a.at));
        }
    }
    out
}

/// Text from people or platforms (notes, approver names, error messages) inside a Markdown
/// table cell: nothing in it may end the cell, open markup, or become HTML.
pub fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a Markdown code span in a table cell: a backtick would end the span, a pipe
/// the cell.
pub fn md_code(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '`' => '\'',
            '|' => '¦',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One test case per step, so CI systems show runs and drills as test results.
pub fn junit(report: &RunReport) -> String {
    let failures = report.steps.iter().filter(|s| s.status == "failed" || s.status == "interrupted").count();
    let skipped =
        report.steps.iter().filter(|s| matches!(s.status.as_str(), "skipped" | "not-run" | "awaiting")).count();
    let took = report.finished_at.duration_since(report.started_at).unwrap_or_default().as_secs_f64();
    let suite = xml_escape(&format!("{}: {}", report.plan, report.kind.title()));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"drplan\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{took:.3}\">",
        report.steps.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{took:.3}\" timestamp=\"{}\">",
        report.steps.len(),
        xml_escape(&rfc3339(report.started_at))
    );
    let _ = writeln!(out, "    <properties>\n      <property name=\"run\" value=\"{}\"/>", xml_escape(&report.run));
    let _ = writeln!(out, "      <property name=\"status\" value=\"{}\"/>", xml_escape(&report.status));
    if let Some(rto) = &report.rto {
        let _ = writeln!(out, "      <property name=\"rto_ms\" value=\"{}\"/>", rto.measured_ms);
    }
    let _ = writeln!(
        out,
        "      <property name=\"rto_objective_ms\" value=\"{}\"/>\n    </properties>",
        report.objectives.rto_ms
    );
    for s in &report.steps {
        let class = xml_escape(&format!("{}.{}", report.plan, s.group.clone().unwrap_or_else(|| "run".into())));
        let time = s.duration().map_or(0.0, |d| d.as_secs_f64());
        let name = xml_escape(&s.id);
        let detail = xml_escape(s.error.as_deref().or(s.summary.as_deref()).unwrap_or_default());
        match s.status.as_str() {
            "failed" | "interrupted" => {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"{class}\" name=\"{name}\" time=\"{time:.3}\">\n      <failure message=\"{detail}\" type=\"{}\">{detail}</failure>\n    </testcase>",
                    xml_escape(&s.status)
                );
            }
            "skipped" | "not-run" | "awaiting" => {
                let message = if detail.is_empty() { xml_escape(&s.status) } else { detail };
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"{class}\" name=\"{name}\" time=\"{time:.3}\">\n      <skipped message=\"{message}\"/>\n    </testcase>"
                );
            }
            _ => {
                let mut text: String = s
                    .failed_attempts()
                    .map(|a| format!("earlier attempt {}: {}\n", a.result, a.error.as_deref().unwrap_or_default()))
                    .collect();
                text.push_str(s.output.as_deref().unwrap_or_default());
                let output = if text.is_empty() {
                    String::new()
                } else {
                    format!("\n      <system-out>{}</system-out>\n    ", xml_escape(&text))
                };
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"{class}\" name=\"{name}\" time=\"{time:.3}\">{output}</testcase>"
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// A Gantt chart of groups and steps with the RTO objective drawn as a line; self-contained.
pub fn timeline_svg(report: &RunReport) -> String {
    const WIDTH: f64 = 1200.0;
    const LABEL: f64 = 300.0;
    const ROW: f64 = 18.0;
    const TOP: f64 = 70.0;
    let steps: Vec<&StepReport> = report.steps.iter().filter(|s| s.started_at.is_some()).collect();
    let start = report.started_at;
    let offset = |t: SystemTime| t.duration_since(start).unwrap_or_default().as_secs_f64();
    let end = steps.iter().filter_map(|s| s.finished_at.map(offset)).fold(offset(report.finished_at), f64::max);
    // The RTO objective counts from when the first machine went down (or the run's start).
    let rto_origin = report.rto.as_ref().map_or(0.0, |r| offset(r.since));
    let rto_at = rto_origin + report.objectives.rto_ms as f64 / 1000.0;
    // Show the objective when it is in view or near it; otherwise note it in the legend.
    let span = if rto_at <= end * 1.5 { end.max(rto_at) } else { end }.max(0.001);
    let plot = WIDTH - LABEL - 20.0;
    let x = |secs: f64| LABEL + plot * (secs / span);

    // Rows: a header per group (boot order, then any other in order of appearance), then its steps.
    let mut groups: Vec<String> = report.rto.iter().flat_map(|r| r.groups.iter().map(|g| g.group.clone())).collect();
    for s in &steps {
        let g = s.group.clone().unwrap_or_else(|| "(run)".into());
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let rows_of = |group: &str| -> Vec<TimelineRow> {
        let in_group: Vec<&StepReport> =
            steps.iter().copied().filter(|s| s.group.as_deref().unwrap_or("(run)") == group).collect();
        if steps.len() <= MAX_STEP_ROWS {
            in_group.iter().map(|s| TimelineRow::step(s, &offset, end)).collect()
        } else {
            TimelineRow::per_kind(&in_group, &offset, end)
        }
    };
    let rows_by_group: Vec<(&String, Vec<TimelineRow>)> = groups.iter().map(|g| (g, rows_of(g))).collect();
    let rows = groups.len() + rows_by_group.iter().map(|(_, r)| r.len()).sum::<usize>();
    let height = TOP + rows as f64 * ROW + 50.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(out, "  <title>{}</title>", xml_escape(&title(report)));
    let _ = writeln!(out, "  <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height}\" fill=\"#ffffff\"/>");
    let measured = report.rto.as_ref().map(|r| format!(" · measured RTO {}", ms(r.measured_ms))).unwrap_or_default();
    let _ = writeln!(
        out,
        "  <text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{} — {}{}</text>",
        xml_escape(&title(report)),
        xml_escape(&report.status),
        xml_escape(&measured)
    );
    let aggregated = if steps.len() > MAX_STEP_ROWS {
        " (one row per group and kind of step; every step is in report.json)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  <text x=\"10\" y=\"40\" fill=\"#555555\">run {} · started {} · {}{aggregated}</text>",
        xml_escape(&report.run),
        xml_escape(&rfc3339(start)),
        super::style::plural(report.steps.len(), "step", "steps")
    );
    // Time axis with five ticks.
    for k in 0..=5 {
        let secs = span * k as f64 / 5.0;
        let tx = x(secs);
        let _ = writeln!(
            out,
            "  <line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#e5e5e5\"/>",
            TOP - 8.0,
            height - 40.0
        );
        let anchor = if k == 5 { "end" } else { "middle" };
        let _ = writeln!(
            out,
            "  <text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"#555555\">{}</text>",
            TOP - 12.0,
            xml_escape(&human_duration(Duration::from_secs_f64(secs)))
        );
    }
    let color = |status: &str| match status {
        "succeeded" => "#2e9d57",
        "failed" | "interrupted" => "#d93f3f",
        "awaiting" => "#8a4fd8",
        "running" => "#e8a33d",
        _ => "#9e9e9e",
    };
    let mut y = TOP;
    for (group, rows) in &rows_by_group {
        let name = xml_escape(group);
        let text_y = y + 13.0;
        let _ = writeln!(
            out,
            "  <g class=\"group\" data-group=\"{name}\"><rect x=\"0\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{ROW}\" fill=\"#f2f4f7\"/><text x=\"10\" y=\"{text_y:.1}\" font-weight=\"bold\">group {name}</text></g>"
        );
        y += ROW;
        for row in rows {
            let (bx, bw) = (x(row.start), (x(row.finish) - x(row.start)).max(2.0));
            let label: String = row.label.chars().take(44).collect();
            let _ = writeln!(
                out,
                "  <g class=\"step\"><text x=\"22\" y=\"{:.1}\">{}</text><rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{}\"><title>{}</title></rect></g>",
                y + 13.0,
                xml_escape(&label),
                y + 3.0,
                ROW - 6.0,
                color(&row.status),
                xml_escape(&row.tip)
            );
            y += ROW;
        }
    }
    let objective = format!("RTO objective {}", ms(report.objectives.rto_ms));
    if rto_at <= span {
        let rx = x(rto_at);
        let _ = writeln!(
            out,
            "  <line x1=\"{rx:.1}\" y1=\"{:.1}\" x2=\"{rx:.1}\" y2=\"{:.1}\" stroke=\"#d93f3f\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>",
            TOP - 8.0,
            height - 40.0
        );
        let _ = writeln!(
            out,
            "  <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d93f3f\" text-anchor=\"end\">{}</text>",
            rx - 4.0,
            height - 26.0,
            xml_escape(&objective)
        );
    } else {
        let _ = writeln!(
            out,
            "  <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d93f3f\" text-anchor=\"end\">{} → (beyond this run's {})</text>",
            WIDTH - 10.0,
            height - 26.0,
            xml_escape(&objective),
            xml_escape(&human_duration(Duration::from_secs_f64(end)))
        );
    }
    let legend = [
        ("succeeded", "#2e9d57"),
        ("failed", "#d93f3f"),
        ("awaiting approval", "#8a4fd8"),
        ("skipped / not run", "#9e9e9e"),
    ];
    let mut lx = 10.0;
    for (name, fill) in legend {
        let _ = writeln!(
            out,
            "  <rect x=\"{lx}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{fill}\"/><text x=\"{:.1}\" y=\"{:.1}\">{name}</text>",
            height - 16.0,
            lx + 14.0,
            height - 7.0
        );
        lx += 14.0 + name.len() as f64 * 6.5 + 16.0;
    }
    out.push_str("</svg>\n");
    out
}

/// Beyond this many steps a row per step is no longer readable (60,000 steps made a timeline
/// a million pixels tall): rows become one per group and kind of step.
const MAX_STEP_ROWS: usize = 300;

/// One bar of the timeline: a step, or every step of one kind in a group.
struct TimelineRow {
    label: String,
    start: f64,
    finish: f64,
    /// The status that colours the bar: for many steps, the one that most needs a look.
    status: String,
    tip: String,
}

impl TimelineRow {
    fn step(s: &StepReport, offset: &impl Fn(SystemTime) -> f64, end: f64) -> TimelineRow {
        let took = s.duration().map(human_duration).unwrap_or_default();
        TimelineRow {
            label: s.id.clone(),
            start: s.started_at.map(offset).unwrap_or(0.0),
            finish: s.finished_at.map(offset).unwrap_or(end),
            status: s.status.clone(),
            tip: format!("{} — {} {took}", s.id, s.status),
        }
    }

    /// The steps of one group by kind, in order of first appearance: a bar from the first
    /// start to the last end, the count, and how many ended how.
    fn per_kind(steps: &[&StepReport], offset: &impl Fn(SystemTime) -> f64, end: f64) -> Vec<TimelineRow> {
        let severity = |status: &str| match status {
            "failed" | "interrupted" => 4,
            "awaiting" => 3,
            "running" => 2,
            "succeeded" => 0,
            _ => 1,
        };
        let mut rows: Vec<(String, TimelineRow, BTreeMap<String, usize>)> = Vec::new();
        for s in steps {
            let one = TimelineRow::step(s, offset, end);
            match rows.iter_mut().find(|(kind, ..)| *kind == s.kind) {
                Some((_, row, counts)) => {
                    row.start = row.start.min(one.start);
                    row.finish = row.finish.max(one.finish);
                    if severity(&one.status) > severity(&row.status) {
                        row.status = one.status;
                    }
                    *counts.entry(s.status.clone()).or_default() += 1;
                }
                None => rows.push((s.kind.clone(), one, BTreeMap::from([(s.status.clone(), 1)]))),
            }
        }
        rows.into_iter()
            .map(|(kind, mut row, counts)| {
                let n: usize = counts.values().sum();
                let ended: Vec<String> = counts.iter().map(|(status, k)| format!("{k} {status}")).collect();
                row.label = format!("{kind} ×{n}");
                row.tip = format!("{n} {kind} steps: {}", ended.join(", "));
                row
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::run_report::Objectives;
    use crate::planner::RunKind;

    /// `steps` steps over `groups` groups, each group half starts and half commits, one second
    /// apart; the third step failed.
    fn run(steps: usize, groups: usize) -> RunReport {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let steps = (0..steps)
            .map(|i| {
                let kind = if i % 2 == 0 { "start" } else { "commit" };
                StepReport {
                    id: format!("{kind}/vm{i:05}"),
                    kind: kind.into(),
                    group: Some(format!("g{}", (i / 2) % groups)),
                    machine: Some(format!("vm{i:05}")),
                    status: if i == 2 { "failed".into() } else { "succeeded".into() },
                    started_at: Some(t0 + Duration::from_secs(i as u64)),
                    finished_at: Some(t0 + Duration::from_secs(i as u64 + 1 + (i % 7) as u64)),
                    attempts: 1,
                    summary: None,
                    error: (i == 2).then(|| "boom".to_string()),
                    output: None,
                    outcome: None,
                    attempt_log: Vec::new(),
                }
            })
            .collect::<Vec<_>>();
        RunReport {
            run: "r".into(),
            plan: "p".into(),
            kind: RunKind::PlannedFailover,
            from: Some("dc1".into()),
            to: Some("dc2".into()),
            status: "completed-with-errors".into(),
            started_at: t0,
            finished_at: t0 + Duration::from_secs(steps.len() as u64 + 10),
            document_hash: "0123456789abcdef0123".into(),
            git_commit: None,
            objectives: Objectives { rto_ms: 3_600_000, rpo_ms: 300_000 },
            rto: None,
            data_loss: None,
            points_used: BTreeMap::new(),
            steps,
            awaiting: vec![],
            approvals: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn a_small_run_gets_a_timeline_row_per_step() {
        let svg = timeline_svg(&run(12, 3));
        assert_eq!(svg.matches("class=\"step\"").count(), 12);
        assert!(svg.contains(">start/vm00002<"));
    }

    #[test]
    fn a_large_run_gets_a_timeline_row_per_group_and_kind() {
        let svg = timeline_svg(&run(1_000, 10));
        assert_eq!(svg.matches("class=\"step\"").count(), 20, "10 groups x 2 kinds");
        for g in 0..10 {
            assert!(svg.contains(&format!("data-group=\"g{g}\"")), "group g{g}");
        }
        assert!(svg.contains(">start ×50<") && svg.contains(">commit ×50<"));
        // The failed step colours its row and is counted in the tooltip.
        assert!(svg.contains("50 start steps: 1 failed, 49 succeeded"), "{svg}");
        assert_eq!(svg.matches("fill=\"#d93f3f\"><title>").count(), 1);
        let height: f64 = svg.split("height=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(height < 1_000.0, "{height}");
    }

    #[test]
    fn the_markdown_summary_of_a_large_run_stays_postable() {
        let md = markdown(&run(60_000, 100));
        assert!(md.len() < 65_536, "{} characters", md.len());
        assert!(md.contains("The 50 slowest of 60000 steps"));
        assert!(md.contains("| `start/vm00002` | failed | boom |"));
        let small = markdown(&run(20, 2));
        assert!(small.contains("<summary>All steps</summary>"));
        let step_rows = small.lines().filter(|l| l.starts_with("| `start/") || l.starts_with("| `commit/")).count();
        assert_eq!(step_rows, 20 + 1, "every step, plus the failure");
    }
}
