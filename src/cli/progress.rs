//! Progress of a run: a live per-group display in a terminal, one line per event in a pipe.
//! Every event also goes to `tracing`, so `--log-format json` yields JSON lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Ui;
use crate::exec::engine::{Event, StepStatus};
use crate::planner::{ActionKind, ActionPlan};
use crate::report::style::{Color, Painter};
use crate::spec::time_format::human_duration;

pub struct Progress {
    tx: mpsc::UnboundedSender<Event>,
    task: tokio::task::JoinHandle<()>,
    terminal: Terminal,
}

/// The terminal shared by the live block and prompts. Whoever holds it may write; taking it
/// erases the live block first, so a prompt is never drawn over or erased by a redraw.
#[derive(Clone, Default)]
pub struct Terminal(Arc<Mutex<usize>>);

impl Terminal {
    /// Wait for the terminal (an approval prompt does).
    pub fn take(&self) -> MutexGuard<'_, usize> {
        let mut drawn = self.0.lock().unwrap_or_else(|p| p.into_inner());
        erase(&mut drawn);
        drawn
    }

    /// The terminal if nobody is using it (the renderer never waits on a prompt).
    fn try_take(&self) -> Option<MutexGuard<'_, usize>> {
        let mut drawn = self.0.try_lock().ok()?;
        erase(&mut drawn);
        Some(drawn)
    }
}

/// Move up over the `drawn` lines of the live block and clear to the end of the screen.
fn erase(drawn: &mut usize) {
    if *drawn > 0 {
        // Only ever drawn on a terminal; `eprint!` keeps it out of unit-test output.
        eprint!("\x1b[{}A\x1b[J", *drawn);
        *drawn = 0;
    }
}

impl Progress {
    pub fn start(plan: Arc<ActionPlan>, ui: Ui, live: bool) -> Progress {
        let (tx, rx) = mpsc::unbounded_channel();
        let terminal = Terminal::default();
        let painter = Painter { enabled: ui.stderr_style.color };
        let renderer = Renderer::new(plan, painter, live, terminal.clone());
        let task = tokio::spawn(renderer.run(rx));
        Progress { tx, task, terminal }
    }

    pub fn sender(&self) -> mpsc::UnboundedSender<Event> {
        self.tx.clone()
    }

