//! The hostile adapter's fleet: three targets, each with its own folder under one granted
//! directory, the attack on `t2` only, and a canary file outside every grant that no attack
//! may read or change.
//!
//! Layout of the temporary folder `<tmp>`:
//! - `granted/t1`, `granted/t2`, `granted/t3`: the targets' roots, each with `allowed.txt`;
//!   `granted` is the one directory the spec grants (read-write);
//! - `canary/canary.txt`: the canary, with content unique to the test;
//! - `tools/prog`: a shell script tests may grant and give to `t2` as label `prog`;
//! - `spec.toml`, `j.db`: the spec and the journal.

use super::{journal_dump, run, run_env, text, unique};
use std::path::{Path, PathBuf};

/// What `tools/prog` does, by its first argument: `env` prints its environment;
/// `spawn-sleep NAME` starts `tools/NAME 1000` (a link to `sleep` the test made, so that its
/// command line carries a marker) and waits for it; `flood N` writes N bytes of `~`.
const PROG: &str = r#"#!/bin/sh
case "$1" in
env) exec env ;;
spawn-sleep) "$(dirname "$0")/$2" 1000 & wait ;;
flood) head -c "$2" /dev/zero | tr '\0' '~' ;;
*) echo "prog: $*" ;;
esac
"#;

/// `cutover status` answered: it exits with the rollout's code (0, 2, 3 or 4), not as an
/// error (1) or a crash.
pub fn assert_status_works(o: &std::process::Output) {
    let out = text(o);
    assert!(
        matches!(o.status.code(), Some(0 | 2 | 3 | 4)) && !out.contains("panicked"),
        "`cutover status` failed ({:?}): {out}",
        o.status.code()
    );
}

/// A spec for the hostile adapter, built up by the test, and its folder.
pub struct Hostile {
    _dir: tempfile::TempDir,
    /// The temporary folder (canonical).
    pub tmp: PathBuf,
    /// The canary's content.
    pub canary: String,
    params: Vec<(String, String)>,
    limits: Vec<(String, String)>,
    grants: Vec<(String, String)>,
    exec: Vec<String>,
    tables: String,
    labels: Vec<(String, String, String)>,
    envs: Vec<(String, String)>,
}

