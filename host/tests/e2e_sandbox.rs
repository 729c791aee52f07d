//! A plugin gets nothing it was not granted: every escape attempt of the hostile fixture
//! fails with an error naming the grant, and faults never take the host down. The attack
//! runs on t2 only; t1 before it and t3 after it complete. A canary file outside the grants
//! is never changed nor shown. The escapes that need more set-up are in `e2e_escape.rs`.

mod common;

use common::hostile::Hostile;
use common::*;

#[test]
fn a_granted_read_works() {
    let h = Hostile::new("read-granted");
    let r = h.run();
    assert_eq!(r.code, 0, "{}", r.all());
    for id in ["t1", "t2", "t3"] {
        assert_eq!(r.state(id), "updated", "{}", r.all());
        // Each target sees its own folder.
        assert_eq!(
            r.output(id, "content").as_deref(),
            Some(format!("visible-{id}").as_str())
        );
    }
    h.assert_canary_safe(&r);
}

#[test]
fn reading_outside_the_grants_names_the_grant() {
    let h = Hostile::new("read-outside");
    let r = h.attack();
    r.assert_detail(&["/etc/passwd", "[grants] dirs"]);
    assert!(!r.all().contains("root:x:0:0"), "{}", r.all());
}

#[test]
fn a_symlink_out_of_a_grant_is_denied_and_names_the_grant() {
    let h = Hostile::new("symlink");
    std::os::unix::fs::symlink(h.canary_path(), h.root("t2").join("escape-link")).unwrap();
    let r = h.attack();
    // WASI only says "not permitted"; the host adds that the link leads out of the grant.
    // The canary stays unread (checked by `attack`).
    r.assert_detail(&["escape-link", "symbolic link", "[grants] dirs"]);
}

#[test]
fn climbing_out_of_a_grant_fails() {
    let h = Hostile::new("climb");
    // Inside the operator's grant, but outside the folder granted to t2.
    std::fs::write(h.tmp.join("granted/secret.txt"), "hidden").unwrap();
    let r = h.attack();
    r.assert_detail(&["secret.txt", "[grants] dirs"]);
    h.assert_nowhere(&r, "hidden");
}

#[test]
fn writing_outside_the_grants_fails() {
    let h = Hostile::new("write-readonly");
    let r = h.attack();
    r.assert_detail(&["/etc/cutover-planted"]);
    assert!(!std::path::Path::new("/etc/cutover-planted").exists());
}

#[test]
fn running_an_ungranted_program_names_the_grant() {
    // Granted by the spec but never requested by the plugin: still denied.
    let h = Hostile::new("exec-ungranted").grant_exec("/bin/sh");
    let r = h.attack();
    r.assert_detail(&["/bin/sh", "denied", "[grants] exec"]);
}

#[test]
fn ungranted_http_names_the_grant() {
    let h = Hostile::new("http-ungranted");
    let r = h.attack();
    r.assert_detail(&["127.0.0.1:9", "denied", "[grants] http"]);
}

#[test]
fn ungranted_secrets_name_the_spec_key() {
    let h = Hostile::new("secret-ungranted");
    let r = h.attack();
    r.assert_detail(&["secret `root-password` denied", "[secrets]"]);
}

#[test]
fn a_trap_is_a_typed_fault_naming_plugin_version_and_step() {
    let h = Hostile::new("trap");
    let r = h.attack();
    r.assert_detail(&["plugin hostile-adapter@0.1.0: step `attack` on target `t2`: trapped"]);
}

#[test]
fn memory_beyond_the_cap_is_stopped() {
    let h = Hostile::new("memory");
    let r = h.attack();
    r.assert_detail(&["hit its memory limit"]);
}

