//! Real OpenSSH servers on loopback for end-to-end tests and the remote demo:
//! `SshHosts::start(n)` runs `n`
//! `/usr/sbin/sshd` processes on 127.0.0.1, each its own "host" (own port, host key and
//! alias `host-<i>` in a generated `ssh_config`), all accepting one generated ed25519 client
//! key for the current user. Nothing reads or writes `~/.ssh` or the system-wide
//! configuration: `ssh -F <config>` skips `/etc/ssh/ssh_config` and `~/.ssh/config`, and the
//! config names its own identity, known hosts (global ones: `/dev/null`) and no agent.
//!
//! Layout of the folder (a temporary one, or the one given to `start_in`):
//! - `client_key`, `client_key.pub`: the client's identity; `authorized_keys`: its public key;
//! - `known_hosts`: each server's host key as first generated, under `[127.0.0.1]:<port>`
//!   (never updated, so `change_host_key` makes clients see a changed key);
//! - `ssh_config`: the aliases (no `ControlMaster`/`ControlPath`: callers may add `-o`s);
//! - `host-<i>/`: `host_key{,.pub}`, `sshd_config`, `sshd.pid` and `sshd.log` (the server's
//!   stderr, appended across restarts and shown when a server fails to come up).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// One server.
struct Server {
    name: String,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn host_key(&self) -> PathBuf {
        self.dir.join("host_key")
    }
    fn sshd_config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.join("sshd.pid")
    }
    fn log_file(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }
    fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }
}

/// A set of sshd servers on 127.0.0.1, each its own "host" (own port, host key, and an alias
/// in a generated ssh_config). Dropping it kills every server and its sessions.
pub struct SshHosts {
    servers: Vec<Server>,
    config: PathBuf,
    root: PathBuf,
    // Last, so that it is removed after the servers are gone (None: a folder of the caller's).
    _temp: Option<tempfile::TempDir>,
}

impl SshHosts {
    /// Start `n` sshd servers named `host-1`..`host-n` on free loopback ports, accepting one
    /// generated client key (ed25519) for the current user.
    pub fn start(n: usize) -> SshHosts {
        let dir = tempfile::Builder::new()
            .prefix("sshd-")
            .tempdir()
            .expect("temporary folder");
        let root = dir.path().to_path_buf();
        Self::launch_all(root, Some(dir), n)
    }

    /// [`SshHosts::start`] in `root`, a folder of the caller's, which is kept.
    pub fn start_in(root: &Path, n: usize) -> SshHosts {
        fs::create_dir_all(root).expect("create the sshd folder");
        Self::launch_all(root.to_path_buf(), None, n)
    }

    /// Leave the servers running after this process ends; `stop_in` stops them.
    pub fn detach(mut self) {
        for s in &mut self.servers {
            s.child = None;
        }
    }

