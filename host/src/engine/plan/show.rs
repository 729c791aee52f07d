//! What a plan says of itself: its targets, its waves, one line per stage.

use super::{XPlan, XStage};

impl XPlan {
    /// Every target the plan names (in waves or on standby).
    pub fn targets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.stages {
            if let XStage::Wave { targets, .. } = s {
                for t in targets {
                    if !out.contains(t) {
                        out.push(t.clone());
                    }
                }
            }
        }
        for t in &self.standby {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }
}

impl XStage {
    /// One line for plans and progress.
    pub fn describe(&self) -> String {
        match self {
            XStage::Fleet { step } => format!("fleet step `{step}`"),
            XStage::Wave {
                name,
                targets,
                finalize,
                ..
            } => format!(
                "{}wave {name}: {} target{} ({})",
                if *finalize { "finalize " } else { "" },
                targets.len(),
                if targets.len() == 1 { "" } else { "s" },
                abbreviate(targets)
            ),
            XStage::Approval { message } => format!("gate: wait for `cutover approve` ({message})"),
            XStage::Soak { seconds } => format!("gate: soak for {seconds}s"),
            XStage::Analysis {
                name,
                count,
                interval,
            } => format!("gate: analysis `{name}` ({count} measurement(s), {interval}s apart)"),
        }
    }
}

impl XPlan {
    /// The strategy's waves in order, as target ids (not the finalize wave).
    pub fn wave_targets(&self) -> Vec<Vec<String>> {
        self.stages
            .iter()
            .filter_map(|s| match s {
                XStage::Wave {
                    targets,
                    index: Some(_),
                    ..
                } => Some(targets.clone()),
                _ => None,
            })
            .collect()
    }
}

pub(super) fn abbreviate(ids: &[String]) -> String {
    if ids.len() <= 6 {
        ids.join(", ")
    } else {
        format!("{}, ... {}", ids[..3].join(", "), ids[ids.len() - 1])
    }
}
