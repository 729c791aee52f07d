//! A plugin gets nothing it was not granted: every escape attempt of the hostile fixture
//! fails with an error naming the grant, and faults never take the host down.

mod common;

use common::*;
use std::path::Path;

fn spec(dir: &Path, attack: &str, extra: &str) -> std::path::PathBuf {
    let plugins = plugins();
    let root = dir.join("granted");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("allowed.txt"), "visible").unwrap();
    std::fs::write(dir.join("secret.txt"), "hidden").unwrap();
    let _ = std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("escape-link"));
    let text = format!(
        r#"[strategy]
plugin = "{s}"
[adapter]
plugin = "{a}"
[adapter.params]
attack = "read-granted"
[limits]
memory = "32MiB"
[grants]
dirs = [{{ path = "{root}", access = "read" }}]
{extra}
# The attack runs on t2 only: t1 before it and t3 after it must complete.
[strategy.params]
on-failure = "continue"
[[targets]]
id = "t1"
root = "{root}"
[[targets]]
id = "t2"
root = "{root}"
attack = "{attack}"
[[targets]]
id = "t3"
root = "{root}"
"#,
        s = plugins.join("rolling.wasm").display(),
        a = plugins.join("hostile_adapter.wasm").display(),
        root = root.display(),
    );
    let p = dir.join(format!("{attack}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// Run the attack on t2; its failure detail. The host survives: t1 and t3 are updated.
fn attack(attack: &str, extra: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = spec(dir.path(), attack, extra);
    let journal = dir.path().join("j.db");
    let o = run(&journal, &["run", p.to_str().unwrap()]);
    let s = status_json(&journal, 1);
    let state = |id: &str| {
        s["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    for benign in ["t1", "t3"] {
        assert_eq!(state(benign)["state"], "updated", "{benign}: {s}");
    }
    let detail = state("t2")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (
        o.status.code().unwrap_or(-1),
        format!("{detail}\n{}", text(&o)),
    )
}

#[test]
fn a_granted_read_works() {
    let (code, out) = attack("read-granted", "");
    assert_eq!(code, 0, "{out}");
}

#[test]
fn reading_outside_the_grants_names_the_grant() {
    let (code, out) = attack("read-outside", "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("/etc/passwd") && out.contains("outside the directories granted"),
        "{out}"
    );
    assert!(out.contains("[grants] dirs"), "{out}");
}

#[test]
fn a_symlink_out_of_a_grant_is_denied_and_names_the_grant() {
    let (code, out) = attack("symlink", "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("escape-link: denied"), "{out}");
    assert!(out.contains("[grants] dirs"), "{out}");
    assert!(!out.contains("hidden"), "{out}");
}

#[test]
fn climbing_out_of_a_grant_fails() {
    let (code, out) = attack("climb", "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("secret.txt") && out.contains("[grants] dirs"),
        "{out}"
    );
    assert!(!out.contains("hidden"), "{out}");
}

#[test]
fn writing_into_a_read_only_grant_fails() {
    let (code, out) = attack("write-readonly", "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("read-only") && out.contains("read-write"),
        "{out}"
    );
}

#[test]
fn running_an_ungranted_program_names_the_grant() {
    let (code, out) = attack("exec", "exec = [\"/bin/sh\"]");
    assert_eq!(code, 2, "{out}");
    // Granted by the spec but never requested by the plugin: still denied.
    assert!(
        out.contains("exec of `/bin/sh` denied") && out.contains("[grants] exec"),
        "{out}"
    );
}

#[test]
fn ungranted_http_names_the_grant() {
    let (code, out) = attack("http", "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("HTTP to `127.0.0.1:9` denied") && out.contains("[grants] http"),
        "{out}"
    );
}

#[test]
fn ungranted_secrets_name_the_spec_key() {
    let (code, out) = attack("secret", "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("secret `root-password` denied") && out.contains("[secrets]"),
        "{out}"
    );
}

#[test]
fn a_trap_is_a_typed_fault_naming_plugin_version_and_step() {
    let (code, out) = attack("trap", "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("plugin hostile-adapter@0.1.0: step `attack` on target `t2`: trapped"),
        "{out}"
    );
}

#[test]
fn memory_beyond_the_cap_is_stopped() {
    let (code, out) = attack("memory", "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("hit its memory limit"), "{out}");
}

#[test]
fn a_runaway_loop_is_stopped_at_its_budget() {
    let (code, out) = attack("spin", "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ran out of time"), "{out}");
}

#[test]
fn an_ungranted_request_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let p = spec(dir.path(), "read-granted", "");
    let original = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, original.replace("dirs = [", "dirs_disabled = [")).unwrap();
    let o = run(&dir.path().join("j.db"), &["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("dirs_disabled"), "{}", text(&o));
    let no_dirs: String = original
        .lines()
        .map(|l| {
            if l.starts_with("dirs = [") {
                "dirs = []"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&p, no_dirs).unwrap();
    let o = run(&dir.path().join("j.db"), &["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.contains("requests read access to"), "{out}");
    assert!(out.contains("to [grants] dirs"), "{out}");
}

#[test]
fn a_plugin_pin_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = spec(dir.path(), "read-granted", "");
    let spec_text = std::fs::read_to_string(&p).unwrap();
    let pinned = spec_text.replacen(
        "[adapter]\n",
        &format!("[adapter]\nsha256 = \"{}\"\n", "0".repeat(64)),
        1,
    );
    std::fs::write(&p, pinned).unwrap();
    let o = run(&dir.path().join("j.db"), &["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("does not match its pin"), "{}", text(&o));
}

#[test]
fn spec_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = spec(dir.path(), "read-granted", "");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("memory = \"32MiB\"", "memory = \"lots\"")).unwrap();
    let o = run(&dir.path().join("j.db"), &["plan", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = common::text(&o);
    assert!(out.contains(&format!("{}:8:", p.display())), "{out}");
    assert!(out.contains("limits.memory"), "{out}");
}

#[test]
fn plugin_inspect_shows_world_steps_and_capabilities() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        &dir.path().join("j.db"),
        &[
            "plugin",
            "inspect",
            "--json",
            plugins().join("release_dir.wasm").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["world"], "adapter");
    assert_eq!(v["api"], "0.1.0");
    let steps: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["fetch", "stop", "switch", "start", "health"]);
    assert!(v["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "exec {root}/bin/stop"));
    let o = run(
        &dir.path().join("j.db"),
        &[
            "plugin",
            "inspect",
            plugins().join("grouped.wasm").to_str().unwrap(),
        ],
    );
    assert!(
        text(&o).contains("grouped 0.1.0: strategy (cutover:plugin@0.1.0)"),
        "{}",
        text(&o)
    );
}

#[test]
fn secret_outputs_are_journaled_and_redacted_everywhere_shown() {
    let dir = tempfile::tempdir().unwrap();
    let p = spec(dir.path(), "leak", "");
    let journal = dir.path().join("j.db");
    let o = run(&journal, &["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let shown = [
        text(&o),
        text(&run(&journal, &["status", "1"])),
        text(&run(&journal, &["status", "1", "--json"])),
    ];
    for out in &shown {
        assert!(!out.contains("k3y-0f-the-engine"), "{out}");
    }
    assert!(shown[0].contains("the key is «redacted»"), "{}", shown[0]);
    // The journal itself keeps the value, so it survives a crash.
    let j = cutover::journal::Journal::open(&journal, cutover::journal::Sync::Full).unwrap();
    let steps = j.steps(1).unwrap();
    let leak = steps.iter().find(|r| r.target == "t2").unwrap();
    assert_eq!(leak.outputs[0].value, "k3y-0f-the-engine");
    assert!(leak.outputs[0].secret);
}

#[test]
fn copying_out_of_the_grants_names_the_grant() {
    let (code, out) = attack("copy-out", "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("copy-tree into `/tmp/cutover-stolen` denied"),
        "{out}"
    );
    assert!(out.contains("[grants] dirs"), "{out}");
    assert!(!std::path::Path::new("/tmp/cutover-stolen").exists());
}

#[test]
fn the_second_load_deserializes_from_the_cache_visibly_with_v() {
    let dir = tempfile::tempdir().unwrap();
    let p = spec(dir.path(), "read-granted", "");
    let journal = dir.path().join("j.db");
    let first = text(&run(&journal, &["-v", "plan", p.to_str().unwrap()]));
    assert!(first.contains("hostile_adapter.wasm"), "{first}");
    assert!(
        first.contains("compiled and added to the precompiled cache"),
        "{first}"
    );
    let second = text(&run(&journal, &["-v", "plan", p.to_str().unwrap()]));
    assert_eq!(
        second
            .matches("deserialized from the precompiled cache")
            .count(),
        2,
        "strategy and adapter: {second}"
    );
    assert!(!second.contains("compiled and added"), "{second}");
    // Without -v the operator is not bothered with it.
    let quiet = text(&run(&journal, &["plan", p.to_str().unwrap()]));
    assert!(!quiet.contains("precompiled cache"), "{quiet}");
}
