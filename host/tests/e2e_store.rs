//! The plugin store against a real OCI registry (Debian's `docker-registry`, the CNCF
//! distribution registry, on loopback): plugins pushed, installed by tag and by digest, named
//! by reference in specs, and pinned by digest for the life of each rollout.

mod common;

use common::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// A registry on 127.0.0.1, stopped when dropped.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(port: u16) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry is installed (examples/test-suite installs it)");
        wait_for("the registry", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Registry {
            child,
            port,
            _dir: dir,
        }
    }

    fn reference(&self, repo_tag: &str) -> String {
        format!("oci://127.0.0.1:{}/{repo_tag}", self.port)
    }

    /// The digest of a manifest, as the registry reports it.
    fn manifest_digest(&self, repo: &str, tag: &str) -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "HEAD /v2/{repo}/manifests/{tag} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n\r\n"
        )
        .unwrap();
        let mut head = String::new();
        s.read_to_string(&mut head).unwrap();
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("docker-content-digest")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no digest in {head}"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cutover` with this test's journal and store.
fn cutover_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(cutover())
        .arg("--journal")
        .arg(dir.join("journal.db"))
        .arg("--store")
        .arg(dir.join("store"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: std::process::Output) -> String {
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    t
}

/// `wasm` with a custom section added: the same plugin, other bytes.
fn other_bytes(wasm: &Path, to: &Path) -> PathBuf {
    let mut bytes = std::fs::read(wasm).unwrap();
    let name = b"note";
    let payload = b"rebuilt";
    bytes.push(0); // custom section
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    std::fs::write(to, bytes).unwrap();
    to.to_path_buf()
}

/// A web server on 127.0.0.1 serving `body` at every path but `*.minisig` (404), for a minute.
fn serve(body: Vec<u8>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(16) {
            let Ok(mut s) = s else { continue };
            let mut req = [0u8; 4096];
            let n = s.read(&mut req).unwrap_or(0);
            let line = String::from_utf8_lossy(&req[..n]).to_string();
            if line
                .split_whitespace()
                .nth(1)
                .is_some_and(|p| p.ends_with(".minisig"))
            {
                let _ = s.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            } else {
                let _ = write!(
                    s,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(&body);
            }
        }
    });
    port
}

fn sha256_of(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
    )
}

/// The digest the journal recorded for `rollout`'s adapter.
fn adapter_digest(dir: &Path, rollout: i64) -> String {
    let rows = journal_query(
        &dir.join("journal.db"),
        &format!("SELECT digest FROM plugins WHERE rollout = {rollout} AND role = 'adapter'"),
    );
    rows[0][0].clone()
}

