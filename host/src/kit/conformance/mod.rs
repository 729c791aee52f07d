//! `cutover plugin test`: a conformance run for any adapter or strategy. It checks what the
//! contract promises rather than what one product does: a description the host accepts;
//! steps that do what they declare (an idempotent step re-run after a crash changes
//! nothing, an undo puts the target back, a step ends within its budget); plans that place
//! every target once and respect every constraint over generated fleets.

mod adapter;
mod snapshot;
mod strategy;

pub use adapter::adapter;
pub use strategy::strategy;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Worth knowing, not a failure.
    Note,
}

/// One check of the run.
#[derive(Debug, Clone)]
pub struct Check {
    pub verdict: Verdict,
    pub what: String,
}

/// Every check of a run, in order, printed as it goes.
#[derive(Default)]
pub struct Report {
    pub checks: Vec<Check>,
    /// Print each check when it is made.
    pub live: bool,
}

impl Report {
    /// A report printing checks as they are made when `live`.
    pub fn new(live: bool) -> Report {
        Report {
            checks: Vec::new(),
            live,
        }
    }

    fn add(&mut self, verdict: Verdict, what: String) {
        if self.live {
            let mark = match verdict {
                Verdict::Pass => "ok  ",
                Verdict::Fail => "FAIL",
                Verdict::Note => "note",
            };
            println!("  {mark} {}", crate::plugin::authority::text::quoted(&what));
        }
        self.checks.push(Check { verdict, what });
    }

    /// A check that passed.
    pub fn pass(&mut self, what: impl Into<String>) {
        self.add(Verdict::Pass, what.into())
    }

    /// A check that failed.
    pub fn fail(&mut self, what: impl Into<String>) {
        self.add(Verdict::Fail, what.into())
    }

    /// Something worth knowing.
    pub fn note(&mut self, what: impl Into<String>) {
        self.add(Verdict::Note, what.into())
    }

    /// Checks that failed.
    pub fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count()
    }

    /// Checks that passed.
    pub fn passes(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Pass)
            .count()
    }
}