/// A TOML string (JSON's escapes are TOML's).
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl Hostile {
    /// The fleet, with `attack` on `t2`.
    pub fn new(attack: &str) -> Hostile {
        let dir = tempfile::tempdir().unwrap();
        let tmp = std::fs::canonicalize(dir.path()).unwrap();
        for id in ["t1", "t2", "t3"] {
            let root = tmp.join("granted").join(id);
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("allowed.txt"), format!("visible-{id}")).unwrap();
        }
        let canary = unique("CANARY");
        std::fs::create_dir_all(tmp.join("canary")).unwrap();
        std::fs::write(tmp.join("canary/canary.txt"), &canary).unwrap();
        std::fs::create_dir_all(tmp.join("tools")).unwrap();
        let prog = tmp.join("tools/prog");
        std::fs::write(&prog, PROG).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let granted = tmp.join("granted");
        Hostile {
            _dir: dir,
            canary,
            params: Vec::new(),
            limits: vec![
                ("memory".into(), quote("32MiB")),
                // Never the host's default of an hour: a test that hangs fails instead.
                ("max-step-timeout".into(), quote("30s")),
            ],
            grants: vec![
                (
                    "dirs".into(),
                    format!(
                        "[{{ path = {}, access = \"read-write\" }}]",
                        quote(&granted.display().to_string())
                    ),
                ),
                ("env".into(), "[\"SAFE_VAR\"]".into()),
            ],
            exec: Vec::new(),
            tables: String::new(),
            labels: vec![("t2".into(), "attack".into(), quote(attack))],
            envs: Vec::new(),
            tmp,
        }
    }

    fn set(list: &mut Vec<(String, String)>, key: &str, raw: String) {
        match list.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = raw,
            None => list.push((key.to_string(), raw)),
        }
    }

    /// `[limits] key = raw` (raw TOML: `"2s"` with its quotes, or `1000`).
    pub fn limit(mut self, key: &str, raw: &str) -> Self {
        Self::set(&mut self.limits, key, raw.to_string());
        self
    }

    /// `[grants] key = raw` (raw TOML), replacing any earlier value.
    pub fn grant(mut self, key: &str, raw: &str) -> Self {
        Self::set(&mut self.grants, key, raw.to_string());
        self
    }

    /// Add `program` (a path or pattern) to `[grants] exec`.
    pub fn grant_exec(mut self, program: &str) -> Self {
        self.exec.push(program.to_string());
        self
    }

    /// `[adapter.params] key = "value"`.
    pub fn param(mut self, key: &str, value: &str) -> Self {
        Self::set(&mut self.params, key, quote(value));
        self
    }

    /// The label `key = "value"` on `target`.
    pub fn label(mut self, target: &str, key: &str, value: &str) -> Self {
        self.labels.retain(|(t, k, _)| !(t == target && k == key));
        self.labels
            .push((target.to_string(), key.to_string(), quote(value)));
        self
    }

    /// Give `target` the program `tools/prog` (label `prog`) and grant it.
    pub fn prog(self, target: &str) -> Self {
        let prog = self.prog_path().display().to_string();
        self.label(target, "prog", &prog).grant_exec(&prog)
    }

    /// Raw TOML tables appended after `[grants]`, e.g. a `[secrets]` table.
    pub fn table(mut self, raw: &str) -> Self {
        self.tables.push_str(raw);
        self.tables.push('\n');
        self
    }

    /// A variable set in the environment of `cutover`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    pub fn prog_path(&self) -> PathBuf {
        self.tmp.join("tools/prog")
    }

    /// A target's root folder.
    pub fn root(&self, id: &str) -> PathBuf {
        self.tmp.join("granted").join(id)
    }

    pub fn canary_path(&self) -> PathBuf {
        self.tmp.join("canary/canary.txt")
    }

    pub fn journal(&self) -> PathBuf {
        self.tmp.join("j.db")
    }

    pub fn spec_path(&self) -> PathBuf {
        self.tmp.join("spec.toml")
    }

    /// The spec's text.
    pub fn spec_text(&self) -> String {
        let (plugins, fixtures) = (super::plugins(), super::fixtures());
        let mut s = format!(
            "[strategy]\nplugin = {}\n[strategy.params]\non-failure = \"continue\"\n\
             [adapter]\nplugin = {}\n[adapter.params]\n",
            quote(&plugins.join("rolling.wasm").display().to_string()),
            quote(&fixtures.join("hostile_adapter.wasm").display().to_string()),
        );
        for (k, v) in &self.params {
            s.push_str(&format!("{k} = {v}\n"));
        }
        s.push_str("[limits]\n");
        for (k, v) in &self.limits {
            s.push_str(&format!("{k} = {v}\n"));
        }
        s.push_str("[grants]\n");
        for (k, v) in &self.grants {
            s.push_str(&format!("{k} = {v}\n"));
        }
        if !self.exec.is_empty() && !self.grants.iter().any(|(k, _)| k == "exec") {
            let list: Vec<String> = self.exec.iter().map(|e| quote(e)).collect();
            s.push_str(&format!("exec = [{}]\n", list.join(", ")));
        }
        s.push_str(&self.tables);
        for id in ["t1", "t2", "t3"] {
            s.push_str(&format!(
                "[[targets]]\nid = \"{id}\"\nroot = {}\n",
                quote(&self.root(id).display().to_string())
            ));
            for (_, k, v) in self.labels.iter().filter(|(t, _, _)| t == id) {
                s.push_str(&format!("{k} = {v}\n"));
            }
        }
        s
    }

    /// Write the spec; its path.
    pub fn write_spec(&self) -> PathBuf {
        let p = self.spec_path();
        std::fs::write(&p, self.spec_text()).unwrap();
        p
    }

    /// The environment `cutover` runs with (on top of the test's).
    pub fn envs(&self) -> &[(String, String)] {
        &self.envs
    }

    /// `cutover <command> SPEC` within the deadline, with the fleet's environment.
    pub fn cutover(&self, command: &str) -> std::process::Output {
        let spec = self.write_spec();
        run_env(
            &self.journal(),
            &[command, spec.to_str().unwrap()],
            &self.envs,
        )
    }

    /// `cutover run SPEC` (within the deadline) and what the journal says of it after.
    pub fn run(&self) -> Run {
        let o = self.cutover("run");
        self.outcome(text(&o), o.status.code().unwrap_or(-1))
    }

    /// The journal's view of rollout 1 after a run that printed `out` and exited `code`.
    pub fn outcome(&self, out: String, code: i32) -> Run {
        let s = run(&self.journal(), &["status", "1", "--json"]);
        let status = serde_json::from_slice(&s.stdout).unwrap_or_default();
        let t = run(&self.journal(), &["status", "1"]);
        assert_status_works(&t);
        Run {
            code,
            out,
            status,
            status_json: text(&s),
            status_text: text(&t),
        }
    }

    /// Run the attack: it fails on `t2` only (exit 2), `t1` and `t3` are updated, and the
    /// canary is untouched and shown nowhere.
    pub fn attack(&self) -> Run {
        let r = self.run();
        assert_eq!(r.code, 2, "exit code: {}", r.all());
        for benign in ["t1", "t3"] {
            assert_eq!(r.state(benign), "updated", "{benign}: {}", r.all());
        }
        assert_eq!(r.state("t2"), "failed", "t2: {}", r.all());
        self.assert_canary_safe(&r);
        r
    }

    /// Everything a reader could see after the run: its output, `status`, `status --json`,
    /// `history --json` and every column of every table of the journal.
    pub fn shown(&self, r: &Run) -> Vec<(&'static str, String)> {
        let history = run(&self.journal(), &["history", "--json"]);
        let mut shown = vec![
            ("run output", r.out.clone()),
            ("status", r.status_text.clone()),
            ("status --json", r.status_json.clone()),
            ("history --json", text(&history)),
        ];
        if self.journal().exists() {
            shown.push(("the journal", journal_dump(&self.journal())));
        }
        shown
    }

    /// `needle` appears nowhere a reader could see.
    pub fn assert_nowhere(&self, r: &Run, needle: &str) {
        for (what, t) in self.shown(r) {
            assert!(!t.contains(needle), "`{needle}` appears in {what}:\n{t}");
        }
    }

    /// The canary's folder holds the canary alone, unchanged, and its content is shown
    /// nowhere.
    pub fn assert_canary_safe(&self, r: &Run) {
        let content = std::fs::read_to_string(self.canary_path()).unwrap_or_default();
        assert_eq!(content, self.canary, "the canary was changed");
        let names: Vec<String> = std::fs::read_dir(self.tmp.join("canary"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["canary.txt"], "files appeared beside the canary");
        self.assert_nowhere(r, &self.canary);
    }

    /// Regular files under `dir` (symbolic links not followed) holding the canary's content.
    pub fn canary_copies(&self, dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(ty) = e.file_type() else { continue };
                if ty.is_dir() {
                    todo.push(e.path());
                } else if ty.is_file()
                    && std::fs::read(e.path()).is_ok_and(|b| b == self.canary.as_bytes())
                {
                    found.push(e.path());
                }
            }
        }
        found
    }
}

