//! The plugin author's kit through the real binary: `cutover plugin test` catches each broken
//! promise and passes every built-in strategy, a crate from `cutover plugin new` built outside
//! the repository passes it, the Python example adapter passes it and rolls out, and the host
//! refuses plugins built for an unknown contract version or with an inconsistent description.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// `cutover plugin test PLUGIN [--spec SPEC]` with a journal in `dir`.
fn plugin_test(dir: &Path, plugin: &Path, spec: Option<&Path>) -> (bool, String) {
    let mut args = vec![
        "plugin".to_string(),
        "test".into(),
        plugin.display().to_string(),
    ];
    if let Some(s) = spec {
        args.extend(["--spec".into(), s.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&dir.join("journal.db"), &args);
    (o.status.success(), text(&o))
}

/// A one-node fleet for the flawed adapter, with `flaw`.
fn flawed_spec(dir: &Path, flaw: &str) -> std::path::PathBuf {
    let node = dir.join(flaw).join("n1");
    std::fs::create_dir_all(&node).unwrap();
    std::fs::write(node.join("config"), "old\n").unwrap();
    let spec = dir.join(format!("{flaw}.toml"));
    std::fs::write(
        &spec,
        format!(
            "[adapter]\nplugin = \"flawed.wasm\"\n[adapter.params]\nflaw = \"{flaw}\"\n\
             [grants]\ndirs = [{{ path = \"{}\", access = \"read-write\" }}]\n\
             [[targets]]\nid = \"n1\"\nroot = \"{}\"\n",
            dir.join(flaw).display(),
            node.display()
        ),
    )
    .unwrap();
    spec
}

#[test]
fn conformance_catches_each_broken_promise() {
    let d = tempfile::tempdir().unwrap();
    let plugin = fixtures().join("flawed_adapter.wasm");
    let (ok, out) = plugin_test(d.path(), &plugin, Some(&flawed_spec(d.path(), "none")));
    assert!(ok && out.contains("PASSED"), "{out}");
    assert!(
        out.contains("step `count` on target `n1`: a second run changes nothing"),
        "{out}"
    );
    assert!(
        out.contains("rollback: 2 steps undone, newest first, put the targets back"),
        "{out}"
    );
    for (flaw, caught) in [
        (
            "not-idempotent",
            "step `count` on target `n1`: declared idempotent, but running it again (as after a crash) changed the target: changed",
        ),
        (
            "no-restore",
            "rollback (2 steps undone, newest first) did not put the targets back: changed",
        ),
        (
            "overrun",
            "step `settle` on target `n1` failed: it overran its budget of 1 s",
        ),
    ] {
        let (ok, out) = plugin_test(d.path(), &plugin, Some(&flawed_spec(d.path(), flaw)));
        assert!(!ok, "{flaw}: the run must fail:\n{out}");
        assert!(out.contains(caught), "{flaw}: expected {caught:?} in:\n{out}");
        assert!(out.contains("FAILED: ") && out.contains(" 1 failed"), "{flaw}:\n{out}");
    }
}

#[test]
fn the_host_refuses_unknown_versions_and_inconsistent_descriptions() {
    let d = tempfile::tempdir().unwrap();
    let journal = d.path().join("journal.db");
    // A component exporting the adapter interface of a contract 2.0.0 (in text form).
    let v2 = d.path().join("v2.wat");
    std::fs::write(
        &v2,
        r#"(component
  (core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (func $f (canon lift (core func $i "f")))
  (instance $a (export "describe" (func $f)))
  (export "cutover:plugin/adapter@2.0.0" (instance $a)))"#,
    )
    .unwrap();
    let o = run(&journal, &["plugin", "inspect", v2.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("was built for cutover:plugin 2.0.0, a major version this host does not load (it loads 1.0, 1.1, 1.2 and 1.3); rebuild the plugin with a cutover-sdk for 1.3"),
        "{}",
        text(&o)
    );
    let twins = fixtures().join("twin_steps.wasm");
    let o = run(&journal, &["plugin", "inspect", twins.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("broke the plugin contract: step `stop` is declared twice"),
        "{}",
        text(&o)
    );
}

#[test]
fn every_builtin_strategy_passes() {
    let d = tempfile::tempdir().unwrap();
    for s in ["grouped", "atomic", "rolling", "canary", "blue_green"] {
        let (ok, out) = plugin_test(d.path(), &plugins().join(format!("{s}.wasm")), None);
        assert!(ok, "{s}:\n{out}");
        assert!(
            out.contains("plans: ") && out.contains("valid over generated fleets"),
            "{out}"
        );
    }
    // A strategy that ignores constraints is caught.
    let (ok, out) = plugin_test(d.path(), &fixtures().join("bad_strategy.wasm"), None);
    assert!(!ok, "{out}");
    assert!(out.contains("the host would refuse it"), "{out}");
}

#[test]
fn a_plugin_from_plugin_new_builds_outside_the_repository_and_passes() {
    let d = tempfile::tempdir().unwrap();
    let journal = d.path().join("journal.db");
    let target = d.path().join("target");
    for (kind, name) in [("adapter", "hello-node"), ("strategy", "pairs")] {
        let o = run(
            &journal,
            &[
                "plugin",
                "new",
                kind,
                name,
                "--dir",
                d.path().to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let crate_dir = d.path().join(name);
        // Plain cargo, from the crate's own folder (its .cargo/config.toml applies).
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&crate_dir)
            .status()
            .unwrap();
        assert!(status.success(), "building {name}");
        let wasm = target
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let spec = crate_dir.join("test-fleet.toml");
        let (ok, out) = plugin_test(d.path(), &wasm, spec.exists().then_some(spec.as_path()));
        assert!(ok && out.contains("PASSED"), "{name}:\n{out}");
    }
}

#[test]
fn the_python_adapter_passes_and_rolls_out() {
    let o = Command::new(root().join("examples/python-adapter/build"))
        .output()
        .expect("the build script runs");
    assert!(o.status.success(), "{}", text(&o));
    let wasm = root().join(String::from_utf8_lossy(&o.stdout).trim());
    let d = tempfile::tempdir().unwrap();
    let fleet = d.path().join("fleet");
    let content = "max-connections = 200";
    let mut spec = format!(
        "[strategy]\nplugin = \"{}\"\n[strategy.params]\ngroup-size = 1\n\
         [adapter]\nplugin = \"{}\"\n[adapter.params]\nversion = \"2.0.0\"\ncontent = \"{content}\"\n\
         [grants]\ndirs = [{{ path = \"{}\", access = \"read-write\" }}]\n",
        plugins().join("grouped.wasm").display(),
        wasm.display(),
        fleet.display()
    );
    for i in 1..=3 {
        let node = fleet.join(format!("n{i}"));
        std::fs::create_dir_all(&node).unwrap();
        std::fs::write(node.join("active.conf"), "max-connections = 100").unwrap();
        spec.push_str(&format!(
            "[[targets]]\nid = \"n{i}\"\nroot = \"{}\"\n",
            node.display()
        ));
    }
    let spec_path = d.path().join("fleet.toml");
    std::fs::write(&spec_path, spec).unwrap();
    let (ok, out) = plugin_test(d.path(), &wasm, Some(&spec_path));
    assert!(ok && out.contains("PASSED"), "{out}");
    // The test rolled every node back: a real rollout starts from the old configuration.
    for i in 1..=3 {
        let active = std::fs::read_to_string(fleet.join(format!("n{i}/active.conf"))).unwrap();
        assert_eq!(active, "max-connections = 100");
    }
    let o = run(
        &d.path().join("journal.db"),
        &["run", spec_path.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    for i in 1..=3 {
        let active = std::fs::read_to_string(fleet.join(format!("n{i}/active.conf"))).unwrap();
        assert_eq!(active, content, "n{i}");
    }
}
