//! What a Unix host shows about its processes and System V IPC objects, read with the host's
//! own `ps` and `ipcs` (granted programs, run on the target's host): for products whose
//! documentation says to check their processes or their shared memory and message queues.

use crate::{cmd, Result};

/// A process as `ps -e -o comm= -o args=` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The command name (of a path, as BSD `ps` prints it, the last component).
    pub name: String,
    /// The command line.
    pub args: String,
}

/// The lines of `ps -e -o comm= -o args=` (POSIX `ps` options; no header line).
pub fn parse_ps(text: &str) -> Vec<Process> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (comm, args) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            let name = match comm.strip_prefix('/') {
                Some(path) => path.rsplit('/').next().unwrap_or(path),
                None => comm,
            };
            (!name.is_empty()).then(|| Process {
                name: name.to_string(),
                args: args.trim().to_string(),
            })
        })
        .collect()
}

/// Every process of the host, listed with the `ps` program at `ps`.
pub fn processes(ps: &str) -> Result<Vec<Process>> {
    let out = cmd::run_ok(ps, &["-e", "-o", "comm=", "-o", "args="], None)?;
    Ok(parse_ps(&out.stdout))
}

/// A kind of System V IPC object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipc {
    /// `ipcs -m`.
    SharedMemory,
    /// `ipcs -q`.
    MessageQueues,
}

impl Ipc {
    /// The `ipcs` option listing this kind.
    pub fn option(self) -> &'static str {
        match self {
            Ipc::SharedMemory => "-m",
            Ipc::MessageQueues => "-q",
        }
    }

    /// What the objects are called, plural.
    pub fn noun(self) -> &'static str {
        match self {
            Ipc::SharedMemory => "shared memory segments",
            Ipc::MessageQueues => "message queues",
        }
    }
}

/// One object as `ipcs -m` or `ipcs -q` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcObject {
    /// `0x...`, as printed.
    pub key: String,
    /// `shmid` or `msqid`.
    pub id: String,
    /// The owner's user name (or uid when it has none).
    pub owner: String,
    /// `bytes` of a segment, `used-bytes` of a queue.
    pub bytes: u64,
}

impl IpcObject {
    /// Whether `user` owns it. util-linux prints at most 10 characters of a user name, so a
    /// 10-character owner also matches a longer name it begins.
    pub fn owned_by(&self, user: &str) -> bool {
        self.owner == user || (self.owner.chars().count() == 10 && user.starts_with(&self.owner))
    }
}

impl std::fmt::Display for IpcObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "key {} id {} owner {} ({} bytes)",
            self.key, self.id, self.owner, self.bytes
        )
    }
}

/// The object rows of `ipcs -m` or `ipcs -q` in util-linux's default format (a heading, a
/// column header, then `key id owner perms bytes ...` with the key in hex); headings and
/// headers, whatever their language, are skipped.
pub fn parse_ipcs(text: &str) -> Vec<IpcObject> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 5 || !f[0].starts_with("0x") {
                return None;
            }
            Some(IpcObject {
                key: f[0].to_string(),
                id: f[1].to_string(),
                owner: f[2].to_string(),
                bytes: f[4].parse().unwrap_or(0),
            })
        })
        .collect()
}

/// The objects of `kind` on the host, listed with the `ipcs` program at `ipcs`.
pub fn ipcs(ipcs: &str, kind: Ipc) -> Result<Vec<IpcObject>> {
    let out = cmd::run_ok(ipcs, &[kind.option()], None)?;
    Ok(parse_ipcs(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipcs_rows_are_read_and_headings_skipped() {
        // util-linux 2.38 `ipcs -m` and `ipcs -q`.
        let m = "\n------ Shared Memory Segments --------\n\
                 key        shmid      owner      perms      bytes      nattch     status      \n\
                 0x00000000 65536      lightdm    600        524288     2          dest         \n\
                 0x54430001 32769      taskctl    666        26214400   0                       \n\n";
        let rows = parse_ipcs(m);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].owner, "taskctl");
        assert_eq!(rows[1].bytes, 26214400);
        assert_eq!(rows[1].id, "32769");
        let q = "\n------ Message Queues --------\n\
                 key        msqid      owner      perms      used-bytes   messages    \n\
                 0x54430101 0          taskctl    666        0            0           \n";
        assert_eq!(parse_ipcs(q)[0].key, "0x54430101");
        assert!(parse_ipcs("kernel not configured for message queues\n").is_empty());
        let long = IpcObject {
            owner: "taskctl_ad".into(),
            ..rows[1].clone()
        };
        assert!(long.owned_by("taskctl_admin") && !long.owned_by("taskctl"));
        assert!(rows[1].owned_by("taskctl") && !rows[1].owned_by("taskctl_admin"));
    }

    #[test]
    fn ps_lines_give_name_and_command_line() {
        let text = "systemd         /sbin/init\nctlcpg          /opt/taskctl/bin/ctlcpg -d\n\
                    /usr/sbin/sshd  sshd: deploy\nkworker/0:1\n";
        let p = parse_ps(text);
        assert_eq!(p[1].name, "ctlcpg");
        assert_eq!(p[1].args, "/opt/taskctl/bin/ctlcpg -d");
        assert_eq!(p[2].name, "sshd");
        assert_eq!(p[3].name, "kworker/0:1");
    }
}
