//! Sandbox escapes that need more than a denied call: links planted from inside the sandbox,
//! races against host-side copies, programs and environments, redirects, secrets echoed
//! back, terminal escape codes, FIFOs, floods, runaway processes and refusals before
//! anything runs. Each attack runs on t2 of the hostile fleet (see `common/hostile.rs`):
//! t1 and t3 complete, the run exits (or is killed and the test fails), and a canary file
//! outside the grants is never changed nor shown. The plain denials (reading outside the
//! grants, ungranted programs, hosts and secrets, traps, memory, time) are in
//! `e2e_sandbox.rs`.

mod common;

use common::hostile::{assert_status_works, quote, Hostile};
use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run `attack` on t2 and check the failure detail names `wanted`.
fn escape(h: Hostile, wanted: &[&str]) -> (Hostile, common::hostile::Run) {
    let r = h.attack();
    r.assert_detail(wanted);
    (h, r)
}

fn mkfifo(path: &Path) {
    let o = std::process::Command::new("mkfifo")
        .arg(path)
        .output()
        .expect("mkfifo runs");
    assert!(o.status.success(), "mkfifo: {}", text(&o));
}

// ---- Links planted from inside the sandbox ----

#[test]
fn a_granted_folder_replaced_by_a_link_is_not_preopened() {
    let h = Hostile::new("nested-preopen");
    std::fs::create_dir_all(h.root("t2").join("nested")).unwrap();
    // `{root}/nested/<this>` is the canary once `nested` leads to `/`.
    let rel = h.canary_path().display().to_string()[1..].to_string();
    let h = h.label("t2", "nested", "nested").label("t2", "arg", &rel);
    escape(h, &["symbolic link", "[grants] dirs"]);
}

#[test]
fn an_atomic_write_through_a_planted_link_is_denied() {
    let h = Hostile::new("write-through-link").label("t2", "arg", "../../canary");
    escape(h, &["symbolic link", "[grants] dirs"]);
}