#[test]
fn a_runaway_loop_is_stopped_at_its_budget() {
    // The step asks for u32::MAX seconds; the operator's cap applies.
    let h = Hostile::new("spin").limit("max-step-timeout", "\"2s\"");
    let started = std::time::Instant::now();
    let r = h.attack();
    r.assert_detail(&["ran out of time"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn an_ungranted_request_is_refused_before_anything_runs() {
    let h = Hostile::new("read-granted");
    let p = h.write_spec();
    let original = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, original.replace("dirs = [", "dirs_disabled = [")).unwrap();
    let o = run(&h.journal(), &["run", p.to_str().unwrap()]);
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
    let o = run(&h.journal(), &["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.contains("requests read-write access to"), "{out}");
    assert!(out.contains("to [grants] dirs"), "{out}");
}

#[test]
fn a_plugin_pin_mismatch_is_refused() {
    let h = Hostile::new("read-granted");
    let p = h.write_spec();
    let spec_text = std::fs::read_to_string(&p).unwrap();
    let pinned = spec_text.replacen(
        "[adapter]\n",
        &format!("[adapter]\nsha256 = \"{}\"\n", "0".repeat(64)),
        1,
    );
    std::fs::write(&p, pinned).unwrap();
    let o = run(&h.journal(), &["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("does not match its pin"), "{}", text(&o));
}

#[test]
fn spec_errors_name_file_line_and_key() {
    let h = Hostile::new("read-granted");
    let p = h.write_spec();
    let text = std::fs::read_to_string(&p).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("memory = "))
        .unwrap();
    std::fs::write(&p, text.replace("memory = \"32MiB\"", "memory = \"lots\"")).unwrap();
    let o = run(&h.journal(), &["plan", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = common::text(&o);
    assert!(out.contains(&format!("{}:{line}:", p.display())), "{out}");
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
    assert_eq!(v["api"], "1.3.0");
    assert_eq!(v["steps"][2]["kind"], "target-rollout");
    // A plugin built for contract 1.0 still loads, as what it was built for.
    let old = run(
        &dir.path().join("j.db"),
        &[
            "plugin",
            "inspect",
            "--json",
            fixtures().join("hostile_adapter.wasm").to_str().unwrap(),
        ],
    );
    assert!(old.status.success(), "{}", text(&old));
    let old: serde_json::Value = serde_json::from_slice(&old.stdout).unwrap();
    assert_eq!(old["api"], "1.0.0");
    assert_eq!(v["steps"][2]["undo_idempotent"], true);
    assert_eq!(v["leases"][0], "{root}/.cutover-lease");
    let steps: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["fetch", "stop", "switch", "start", "health"]);
    // Requested by the step that runs it (shown as `exec {root}/bin/stop (step stop)`).
    assert!(
        v["capabilities"].as_array().unwrap().iter().any(|c| c
            .as_str()
            .is_some_and(|c| c.starts_with("exec {root}/bin/stop"))),
        "{v}"
    );
    let o = run(
        &dir.path().join("j.db"),
        &[
            "plugin",
            "inspect",
            plugins().join("grouped.wasm").to_str().unwrap(),
        ],
    );
    assert!(
        text(&o).contains("grouped 0.1.0: strategy (cutover:plugin@1.3.0)"),
        "{}",
        text(&o)
    );
}

#[test]
fn secret_outputs_are_journaled_and_redacted_everywhere_shown() {
    let h = Hostile::new("leak");
    let r = h.attack();
    for out in [&r.out, &r.status_text, &r.status_json] {
        assert!(!out.contains("k3y-0f-the-engine"), "{out}");
    }
    assert!(r.out.contains("the key is «redacted»"), "{}", r.out);
    // The journal itself keeps the value, so it survives a crash.
    let j = cutover::journal::Journal::open(&h.journal(), cutover::journal::Sync::Full).unwrap();
    let steps = j.steps(1).unwrap();
    let leak = steps
        .iter()
        .find(|r| r.target == "t2" && r.step == "attack")
        .unwrap();
    assert_eq!(leak.outputs[0].value, "k3y-0f-the-engine");
    assert!(leak.outputs[0].secret);
}

#[test]
fn copying_out_of_the_grants_names_the_grant() {
    let h = Hostile::new("copy-out");
    let r = h.attack();
    r.assert_detail(&["/tmp/cutover-stolen", "denied", "[grants] dirs"]);
    assert!(!std::path::Path::new("/tmp/cutover-stolen").exists());
}

#[test]
fn the_second_load_deserializes_from_the_cache_visibly_with_v() {
    let h = Hostile::new("read-granted");
    let p = h.write_spec();
    let journal = h.journal();
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