    /// For anything else that writes to the terminal meanwhile (an approval prompt).
    pub fn terminal(&self) -> Terminal {
        self.terminal.clone()
    }

    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

struct GroupCount {
    total: usize,
    done: usize,
    failed: usize,
    running: usize,
}

struct Renderer {
    plan: Arc<ActionPlan>,
    painter: Painter,
    live: bool,
    terminal: Terminal,
    started: Instant,
    step_started: BTreeMap<usize, Instant>,
    groups: BTreeMap<String, GroupCount>,
    group_order: Vec<String>,
    total: usize,
    done: usize,
    failed: usize,
    suspended: bool,
    /// The latest progress of running steps, and when a pipe last got a line of it.
    progress: BTreeMap<usize, (crate::contract::OpProgress, Option<Instant>)>,
}

impl Renderer {
    fn new(plan: Arc<ActionPlan>, painter: Painter, live: bool, terminal: Terminal) -> Self {
        let mut groups: BTreeMap<String, GroupCount> = BTreeMap::new();
        let mut group_order = Vec::new();
        let mut total = 0;
        for action in plan.actions.iter().filter(|a| !matches!(a.kind, ActionKind::Barrier)) {
            total += 1;
            let name = action.group.clone().unwrap_or_else(|| "(run)".into());
            if !groups.contains_key(&name) {
                group_order.push(name.clone());
            }
            groups.entry(name).or_insert(GroupCount { total: 0, done: 0, failed: 0, running: 0 }).total += 1;
        }
        Renderer {
            plan,
            painter,
            live,
            terminal,
            started: Instant::now(),
            step_started: BTreeMap::new(),
            groups,
            group_order,
            total,
            done: 0,
            failed: 0,
            suspended: false,
            progress: BTreeMap::new(),
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => self.handle(event),
                    None => break,
                },
                _ = tick.tick(), if self.live => self.draw(),
            }
        }
        if self.live {
            drop(self.terminal.take());
        }
    }

    fn group_of(&self, index: usize) -> String {
        self.plan.actions[index].group.clone().unwrap_or_else(|| "(run)".into())
    }

    fn handle(&mut self, event: Event) {
        match &event {
            Event::Started { index, attempt } => {
                let a = &self.plan.actions[*index];
                tracing::info!(step = %a.id, attempt, "step started");
                self.step_started.entry(*index).or_insert_with(Instant::now);
                if *attempt == 1
                    && let Some(g) = self.groups.get_mut(&self.group_of(*index))
                {
                    g.running += 1;
                }
            }
            Event::Retrying { index, attempt, error, delay } => {
                let id = &self.plan.actions[*index].id;
                tracing::warn!(step = %id, attempt, error = %error, delay_ms = delay.as_millis() as u64, "step retrying");
                self.line(format!(
                    "{} {id}: attempt {attempt} failed ({error}); retrying in {}",
                    self.painter.paint("↻", Color::Yellow),
                    human_duration(*delay)
                ));
            }
            Event::Finished { index, status, detail } => {
                let a = &self.plan.actions[*index];
                let took = self.step_started.get(index).map(|t| t.elapsed());
                match status {
                    StepStatus::Failed => tracing::error!(step = %a.id, error = %detail, "step failed"),
                    _ => tracing::info!(step = %a.id, status = ?status, detail = %detail, "step finished"),
                }
                self.done += 1;
                self.progress.remove(index);
                let group = self.group_of(*index);
                if let Some(g) = self.groups.get_mut(&group) {
                    g.done += 1;
                    if self.step_started.contains_key(index) {
                        g.running = g.running.saturating_sub(1);
                    }
                    if *status == StepStatus::Failed {
                        g.failed += 1;
                    }
                }
                if *status == StepStatus::Failed {
                    self.failed += 1;
                }
                self.suspended = false;
                let (symbol, color) = match status {
                    StepStatus::Succeeded => ("✓", Color::Green),
                    StepStatus::Failed => ("✗", Color::Red),
                    StepStatus::Skipped => ("-", Color::Dim),
                    _ => ("·", Color::Dim),
                };
                let took = took.map(|d| format!(" ({})", human_duration(d))).unwrap_or_default();
                // Live mode keeps the screen for failures; pipes get every step.
                if !self.live || *status == StepStatus::Failed {
                    self.line(format!(
                        "[{:>width$}/{}] {} {} — {detail}{took}",
                        self.done,
                        self.total,
                        self.painter.paint(symbol, color),
                        a.id,
                        width = self.total.to_string().len()
                    ));
                }
            }
            Event::Awaiting { index } => {
                let a = &self.plan.actions[*index];
                tracing::warn!(step = %a.id, "waiting for approval");
                if self.live {
                    // A prompt may follow: leave the terminal to it (it erases the block
                    // itself if it got there first).
                    drop(self.terminal.try_take());
                    self.suspended = true;
                } else {
                    self.line(format!("{} {} waits for approval", self.painter.paint("?", Color::Magenta), a.id));
                }
            }
            Event::Progress { index, progress } => {
                let id = &self.plan.actions[*index].id;
                tracing::info!(step = %id, bytes = progress.bytes, total = progress.total_bytes, message = progress.message.as_deref(), "step progress");
                let entry = self.progress.entry(*index).or_insert_with(|| (progress.clone(), None));
                entry.0 = progress.clone();
                // A pipe gets a line now and then, not one per notification.
                if !self.live && entry.1.is_none_or(|at| at.elapsed() >= PIPE_PROGRESS_EVERY) {
                    entry.1 = Some(Instant::now());
                    let text = describe_progress(progress);
                    self.line(format!("  {} {id}: {text}", self.painter.paint("…", Color::Dim)));
                }
            }
            Event::WaitingForSite { index, site, limit } => {
                let id = &self.plan.actions[*index].id;
                tracing::info!(step = %id, site = %site, limit, "waiting for a slot of the site");
                self.line(format!(
                    "  {} {id}: waits for a slot at {site} (its max_parallel of {limit} is in use by other runs)",
                    self.painter.paint("…", Color::Dim)
                ));
            }
            Event::AlreadyDone { count } => {
                tracing::info!(count, "steps already done");
                self.done += count;
                let done = crate::report::style::plural(*count, "step was", "steps were");
                self.line(format!("{done} already done; continuing."));
            }
            Event::Stopping { reason } => {
                tracing::warn!(reason = %reason, "run stopping");
                self.line(format!(
                    "{} stopping: {reason}; running steps finish, nothing new starts",
                    self.painter.paint("!", Color::Red)
                ));
            }
        }
    }

    /// A permanent line above the live block (or just a line in a pipe). While someone is
    /// prompting it is printed after them, without waiting on the async thread.
    fn line(&mut self, text: String) {
        // With JSON logs every event is already a line of its own (see `handle`).
        if super::output::json_logs() {
            return;
        }
        let _terminal = self.terminal.try_take();
        errln!("{text}");
    }

    fn draw(&mut self) {
        if self.suspended {
            return;
        }
        let terminal = self.terminal.clone();
        let Some(mut drawn) = terminal.try_take() else { return };
        let mut lines = vec![format!(
            "{} {}: {}/{} steps, {} failed, {}",
            self.painter.paint("drplan", Color::Bold),
            self.plan.run.title(),
            self.done,
            self.total,
            self.failed,
            human_duration(self.started.elapsed())
        )];
        let active: Vec<&String> = self
            .group_order
            .iter()
            .filter(|g| self.groups.get(*g).is_some_and(|c| c.running > 0 || (c.done > 0 && c.done < c.total)))
            .take(12)
            .collect();
        for name in active {
            let c = &self.groups[name];
            let width = 20;
            let filled = (c.done * width).checked_div(c.total).unwrap_or(0);
            let bar = format!("{}{}", "█".repeat(filled), "░".repeat(width - filled));
            let failed = if c.failed > 0 {
                self.painter.paint(&format!(" {} failed", c.failed), Color::Red)
            } else {
                String::new()
            };
            lines.push(format!("  {name:<16} {bar} {}/{}{failed}", c.done, c.total));
            let running = self.progress.iter().filter(|(i, _)| &self.group_of(**i) == name).take(3);
            for (index, (progress, _)) in running {
                lines.push(format!("    {} {}", self.plan.actions[*index].id, describe_progress(progress)));
            }
        }
        let mut err = std::io::stderr();
        for line in &lines {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        *drawn = lines.len();
    }
}