    /// Stop the servers started in `root` (by `start_in` then `detach`), with their sessions.
    pub fn stop_in(root: &Path) {
        for e in fs::read_dir(root).into_iter().flatten().flatten() {
            let pid = fs::read_to_string(e.path().join("sshd.pid"))
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok());
            if let Some(pid) = pid {
                kill_tree(pid);
            }
        }
    }

    fn launch_all(root: PathBuf, temp: Option<tempfile::TempDir>, n: usize) -> SshHosts {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing (install openssh-server)"
        );
        // The privilege separation directory sshd insists on.
        let run = Path::new("/run/sshd");
        if !run.is_dir() {
            fs::create_dir_all(run).expect("create /run/sshd");
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(run, fs::Permissions::from_mode(0o755)).expect("chmod /run/sshd");
        }
        let client_key = root.join("client_key");
        keygen(&client_key);
        fs::copy(root.join("client_key.pub"), root.join("authorized_keys"))
            .expect("write authorized_keys");

        let mut hosts = SshHosts {
            servers: Vec::new(),
            config: root.join("ssh_config"),
            root: root.clone(),
            _temp: temp,
        };
        for i in 1..=n {
            let name = format!("host-{i}");
            let sdir = root.join(&name);
            fs::create_dir(&sdir).expect("server folder");
            let server = Server {
                name,
                port: 0,
                dir: sdir,
                child: None,
            };
            keygen(&server.host_key());
            hosts.servers.push(server);
            let idx = hosts.servers.len() - 1;
            // A port found free may be taken before sshd binds it: try a few.
            let mut attempt = 0;
            loop {
                attempt += 1;
                hosts.servers[idx].port = free_port();
                match hosts.launch(idx) {
                    Ok(()) => break,
                    Err(log) if attempt < 5 && log.contains("Address already in use") => continue,
                    Err(log) => panic!(
                        "sshd for {} did not come up on port {}:\n{log}",
                        hosts.servers[idx].name, hosts.servers[idx].port
                    ),
                }
            }
        }

        let user = current_user();
        let mut known = String::new();
        let mut config = String::new();
        for s in &hosts.servers {
            let pubkey = fs::read_to_string(s.dir.join("host_key.pub")).expect("host key");
            let mut fields = pubkey.split_whitespace();
            let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
            writeln!(known, "[127.0.0.1]:{} {kind} {key}", s.port).unwrap();
            write!(
                config,
                "Host {name}\n\
                 \x20 HostName 127.0.0.1\n\
                 \x20 Port {port}\n\
                 \x20 User {user}\n\
                 \x20 IdentityFile \"{key}\"\n\
                 \x20 IdentitiesOnly yes\n\
                 \x20 IdentityAgent none\n\
                 \x20 PreferredAuthentications publickey\n\
                 \x20 UserKnownHostsFile \"{known}\"\n\
                 \x20 GlobalKnownHostsFile /dev/null\n\
                 \x20 StrictHostKeyChecking yes\n\
                 \x20 UpdateHostKeys no\n\
                 \x20 CheckHostIP no\n\
                 \x20 BatchMode yes\n\
                 \x20 ConnectTimeout 10\n\
                 \x20 LogLevel ERROR\n\n",
                name = s.name,
                port = s.port,
                key = client_key.display(),
                known = root.join("known_hosts").display(),
            )
            .unwrap();
        }
        fs::write(root.join("known_hosts"), known).expect("write known_hosts");
        fs::write(&hosts.config, config).expect("write ssh_config");
        hosts
    }

    /// Path of the generated ssh_config.
    pub fn config(&self) -> PathBuf {
        self.config.clone()
    }

    /// The folder holding keys, configurations and logs.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The aliases: `["host-1", ...]`.
    pub fn names(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.name.clone()).collect()
    }

    /// Run `ssh -F <config> <alias> <command>` (stdin: nothing) and return its output.
    pub fn ssh(&self, alias: &str, command: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(&self.config)
            .arg(alias)
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .expect("ssh runs")
    }

    /// The port of `alias`.
    pub fn port(&self, alias: &str) -> u16 {
        self.servers[self.index(alias)].port
    }

    /// What the server of `alias` wrote to stderr so far (all its runs).
    pub fn log(&self, alias: &str) -> String {
        self.servers[self.index(alias)].log()
    }

    /// Stop the server of `alias`: kill its listener and every session it started (so
    /// established connections, multiplexed ones included, drop too). New connections are
    /// refused. Stopping a stopped server does nothing.
    pub fn stop(&mut self, alias: &str) {
        let i = self.index(alias);
        kill_server(&mut self.servers[i]);
    }

    /// Start the server of `alias` again on the same port (stopping it first if running).
    pub fn restart(&mut self, alias: &str) {
        let i = self.index(alias);
        kill_server(&mut self.servers[i]);
        if let Err(log) = self.launch(i) {
            let s = &self.servers[i];
            panic!(
                "sshd for {} did not come back on port {}:\n{log}",
                s.name, s.port
            );
        }
    }

    /// Replace the host key of `alias` with a new one and restart it (the known_hosts file
    /// keeps the old one, so clients see a changed key).
    pub fn change_host_key(&mut self, alias: &str) {
        let i = self.index(alias);
        kill_server(&mut self.servers[i]);
        let key = self.servers[i].host_key();
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(key.with_extension("pub"));
        keygen(&key);
        self.restart(alias);
    }

    fn index(&self, alias: &str) -> usize {
        self.servers
            .iter()
            .position(|s| s.name == alias)
            .unwrap_or_else(|| panic!("no host {alias:?} (hosts: {:?})", self.names()))
    }

    /// Write the server's sshd_config for its port, run sshd and wait until it listens; on
    /// failure, kill it and return its log.
    fn launch(&mut self, i: usize) -> Result<(), String> {
        let root = self.root.clone();
        let s = &mut self.servers[i];
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {key}\n\
             PidFile {pid}\n\
             AuthorizedKeysFile {auth}\n\
             AuthorizedPrincipalsFile none\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\n\
             UsePAM no\n\
             StrictModes no\n\
             UseDNS no\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             X11Forwarding no\n\
             MaxSessions 100\n\
             MaxStartups 100\n\
             Subsystem sftp internal-sftp\n\
             LogLevel INFO\n",
            port = s.port,
            key = s.host_key().display(),
            pid = s.pid_file().display(),
            auth = root.join("authorized_keys").display(),
        );
        fs::write(s.sshd_config(), config).expect("write sshd_config");
        let _ = fs::remove_file(s.pid_file());
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(s.log_file())
            .expect("open sshd log");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(s.sshd_config())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SSHD}: {e}"));
        let pid = child.id();
        s.child = Some(child);

        // Up when it has written its pid file (sshd does so once its socket listens: this
        // also tells it apart from another process that took the port) and accepts a
        // connection.
        let addr = SocketAddr::from(([127, 0, 0, 1], s.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = s.child.as_mut().unwrap().try_wait() {
                s.child = None;
                return Err(format!("sshd exited ({status}); its log:\n{}", s.log()));
            }
            let pid_written =
                fs::read_to_string(s.pid_file()).is_ok_and(|t| t.trim() == pid.to_string());
            if pid_written && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                kill_server(s);
                return Err(format!(
                    "sshd not listening after 10 s; its log:\n{}",
                    s.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SshHosts {
    fn drop(&mut self) {
        for s in &mut self.servers {
            kill_server(s);
        }
    }
}

/// Kill the server's listener and every process under it (sessions call setsid, so a process
/// group would miss them: walk the parent links instead), then reap the listener.
fn kill_server(s: &mut Server) {
    let Some(mut child) = s.child.take() else {
        return;
    };
    kill_tree(child.id() as i32);
    let _ = child.wait();
}

/// Kill `pid` and every process under it.
fn kill_tree(pid: i32) {
    let mut doomed = descendants(pid);
    doomed.insert(0, pid);
    for p in doomed {
        if let Some(p) = rustix::process::Pid::from_raw(p) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
}

/// The processes below `pid`, from /proc.
fn descendants(pid: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let ppid = stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].split_whitespace().nth(1))
            .and_then(|f| f.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            children.entry(ppid).or_default().push(p);
        }
    }
    let mut found = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            found.push(c);
            todo.push(c);
        }
    }
    found
}

/// A free port on 127.0.0.1 (free when asked: the caller binds it soon after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `ssh-keygen -q -t ed25519 -N "" -f <path>` (writes `path` and `path.pub`).
fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "cutover-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "ssh-keygen for {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The login name of the current user (from `id -un`, falling back to $USER, then root).
fn current_user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|u| !u.is_empty())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}
