//! The contract's rules for what an adapter says about itself, checked when it is loaded:
//! a plugin that breaks them is refused with every problem named, before anything runs.

use super::model::{Capability, Description};
use std::collections::BTreeSet;

/// Every problem of a description; empty when it is sound.
pub fn description(d: &Description) -> Vec<String> {
    let mut problems = Vec::new();
    if d.name.trim().is_empty() {
        problems.push("the adapter has no name".to_string());
    }
    if !semver(&d.version) {
        problems.push(format!(
            "version `{}` is not a semantic version (major.minor.patch)",
            d.version
        ));
    }
    let mut params = BTreeSet::new();
    for p in &d.parameters {
        if !params.insert(p.name.as_str()) {
            problems.push(format!("parameter `{}` is declared twice", p.name));
        }
    }
    let mut names = BTreeSet::new();
    for s in &d.steps {
        if !names.insert(s.name.as_str()) {
            problems.push(format!("step `{}` is declared twice", s.name));
        }
        if !step_name(&s.name) {
            problems.push(format!(
                "step name `{}` must be lowercase letters, digits and `-`",
                s.name
            ));
        }
        if s.default_timeout_s == 0 {
            problems.push(format!("step `{}` has a timeout of 0 s", s.name));
        }
        if s.undo_idempotent && !s.undoable {
            problems.push(format!(
                "step `{}` declares its undo idempotent but has no undo (undoable = false)",
                s.name
            ));
        }
    }
    if d.steps.is_empty() {
        problems.push("the adapter declares no steps".to_string());
    }
    let caps = d.capabilities.iter().map(|c| ("capability", c)).chain(
        d.steps
            .iter()
            .flat_map(|s| s.capabilities.iter().map(|c| ("step capability", c))),
    );
    for (what, c) in caps {
        let text = match c {
            Capability::Dir(r) => &r.path,
            Capability::Exec(x)
            | Capability::Http(x)
            | Capability::Tcp(x)
            | Capability::Secret(x)
            | Capability::Env(x) => x,
        };
        placeholders(&mut problems, what, text, &params);
    }
    for l in &d.leases {
        placeholders(&mut problems, "lease", l, &params);
    }
    problems
}

/// Each `{name}` (or `{name?}`) of `text` must be a declared parameter.
fn placeholders(problems: &mut Vec<String>, what: &str, text: &str, params: &BTreeSet<&str>) {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            problems.push(format!("{what} `{text}` has an unclosed `{{`"));
            return;
        };
        let key = after[..close].trim_end_matches('?');
        if !params.contains(key) {
            problems.push(format!(
                "{what} `{text}` uses `{{{key}}}`, which is not a declared parameter"
            ));
        }
        rest = &after[close + 1..];
    }
}

fn step_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `major.minor.patch`, with an optional pre-release or build suffix.
pub fn semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::model::{Access, DirRequest, Parameter, Step, StepKind};

    fn step(name: &str) -> Step {
        Step {
            name: name.into(),
            description: String::new(),
            kind: StepKind::TargetRollout,
            undoable: true,
            idempotent: true,
            undo_idempotent: true,
            default_timeout_s: 10,
            capabilities: vec![],
        }
    }

    fn desc(steps: Vec<Step>) -> Description {
        Description {
            name: "a".into(),
            version: "1.0.0".into(),
            summary: String::new(),
            parameters: vec![Parameter {
                name: "root".into(),
                description: String::new(),
                required: true,
                per_target: true,
                default: None,
            }],
            capabilities: vec![Capability::Dir(DirRequest {
                path: "{root}/x".into(),
                access: Access::Read,
            })],
            steps,
            leases: vec!["{root}/.lease".into()],
        }
    }

    #[test]
    fn a_sound_description_passes() {
        assert!(description(&desc(vec![step("a"), step("b-2")])).is_empty());
    }

    #[test]
    fn every_problem_is_named() {
        let mut bad = step("Stop");
        bad.undoable = false;
        bad.default_timeout_s = 0;
        let mut d = desc(vec![step("a"), step("a"), bad]);
        d.version = "1.0".into();
        d.leases.push("{home}/.lease".into());
        let p = description(&d).join("\n");
        for want in [
            "step `a` is declared twice",
            "`Stop` must be lowercase",
            "timeout of 0 s",
            "declares its undo idempotent but has no undo",
            "`1.0` is not a semantic version",
            "uses `{home}`, which is not a declared parameter",
        ] {
            assert!(p.contains(want), "missing {want:?} in:\n{p}");
        }
    }
}