/// A pipe gets at most one progress line per step this often.
const PIPE_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `12.0 MiB of 26.0 MiB (46%) — message`, with what is known.
fn describe_progress(progress: &crate::contract::OpProgress) -> String {
    use crate::spec::time_format::human_bytes;
    let amount = match (progress.bytes, progress.total_bytes) {
        (Some(done), Some(total)) if total > 0 => {
            Some(format!("{} of {} ({}%)", human_bytes(done), human_bytes(total), done.min(total) * 100 / total))
        }
        (Some(done), _) => Some(human_bytes(done)),
        _ => None,
    };
    match (amount, progress.message.as_deref()) {
        (Some(amount), Some(message)) => format!("{amount} — {message}"),
        (Some(amount), None) => amount,
        (None, Some(message)) => message.to_string(),
        (None, None) => "working".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_says_what_is_known() {
        use crate::contract::OpProgress;
        let full = OpProgress { bytes: Some(3 << 20), total_bytes: Some(4 << 20), message: Some("disk os".into()) };
        assert_eq!(describe_progress(&full), "3.0 MiB of 4.0 MiB (75%) — disk os");
        let bytes = OpProgress { bytes: Some(1024), ..OpProgress::default() };
        assert_eq!(describe_progress(&bytes), "1.0 KiB");
        assert_eq!(describe_progress(&OpProgress::default()), "working");
    }

    #[test]
    fn taking_the_terminal_for_a_prompt_erases_the_live_block_first() {
        let terminal = Terminal::default();
        *terminal.try_take().unwrap() = 5;
        // The prompt owns the terminal; the renderer neither draws nor erases meanwhile.
        let prompt = terminal.take();
        assert_eq!(*prompt, 0);
        assert!(terminal.try_take().is_none());
        drop(prompt);
        assert_eq!(*terminal.try_take().unwrap(), 0);
    }
}
