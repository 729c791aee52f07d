//! The sshd harness of `common::sshd`: real OpenSSH servers on loopback answer `ssh -F`,
//! a stopped one refuses connections, a changed host key fails verification, a restarted one
//! answers again.

mod common;

use common::sshd::SshHosts;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn servers_answer_stop_change_key_and_restart() {
    let home_ssh = std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".ssh"));
    let had_home_ssh = home_ssh.as_ref().is_some_and(|p| p.exists());

    let mut hosts = SshHosts::start(2);
    assert_eq!(hosts.names(), ["host-1", "host-2"]);
    assert_ne!(hosts.port("host-1"), hosts.port("host-2"));
    for name in hosts.names() {
        let o = hosts.ssh(&name, "echo hi");
        assert!(
            o.status.success(),
            "{name}: {}\nsshd log:\n{}",
            err(&o),
            hosts.log(&name)
        );
        assert_eq!(out(&o), "hi\n");
        assert_eq!(err(&o), "", "{name}: nothing on stderr");
    }

    // Stopped: refused, fast.
    hosts.stop("host-1");
    let t = Instant::now();
    let o = hosts.ssh("host-1", "echo hi");
    assert!(!o.status.success());
    assert!(err(&o).contains("Connection refused"), "{}", err(&o));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A new host key: verification fails.
    hosts.change_host_key("host-2");
    let o = hosts.ssh("host-2", "echo hi");
    assert!(!o.status.success());
    assert_eq!(out(&o), "");
    assert!(
        err(&o).contains("Host key verification failed"),
        "{}",
        err(&o)
    );
    assert!(
        err(&o).contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        err(&o)
    );

    // Restarted on the same port: answers again.
    let port = hosts.port("host-1");
    hosts.restart("host-1");
    assert_eq!(hosts.port("host-1"), port);
    let o = hosts.ssh("host-1", "echo hi");
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "hi\n");

    // Nothing under ~/.ssh was made for any of this.
    if let Some(p) = home_ssh {
        if !had_home_ssh {
            assert!(!p.exists(), "{} was created", p.display());
        }
    }
}

/// Callers may add multiplexing with `-o`: a persistent master serves later commands, and
/// stopping the server ends it.
#[test]
fn multiplexing_with_added_options() {
    let mut hosts = SshHosts::start(1);
    let socket = hosts.dir().join("mux-%C");
    let config = hosts.config();
    let mux = |args: &[&str]| {
        Command::new("ssh")
            .arg("-F")
            .arg(&config)
            .args(["-o", "ControlMaster=auto", "-o"])
            .arg(format!("ControlPath={}", socket.display()))
            .args(["-o", "ControlPersist=60"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ssh runs")
    };
    let o = mux(&["host-1", "echo one"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "one\n");
    let o = mux(&["-O", "check", "host-1"]);
    assert!(o.status.success(), "master running: {}", err(&o));
    let o = mux(&["host-1", "echo two"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "two\n");

    // Stopping the server kills its sessions: the master goes away.
    hosts.stop("host-1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while mux(&["-O", "check", "host-1"]).status.success() {
        assert!(Instant::now() < deadline, "master still up after stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = mux(&["host-1", "echo three"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("Connection refused"), "{}", err(&o));
}