/// What a run printed and what the journal says of it.
pub struct Run {
    pub code: i32,
    /// stdout + stderr of `cutover run`.
    pub out: String,
    /// `status 1 --json`, parsed (null when there is no rollout).
    pub status: serde_json::Value,
    pub status_json: String,
    /// `status 1`.
    pub status_text: String,
}

impl Run {
    fn target(&self, id: &str) -> serde_json::Value {
        self.status["targets"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["id"] == id))
            .cloned()
            .unwrap_or_default()
    }

    /// A target's state (`updated`, `failed`, ...), empty when unknown.
    pub fn state(&self, id: &str) -> String {
        self.target(id)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A target's failure detail.
    pub fn detail(&self, id: &str) -> String {
        self.target(id)["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The latest value of output `key` of `target`'s steps.
    pub fn output(&self, target: &str, key: &str) -> Option<String> {
        self.status["steps"]
            .as_array()?
            .iter()
            .filter(|s| s["target"] == target)
            .flat_map(|s| s["outputs"].as_array().cloned().unwrap_or_default())
            .filter(|o| o["key"] == key)
            .filter_map(|o| o["value"].as_str().map(str::to_string))
            .next_back()
    }

    /// Everything, for assertion messages.
    pub fn all(&self) -> String {
        format!(
            "exit {}\n--- run\n{}\n--- status\n{}\n--- status --json\n{}",
            self.code, self.out, self.status_text, self.status_json
        )
    }

    /// `t2`'s detail contains every one of `wanted`.
    pub fn assert_detail(&self, wanted: &[&str]) {
        let d = self.detail("t2");
        for w in wanted {
            assert!(
                d.contains(w),
                "t2's detail lacks `{w}`: {d}\n{}",
                self.all()
            );
        }
    }
}