#[test]
fn plugins_install_by_tag_and_digest_and_specs_run_them_by_reference() {
    let reg = Registry::start(5071);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let wasm = plugins().join("release_dir.wasm");
    let tag = reg.reference("cutover/release-dir:2.0");
    let pushed = ok(cutover_in(
        w,
        &["plugin", "push", wasm.to_str().unwrap(), &tag],
    ));
    assert!(
        pushed.contains("adapter plugin, cutover:plugin@1.3.0"),
        "{pushed}"
    );
    let installed = ok(cutover_in(w, &["plugin", "install", &tag]));
    let digest = sha256_of(&wasm);
    assert!(
        installed.contains(&format!("installed {tag}: {digest}")),
        "{installed}"
    );
    // By the manifest's digest too: the same plugin bytes.
    let manifest = reg.manifest_digest("cutover/release-dir", "2.0");
    let by_digest = reg.reference(&format!("cutover/release-dir@{manifest}"));
    let installed = ok(cutover_in(w, &["plugin", "install", &by_digest]));
    assert!(installed.contains(&digest), "{installed}");
    let list: serde_json::Value =
        serde_json::from_str(&ok(cutover_in(w, &["plugin", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["digest"], digest.as_str());
    assert_eq!(list[0]["references"].as_array().unwrap().len(), 2, "{list}");
    // (The URL is installed below, a third reference to the same bytes.)
    // Inspect by reference.
    let shown = ok(cutover_in(w, &["plugin", "inspect", &tag]));
    assert!(shown.contains("release-dir"), "{shown}");
    // From a URL: only with its digest pinned, and only if the bytes match it.
    let port = serve(std::fs::read(&wasm).unwrap());
    let url = format!("http://127.0.0.1:{port}/release_dir.wasm");
    let o = cutover_in(w, &["plugin", "install", &url]);
    assert!(text(&o).contains("needs its digest pinned"), "{}", text(&o));
    let wrong = format!("{url}#sha256={}", "0".repeat(64));
    let o = cutover_in(w, &["plugin", "install", &wrong]);
    assert!(text(&o).contains("not the pinned"), "{}", text(&o));
    let pinned = format!("{url}#sha256={}", &digest[7..]);
    let installed = ok(cutover_in(w, &["plugin", "install", &pinned]));
    assert!(
        installed.contains(&format!("installed {pinned}: {digest}")),
        "{installed}"
    );

    // A spec naming the plugin by reference runs it, and the journal keeps its digest.
    let f = SimFleet::build("node-sim", &["--nodes", "3", "--base-port", "18810"]);
    f.set_spec(&format!("\"{}\"", wasm.display()), &format!("\"{tag}\""));
    let o = Command::new(cutover())
        .arg("--journal")
        .arg(w.join("journal.db"))
        .arg("--store")
        .arg(w.join("store"))
        .args(["run", &f.spec()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(adapter_digest(w, 1), digest);

    // Not installed: refused before anything runs, with the command to run.
    let missing = reg.reference("cutover/release-dir:9.9");
    f.set_spec(&format!("\"{tag}\""), &format!("\"{missing}\""));
    let o = cutover_in(w, &["run", &f.spec()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!("run `cutover plugin install {missing}`")),
        "{}",
        text(&o)
    );
    // Something that is not a plugin is not installed. (The spec's file plugins are kept
    // too: the strategy, by now.)
    let kept = || {
        serde_json::from_str::<serde_json::Value>(&ok(cutover_in(w, &["plugin", "list", "--json"])))
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    let before = kept();
    assert_eq!(before, 2);
    let junk = w.join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let o = cutover_in(w, &["plugin", "install", junk.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("is not a plugin this cutover loads"),
        "{}",
        text(&o)
    );
    assert_eq!(kept(), before);
}

#[test]
fn a_moved_tag_changes_neither_a_paused_rollout_nor_its_resume_and_two_versions_run_at_once() {
    let reg = Registry::start(5072);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let wasm = plugins().join("release_dir.wasm");
    let tag = reg.reference("cutover/release-dir:stable");
    ok(cutover_in(
        w,
        &["plugin", "push", wasm.to_str().unwrap(), &tag],
    ));
    ok(cutover_in(w, &["plugin", "install", &tag]));
    let v1 = sha256_of(&wasm);

    // Rollout 1 pauses after its first group, on v1.
    let f1 = SimFleet::build("node-sim", &["--nodes", "4", "--base-port", "18820"]);
    f1.set_spec(&format!("\"{}\"", wasm.display()), &format!("\"{tag}\""));
    f1.set_spec(
        "group-size = \"4\"",
        "group-size = \"2\"\napprove-first-group = true",
    );
    let o = cutover_in(w, &["run", &f1.spec()]);
    assert!(text(&o).contains("paused"), "{}", text(&o));
    assert_eq!(adapter_digest(w, 1), v1);

    // The tag moves to other bytes.
    let rebuilt = other_bytes(&wasm, &w.join("release_dir-rebuilt.wasm"));
    let v2 = sha256_of(&rebuilt);
    assert_ne!(v1, v2);
    ok(cutover_in(
        w,
        &["plugin", "push", rebuilt.to_str().unwrap(), &tag],
    ));
    let moved = ok(cutover_in(w, &["plugin", "install", &tag]));
    assert!(
        moved.contains(&format!("pointed at {v1} before")),
        "{moved}"
    );

    // Rollout 2 on another fleet takes v2 while rollout 1 is still paused on v1.
    let f2 = SimFleet::build("node-sim", &["--nodes", "2", "--base-port", "18830"]);
    f2.set_spec(&format!("\"{}\"", wasm.display()), &format!("\"{tag}\""));
    // Its own target ids: a target belongs to one rollout at a time.
    let spec = std::fs::read_to_string(f2.spec()).unwrap();
    std::fs::write(f2.spec(), spec.replace("id = \"node-", "id = \"other-")).unwrap();
    ok(cutover_in(w, &["run", &f2.spec()]));
    assert_eq!(adapter_digest(w, 2), v2);

    // v1 cannot be removed while rollout 1 may resume.
    let o = cutover_in(w, &["plugin", "remove", &v1]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("used by a rollout"), "{}", text(&o));

    // Rollout 1 goes on (`approve` resumes it) on v1, whatever the tag says now.
    let o = cutover_in(w, &["approve", "1"]);
    let out = text(&o);
    assert!(out.contains("completed"), "{out}");
    assert_eq!(adapter_digest(w, 1), v1);
    let status: serde_json::Value =
        serde_json::from_str(&ok(cutover_in(w, &["status", "1", "--json"]))).unwrap();
    let shown = status["plugins"].to_string();
    assert!(shown.contains(&v1) && shown.contains(&tag), "{status}");

    // Finished: v1 may go now.
    ok(cutover_in(w, &["plugin", "remove", &v1]));
    let list = ok(cutover_in(w, &["plugin", "list"]));
    assert!(!list.contains(&v1) && list.contains(&v2), "{list}");
}

/// Append `[trust] keys = [key]` to a fleet's spec.
fn trust(f: &SimFleet, key: &Path) {
    let spec = std::fs::read_to_string(f.spec()).unwrap();
    std::fs::write(
        f.spec(),
        format!("{spec}\n[trust]\nkeys = [\"{}\"]\n", key.display()),
    )
    .unwrap();
}

#[test]
fn under_a_trust_policy_only_plugins_signed_by_a_listed_key_run() {
    let reg = Registry::start(5073);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let k = |name: &str| w.join(name);
    let keygen = ok(cutover_in(
        w,
        &["plugin", "keygen", k("vendor").to_str().unwrap()],
    ));
    let vendor = keygen
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    ok(cutover_in(
        w,
        &["plugin", "keygen", k("stranger").to_str().unwrap()],
    ));
    // The vendor signs copies of the adapter and the strategy (FILE.minisig beside each).
    let adapter = k("release_dir.wasm");
    let strategy = k("grouped.wasm");
    std::fs::copy(plugins().join("release_dir.wasm"), &adapter).unwrap();
    std::fs::copy(plugins().join("grouped.wasm"), &strategy).unwrap();
    for f in [&adapter, &strategy] {
        let signed = ok(cutover_in(
            w,
            &[
                "plugin",
                "sign",
                f.to_str().unwrap(),
                "--key",
                k("vendor.key").to_str().unwrap(),
            ],
        ));
        assert!(signed.contains(&format!("with key {vendor}")), "{signed}");
    }
    // Published with its signature; installed from the registry, signature included.
    let tag = reg.reference("cutover/release-dir:signed");
    let pushed = ok(cutover_in(
        w,
        &["plugin", "push", adapter.to_str().unwrap(), &tag],
    ));
    assert!(pushed.contains("with its signature"), "{pushed}");
    let installed = ok(cutover_in(w, &["plugin", "install", &tag]));
    assert!(
        installed.contains(&format!("signed by key {vendor}")),
        "{installed}"
    );

    let f = SimFleet::build("node-sim", &["--nodes", "2", "--base-port", "18840"]);
    let original_adapter = format!("\"{}\"", plugins().join("release_dir.wasm").display());
    let original_strategy = format!("\"{}\"", plugins().join("grouped.wasm").display());
    f.set_spec(&original_adapter, &format!("\"{tag}\""));
    f.set_spec(&original_strategy, &format!("\"{}\"", strategy.display()));
    trust(&f, &k("vendor.pub"));
    let run = |f: &SimFleet| cutover_in(w, &["run", &f.spec()]);
    let o = run(&f);
    assert!(o.status.success(), "{}", text(&o));
    let status: serde_json::Value =
        serde_json::from_str(&ok(cutover_in(w, &["status", "1", "--json"]))).unwrap();
    for p in status["plugins"].as_array().unwrap() {
        assert_eq!(p["signer"], vendor.as_str(), "{status}");
    }

    // Unsigned (other bytes, pushed without a signature): refused before anything runs.
    let unsigned = other_bytes(&plugins().join("release_dir.wasm"), &k("unsigned.wasm"));
    let utag = reg.reference("cutover/release-dir:unsigned");
    ok(cutover_in(
        w,
        &["plugin", "push", unsigned.to_str().unwrap(), &utag],
    ));
    ok(cutover_in(w, &["plugin", "install", &utag]));
    let g = SimFleet::build("node-sim", &["--nodes", "2", "--base-port", "18850"]);
    g.set_spec(&original_adapter, &format!("\"{utag}\""));
    g.set_spec(&original_strategy, &format!("\"{}\"", strategy.display()));
    trust(&g, &k("vendor.pub"));
    let refused = |f: &SimFleet, why: &str| {
        let o = run(f);
        let out = text(&o);
        assert!(!o.status.success(), "{out}");
        assert!(out.contains(why), "{out}");
        assert!(out.contains(&vendor), "the expected key is named: {out}");
    };
    refused(&g, &format!("the adapter plugin {utag}"));
    refused(
        &g,
        "is unsigned, and the trust policy requires a signature by one of",
    );

    // Tampered: other bytes beside the vendor's signature of the original.
    let tampered = other_bytes(&plugins().join("release_dir.wasm"), &k("tampered.wasm"));
    std::fs::copy(k("release_dir.wasm.minisig"), k("tampered.wasm.minisig")).unwrap();
    g.set_spec(
        &format!("\"{utag}\""),
        &format!("\"{}\"", tampered.display()),
    );
    refused(
        &g,
        "does not match its bytes: the plugin was changed after it was signed",
    );

    // Signed by a key the policy does not list.
    let stranger = k("stranger-signed.wasm");
    std::fs::copy(&unsigned, &stranger).unwrap();
    ok(cutover_in(
        w,
        &[
            "plugin",
            "sign",
            stranger.to_str().unwrap(),
            "--key",
            k("stranger.key").to_str().unwrap(),
        ],
    ));
    g.set_spec(
        &format!("\"{}\"", tampered.display()),
        &format!("\"{}\"", stranger.display()),
    );
    refused(&g, "which the trust policy does not list");
    // None of the refused rollouts started.
    let rollouts = journal_query(&w.join("journal.db"), "SELECT count(*) FROM rollouts");
    assert_eq!(rollouts, [["1"]]);

    // Air-gapped: the plugin and its .minisig as files, no registry involved.
    let bundle = k("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::copy(&adapter, bundle.join("release_dir.wasm")).unwrap();
    std::fs::copy(
        k("release_dir.wasm.minisig"),
        bundle.join("release_dir.wasm.minisig"),
    )
    .unwrap();
    drop(reg);
    let offline = tempfile::tempdir().unwrap();
    let installed = ok(cutover_in(
        offline.path(),
        &[
            "plugin",
            "install",
            bundle.join("release_dir.wasm").to_str().unwrap(),
        ],
    ));
    assert!(
        installed.contains(&format!("signed by key {vendor}")),
        "{installed}"
    );
    let key = k("vendor.pub");
    let verified = ok(cutover_in(
        offline.path(),
        &[
            "plugin",
            "verify",
            bundle.join("release_dir.wasm").to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    ));
    assert!(
        verified.contains(&format!("signed by key {vendor}")),
        "{verified}"
    );
    let o = cutover_in(
        offline.path(),
        &[
            "plugin",
            "verify",
            tampered.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}
