//! What the operator sees while a rollout runs: progress bars on a terminal, plain lines
//! otherwise (CI, pipes), nothing for benchmarks.

use crate::journal::TargetState;
use crate::plugin::model::Level;
use crate::redact::Redactor;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rollout events the operator sees.
pub trait Ui: Send + Sync {
    /// A line about the rollout as a whole.
    fn note(&self, message: &str);
    /// A wave starts.
    fn wave_start(&self, name: &str, targets: usize);
    /// A target starts step `n` of `of`.
    fn step(&self, target: &str, step: &str, n: usize, of: usize);
    /// A target finished the wave.
    fn target_done(&self, target: &str, state: TargetState, detail: &str);
    /// The wave is over.
    fn wave_end(&self);
    /// A plugin log line.
    fn log(&self, target: &str, step: &str, level: Level, message: &str);
    /// Plugin progress.
    fn progress(&self, target: &str, step: &str, message: &str, fraction: Option<f32>);
}

/// Shows nothing.
pub struct Quiet;

impl Ui for Quiet {
    fn note(&self, _: &str) {}
    fn wave_start(&self, _: &str, _: usize) {}
    fn step(&self, _: &str, _: &str, _: usize, _: usize) {}
    fn target_done(&self, _: &str, _: TargetState, _: &str) {}
    fn wave_end(&self) {}
    fn log(&self, _: &str, _: &str, _: Level, _: &str) {}
    fn progress(&self, _: &str, _: &str, _: &str, _: Option<f32>) {}
}

/// Progress bars on a terminal, plain lines elsewhere. Secrets are redacted.
pub struct Term {
    redact: Arc<Redactor>,
    bars: Option<MultiProgress>,
    state: Mutex<TermState>,
    verbose: bool,
}

#[derive(Default)]
struct TermState {
    wave: Option<ProgressBar>,
    targets: HashMap<String, ProgressBar>,
    /// Without bars: when each target's progress may be printed next (long steps only).
    next_line: HashMap<String, Instant>,
}

/// Without bars, a step's progress is printed once it has run this long, then this often.
const QUIET_FOR: Duration = Duration::from_secs(2);
const LINE_EVERY: Duration = Duration::from_secs(5);

impl Term {
    /// A terminal UI; bars only when stderr is a terminal.
    pub fn new(redact: Arc<Redactor>, verbose: bool) -> Self {
        let bars = std::io::stderr().is_terminal().then(MultiProgress::new);
        Term {
            redact,
            bars,
            state: Mutex::new(TermState::default()),
            verbose,
        }
    }

    fn line(&self, text: &str) {
        // Plugin text can carry escape sequences and line breaks: shown escaped, with every
        // further line marked as a continuation.
        let text = crate::plugin::authority::text::quoted(&self.redact.redact(text));
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Ui for Term {
    fn note(&self, message: &str) {
        self.line(message);
    }

    fn wave_start(&self, name: &str, targets: usize) {
        self.line(&format!("▶ wave {name}: {targets} target(s)"));
        if let Some(m) = &self.bars {
            let bar = m.add(ProgressBar::new(targets as u64));
            bar.set_style(
                ProgressStyle::with_template("  {prefix} [{bar:30}] {pos}/{len} targets {elapsed}")
                    .unwrap()
                    .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            self.state.lock().unwrap().wave = Some(bar);
        }
    }

    fn step(&self, target: &str, step: &str, n: usize, of: usize) {
        match &self.bars {
            Some(m) => {
                let mut st = self.state.lock().unwrap();
                let bar = st.targets.entry(target.to_string()).or_insert_with(|| {
                    let b = m.add(ProgressBar::new_spinner());
                    b.set_style(
                        ProgressStyle::with_template("    {spinner} {prefix:12} {msg}").unwrap(),
                    );
                    b.set_prefix(target.to_string());
                    b.enable_steady_tick(std::time::Duration::from_millis(120));
                    b
                });
                bar.set_message(format!("{step} ({n}/{of})"));
            }
            None => {
                self.state
                    .lock()
                    .unwrap()
                    .next_line
                    .insert(target.to_string(), Instant::now() + QUIET_FOR);
                if self.verbose {
                    self.line(&format!("  {target}: {step} ({n}/{of})"));
                }
            }
        }
    }

    fn target_done(&self, target: &str, state: TargetState, detail: &str) {
        let mark = match state {
            TargetState::Updated => "✔",
            TargetState::RolledBack => "↺",
            _ => "✘",
        };
        let mut text = format!("  {mark} {target} {}", state.as_str());
        if !detail.is_empty() {
            text.push_str(&format!(": {detail}"));
        }
        if let Some(m) = &self.bars {
            let mut st = self.state.lock().unwrap();
            if let Some(b) = st.targets.remove(target) {
                b.finish_and_clear();
                m.remove(&b);
            }
            if let Some(w) = &st.wave {
                w.inc(1);
            }
        }
        self.line(&text);
    }

    fn wave_end(&self) {
        let mut st = self.state.lock().unwrap();
        if let Some(w) = st.wave.take() {
            w.finish_and_clear();
            if let Some(m) = &self.bars {
                m.remove(&w);
            }
        }
    }

    fn log(&self, target: &str, step: &str, level: Level, message: &str) {
        if self.verbose || !matches!(level, Level::Debug | Level::Info) {
            let who = if target.is_empty() { "fleet" } else { target };
            self.line(&format!(
                "    [{}] {who} {step}: {message}",
                crate::plugin::model::level_name(level)
            ));
        }
    }

    fn progress(&self, target: &str, step: &str, message: &str, fraction: Option<f32>) {
        let pct = fraction
            .map(|f| format!(" {:.0}%", (f * 100.0).clamp(0.0, 100.0)))
            .unwrap_or_default();
        match &self.bars {
            Some(_) => {
                let st = self.state.lock().unwrap();
                if let Some(b) = st.targets.get(target) {
                    let msg = self.redact.redact(&format!("{step}: {message}{pct}"));
                    b.set_message(crate::plugin::authority::text::clean(&msg).replace('\n', " "));
                }
            }
            None => {
                let now = Instant::now();
                let due = {
                    let mut st = self.state.lock().unwrap();
                    let next = st.next_line.entry(target.to_string()).or_insert(now);
                    let due = self.verbose || now >= *next;
                    if due {
                        *next = now + LINE_EVERY;
                    }
                    due
                };
                if due {
                    self.line(&format!("    {target} {step}: {message}{pct}"));
                }
            }
        }
    }
}