#[test]
fn a_copy_through_a_planted_link_is_denied() {
    let h = Hostile::new("copy-through-link").label("t2", "arg", "../../canary");
    let (h, _) = escape(h, &["symbolic link", "[grants] dirs"]);
    assert_eq!(
        h.canary_copies(&h.tmp.join("granted")),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn copies_racing_a_directory_swapped_for_a_link_never_leave_the_grant() {
    let h = Hostile::new("copy-race");
    let tree = h.root("t2").join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/f.txt"), "original").unwrap();
    for d in 0..10 {
        std::fs::create_dir_all(tree.join(format!("d{d}"))).unwrap();
        for f in 0..30 {
            std::fs::write(tree.join(format!("d{d}/f{f}.txt")), format!("{d}/{f}")).unwrap();
        }
    }
    let stage = h.tmp.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::os::unix::fs::symlink(h.tmp.join("canary"), stage.join("link")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = {
        let (stop, sub) = (stop.clone(), tree.join("sub"));
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(10);
            let (real, link) = (stage.join("real"), stage.join("link"));
            let mut swaps = 0u32;
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                // `sub` becomes the link to the canary's folder, then the folder again.
                let _ = std::fs::rename(&sub, &real);
                let _ = std::fs::rename(&link, &sub);
                std::thread::sleep(Duration::from_micros(200));
                let _ = std::fs::rename(&sub, &link);
                let _ = std::fs::rename(&real, &sub);
                swaps += 1;
            }
            swaps
        })
    };
    let r = h.run();
    stop.store(true, Ordering::Relaxed);
    let swaps = swaps.join().unwrap();
    assert!(swaps > 0, "the race never ran");
    assert!(matches!(r.code, 0 | 2), "{}", r.all());
    for benign in ["t1", "t3"] {
        assert_eq!(r.state(benign), "updated", "{}", r.all());
    }
    h.assert_canary_safe(&r);
    assert_eq!(
        h.canary_copies(&h.tmp.join("granted")),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn a_copy_into_its_own_source_is_refused() {
    escape(Hostile::new("copy-self"), &["inside the source"]);
}

// ---- Programs, environment and working directory ----

#[test]
fn a_program_linked_into_a_writable_folder_is_not_run() {
    // The plugin plants `{root}/tool` -> /bin/sh itself (by a relative link).
    let (h, _) = escape(Hostile::new("exec-planted"), &["denied", "[grants] exec"]);
    assert!(
        h.root("t2").join("tool").is_symlink(),
        "the link was not planted"
    );
}

#[test]
fn dot_dot_after_a_granted_program_is_denied() {
    escape(
        Hostile::new("exec-dotdot").prog("t2"),
        &["denied", "[grants] exec"],
    );
}

#[test]
fn ld_preload_is_denied() {
    let h = Hostile::new("env-ld-preload").prog("t2");
    escape(
        h,
        &["environment variable `LD_PRELOAD` denied", "[grants] env"],
    );
}

#[test]
fn path_is_denied() {
    let h = Hostile::new("env-path").prog("t2");
    escape(h, &["environment variable `PATH` denied", "[grants] env"]);
}

#[test]
fn bash_env_is_denied() {
    let h = Hostile::new("env-bash-env").prog("t2");
    escape(
        h,
        &["environment variable `BASH_ENV` denied", "[grants] env"],
    );
}

#[test]
fn a_working_directory_outside_the_grants_is_denied() {
    let h = Hostile::new("cwd-outside").prog("t2");
    escape(h, &["working directory `/etc` denied", "[grants] dirs"]);
}

#[test]
fn granted_and_passed_variables_reach_a_program_and_nothing_else() {
    let h = Hostile::new("none")
        .prog("t1")
        .grant("pass-env", "[\"JAVA_HOME\"]")
        .env("JAVA_HOME", "/opt/fake-java")
        .env("HOSTILE_HOST_VAR", "1");
    let r = h.run();
    assert_eq!(r.code, 0, "{}", r.all());
    let env = r.output("t1", "env").unwrap_or_default();
    assert!(env.lines().any(|l| l == "SAFE_VAR=ok"), "{env}");
    assert!(
        env.lines().any(|l| l == "JAVA_HOME=/opt/fake-java"),
        "{env}"
    );
    assert!(!env.contains("HOSTILE_HOST_VAR"), "{env}");
    h.assert_canary_safe(&r);
}

#[test]
fn an_exec_pattern_matches_one_path_component_per_star() {
    let h = Hostile::new("none");
    let (tmp, prog) = (h.tmp.display().to_string(), h.prog_path());
    let h = h
        .label("t2", "prog", &prog.display().to_string())
        .grant_exec(&format!("{tmp}/*"));
    let o = h.cutover("run");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("[grants] exec"), "{}", text(&o));
    for f in ["j.db", "j.db-wal", "j.db-shm"] {
        let _ = std::fs::remove_file(h.tmp.join(f));
    }
    let h = h.grant("exec", &format!("[{}]", quote(&format!("{tmp}/**"))));
    let r = h.run();
    assert_eq!(r.code, 0, "{}", r.all());
    let env = r.output("t2", "env").unwrap_or_default();
    assert!(env.contains("SAFE_VAR=ok"), "{}", r.all());
    h.assert_canary_safe(&r);
}

#[test]
fn a_program_the_same_call_could_write_is_refused_before_anything_runs() {
    let h = Hostile::new("none");
    let tool = h.root("t2").join("bin/tool");
    std::fs::create_dir_all(tool.parent().unwrap()).unwrap();
    std::fs::write(&tool, "#!/bin/sh\necho tool\n").unwrap();
    let tool = tool.display().to_string();
    let h = h.label("t2", "conflict", &tool).grant_exec(&tool);
    let o = h.cutover("run");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for wanted in ["can write", "[grants] exec", "[grants] dirs"] {
        assert!(out.contains(wanted), "lacks `{wanted}`: {out}");
    }
    if h.journal().exists() {
        let steps = journal_query(&h.journal(), "SELECT count(*) FROM steps");
        assert_eq!(steps, [["0"]], "a step ran: {out}");
    }
}

// ---- HTTP and secrets ----

/// A server on 127.0.0.1 that answers up to `max` connections with `response` during the
/// next minute; its port and how many connections it took.
fn serve(response: String, max: usize) -> (u16, Arc<AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let taken = count.clone();
    std::thread::spawn(move || {
        let until = Instant::now() + DEADLINE;
        while Instant::now() < until && taken.load(Ordering::SeqCst) < max {
            let Ok((mut s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            taken.fetch_add(1, Ordering::SeqCst);
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(response.as_bytes());
        }
    });
    (port, count)
}

#[test]
fn a_redirect_to_an_ungranted_host_is_not_followed() {
    let (b, to_b) = serve(
        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nstolen".into(),
        4,
    );
    let (a, _) = serve(
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{b}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        4,
    );
    let h = Hostile::new("redirect")
        .label("t2", "http", &format!("http://127.0.0.1:{a}/"))
        .grant("http", &format!("[\"127.0.0.1:{a}\"]"));
    escape(h, &["redirect", "[grants] http"]);
    assert_eq!(to_b.load(Ordering::SeqCst), 0, "the redirect was followed");
}

#[test]
fn raw_wasi_sockets_stay_closed_even_to_a_granted_address() {
    let (port, count) = serve("HTTP/1.0 200 OK\r\n\r\n".into(), 4);
    let addr = format!("127.0.0.1:{port}");
    let h = Hostile::new("wasi-socket")
        .label("t2", "addr", &addr)
        .grant("http", &format!("[\"{addr}\"]"))
        .grant("tcp", &format!("[\"{addr}\"]"));
    escape(h, &["raw socket to"]);
    assert_eq!(count.load(Ordering::SeqCst), 0, "a raw socket connected");
}

#[test]
fn a_secret_echoed_back_by_the_plugin_is_redacted_everywhere() {
    let token = unique("tok");
    let h = Hostile::new("secret-leak")
        .label("t2", "secret", "api-token")
        .table("[secrets]\napi-token = { env = \"HOSTILE_TOKEN\" }")
        .env("HOSTILE_TOKEN", &token);
    let (h, r) = escape(h, &[]);
    h.assert_nowhere(&r, &token);
}

// ---- Time, abort and processes ----

/// Kills what a test started if it fails half-way: the run and the marked processes.
struct Reaper {
    child: std::process::Child,
    marker: String,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in processes_with(&self.marker) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

/// Start `h`'s run in the background, wait until `ready`, `cutover abort 1`: the run exits
/// within 15 s as aborted (4). The reaper, to check on what it started.
fn abort_when(h: &Hostile, marker: &str, mut ready: impl FnMut() -> bool) -> Reaper {
    let spec = h.write_spec();
    let log = std::fs::File::create(h.tmp.join("run.log")).unwrap();
    let child = spawn(
        &h.journal(),
        &["run", spec.to_str().unwrap()],
        h.envs(),
        log.try_clone().unwrap().into(),
        log.into(),
    );
    let mut reaper = Reaper {
        child,
        marker: marker.to_string(),
    };
    let log = || std::fs::read_to_string(h.tmp.join("run.log")).unwrap_or_default();
    let until = Instant::now() + DEADLINE;
    while !ready() {
        assert!(
            reaper.child.try_wait().unwrap().is_none(),
            "the run ended early:\n{}",
            log()
        );
        assert!(Instant::now() < until, "never got ready:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = run_env(&h.journal(), &["abort", "1"], &[]);
    assert!(o.status.success(), "abort: {}", text(&o));
    let status = wait_exit(&mut reaper.child, Duration::from_secs(15));
    let status = status.unwrap_or_else(|| panic!("still running 15 s after abort:\n{}", log()));
    assert_eq!(status.code(), Some(4), "{}", log());
    assert_status_works(&run(&h.journal(), &["status", "1"]));
    reaper
}

#[test]
fn abort_stops_a_step_and_every_process_it_started() {
    let marker = unique("hostile-sleep");
    let h = Hostile::new("spin-child")
        .limit("max-step-timeout", "\"10m\"")
        .prog("t2")
        .label("t2", "arg", &marker);
    let sleep = ["/bin/sleep", "/usr/bin/sleep"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("sleep is installed");
    std::os::unix::fs::symlink(sleep, h.tmp.join("tools").join(&marker)).unwrap();
    // The sleep itself: `tools/<marker> 1000`.
    let sleeping = format!("{marker}\u{0}1000");
    let reaper = abort_when(&h, &marker, || !processes_with(&sleeping).is_empty());
    wait_for(
        "the step's processes to end",
        Duration::from_secs(5),
        || processes_with(&reaper.marker).is_empty(),
    );
}

#[test]
fn abort_stops_a_plugin_spinning_in_wasm() {
    let h = Hostile::new("spin").limit("max-step-timeout", "\"10m\"");
    let journal = h.journal();
    abort_when(&h, &unique("unused"), || {
        in_flight(&journal).contains(&("t2".to_string(), "attack".to_string()))
    });
}

// ---- What reaches the operator's terminal and the journal ----

#[test]
fn terminal_escape_codes_and_forged_lines_never_reach_the_operator() {
    let h = Hostile::new("escape-codes");
    let r = h.attack();
    for (what, t) in [("run output", &r.out), ("status", &r.status_text)] {
        assert!(!t.contains('\u{1b}'), "ESC in {what}: {t:?}");
        assert!(!t.contains('\u{7}'), "BEL in {what}: {t:?}");
        for line in t.lines() {
            assert!(
                !line.starts_with("  ✔ t9") && !line.starts_with("  ✔ t8"),
                "a forged line in {what}: {t}"
            );
        }
    }
}

#[test]
fn a_flood_of_program_output_is_cut_to_the_limit() {
    let h = Hostile::new("exec-flood")
        .limit("exec-output", "\"1MiB\"")
        .prog("t2")
        .label("t2", "arg", &(50u64 << 20).to_string());
    let r = h.run();
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.state("t2"), "updated", "{}", r.all());
    let len: usize = r.output("t2", "stdout-len").unwrap().parse().unwrap();
    assert!(len <= 1_100_000, "{len} bytes of stdout kept");
    // The note is at the end of what was kept, or in its middle (stdout-notes is stdout
    // without the flood's filler).
    let tail = r.output("t2", "stdout-tail").unwrap_or_default();
    let notes = r.output("t2", "stdout-notes").unwrap_or_default();
    let says = |t: &str| t.contains("left out") && t.contains("[limits] exec-output");
    assert!(says(&tail) || says(&notes), "tail: {tail}\nnotes: {notes}");
    h.assert_canary_safe(&r);
}

#[test]
fn a_flood_of_log_lines_is_cut_to_the_limit() {
    let h = Hostile::new("log-flood").limit("log-lines", "1000");
    let r = h.run();
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.state("t2"), "updated", "{}", r.all());
    let rows = journal_query(
        &h.journal(),
        "SELECT message FROM events WHERE rollout = 1 AND target = 't2'",
    );
    assert!(rows.len() <= 1002, "{} events for t2", rows.len());
    assert!(
        rows.iter().any(|r| r[0].contains("[limits] log-lines")),
        "no event says lines were left out"
    );
    let longest = journal_query(
        &h.journal(),
        "SELECT max(length(CAST(message AS BLOB))) FROM events",
    );
    let longest: usize = longest[0][0].parse().unwrap_or(0);
    assert!(longest <= 20 << 10, "an event of {longest} bytes");
    h.assert_canary_safe(&r);
}

// ---- FIFOs ----

#[test]
fn a_copy_meeting_a_fifo_does_not_block() {
    let h = Hostile::new("fifo-copy");
    std::fs::create_dir_all(h.root("t2").join("fifo-dir")).unwrap();
    std::fs::write(h.root("t2").join("fifo-dir/a.txt"), "a").unwrap();
    mkfifo(&h.root("t2").join("fifo-dir/pipe"));
    escape(h, &["not a regular file"]);
}

#[test]
fn an_atomic_write_over_a_fifo_is_refused() {
    let h = Hostile::new("fifo-write");
    mkfifo(&h.root("t2").join("pipe"));
    escape(h, &["not a regular file"]);
}

#[test]
fn a_read_blocked_on_a_fifo_still_times_out_and_the_run_exits() {
    let h = Hostile::new("fifo-read").limit("max-step-timeout", "\"2s\"");
    mkfifo(&h.root("t2").join("pipe"));
    // `attack` runs the run within the deadline, or kills it and fails.
    h.attack();
}

// ---- Gates ----

#[test]
fn an_endless_soak_is_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugins();
    let spec = dir.path().join("soak.toml");
    std::fs::write(
        &spec,
        format!(
            "[strategy]\nplugin = {}\n[strategy.params]\ncanary-soak-seconds = \"18446744073709551615\"\n\
             [adapter]\nplugin = {}\n[[targets]]\nid = \"t1\"\n[[targets]]\nid = \"t2\"\n[[targets]]\nid = \"t3\"\n",
            quote(&plugins.join("canary.wasm").display().to_string()),
            quote(&fixtures().join("noop_adapter.wasm").display().to_string()),
        ),
    )
    .unwrap();
    let journal = dir.path().join("j.db");
    for command in ["plan", "run"] {
        let o = run_env(&journal, &[command, spec.to_str().unwrap()], &[]);
        let out = text(&o);
        // `plan` is an error; `run` records the refused plan as a failed rollout.
        let want = if command == "plan" { 1 } else { 2 };
        assert_eq!(o.status.code(), Some(want), "{command}: {out}");
        assert!(out.contains("soak"), "{command}: {out}");
        assert!(!out.contains("panicked"), "{command}: {out}");
    }
    let history = run(&journal, &["history", "--json"]);
    let rollouts: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap_or_default();
    if rollouts.as_array().is_some_and(|a| !a.is_empty()) {
        assert_status_works(&run(&journal, &["status"]));
    }
}
