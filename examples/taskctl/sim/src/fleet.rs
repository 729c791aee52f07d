//! The fleet builder and teardown.

use crate::commands::{account, AGENT_PROCS, PROGRAMS, SERVER_PROCS};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The versions the simulated platform moves between.
pub const OLD_VERSION: &str = "8.0.0";
pub const NEW_VERSION: &str = "8.1.0";

/// What `fleet` builds.
pub struct Options {
    pub masters: usize,
    pub slaves: usize,
    pub plugins: PathBuf,
    pub group_size: String,
}

impl Options {
    pub fn from_args(args: &[String]) -> Result<Options> {
        let arg = |name: &str, default: &str| simkit::arg(args, name, default);
        Ok(Options {
            masters: arg("--masters", "2").parse()?,
            slaves: arg("--slaves", "2").parse()?,
            plugins: simkit::plugins_dir(args),
            group_size: arg("--group-size", "3"),
        })
    }
}

/// The platform configuration (seed L89-103: task types, application projects; L145: global
/// parameters), kept by each node and loaded into its shared memory by ctlinit.
const CONFIG: &[(&str, &str)] = &[
    ("tasktypes", "JT_SHELL   shell    plugin=cshell   ret=0\nJT_SQL     sql      plugin=csql     ret=0\nJT_DS      datastage plugin=cdsjob  ret=0,1"),
    ("projects", "DW_ODS     operational data store\nDW_MART    data marts\nRPT_DAILY  daily reports"),
    ("params", "ETL_DATE=20220427\nDB_CONN=dw/***@dwdb\nMAX_JOBS=32"),
];

/// The simulator's login for ctladmin: a user and a password, one per line.
const LOGIN: &str = "admin\nadmin-sim-pass\n";

/// A release: `bin/` with the programs and `procs` as links to this program, `lib/` with a
/// library and the version marker.
fn release(dir: &Path, version: &str, procs: &[&str], me: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::create_dir_all(dir.join("lib"))?;
    for name in PROGRAMS.iter().chain(procs) {
        let link = dir.join("bin").join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(me, link)?;
    }
    std::fs::write(dir.join("lib/VERSION"), format!("{version}\n"))?;
    let fill = version.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    std::fs::write(dir.join("lib/libctlcore.so"), vec![fill; 32 << 10])?;
    Ok(())
}

fn node(root: &Path, kind: &str, me: &Path) -> Result<()> {
    let procs = if kind == "cntServer" {
        SERVER_PROCS
    } else {
        AGENT_PROCS
    };
    release(root, OLD_VERSION, procs, me)?;
    std::fs::create_dir_all(root.join("config"))?;
    for (f, text) in CONFIG {
        std::fs::write(root.join("config").join(f), format!("{text}\n"))?;
    }
    Ok(())
}

fn ctl(root: &Path, cmd: &str) -> Result<()> {
    let o = Command::new(root.join("bin").join(cmd)).output()?;
    if !o.status.success() {
        bail!(
            "{cmd} on {}: {}",
            root.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

/// `ps`, for the adapter's process check.
fn ps() -> String {
    ["/usr/bin/ps", "/bin/ps"]
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/usr/bin/ps".into())
}

/// Build the platform (1 server, masters, slaves per master), start every node, write the spec.
pub fn build(dir: &Path, o: &Options) -> Result<()> {
    std::fs::create_dir_all(dir.join("nodes"))?;
    let dir = std::fs::canonicalize(dir)?;
    let plugins = std::fs::canonicalize(&o.plugins).with_context(|| {
        format!(
            "plugins folder {} (build the plugins first)",
            o.plugins.display()
        )
    })?;
    let me = std::env::current_exe()?;
    let mut nodes = vec![("server".to_string(), "cntServer", "-".to_string())];
    for m in 1..=o.masters {
        nodes.push((format!("magent-{m}"), "cntMAgent", "server".into()));
        for s in 1..=o.slaves {
            nodes.push((
                format!("sagent-{m}{}", (b'a' + s as u8 - 1) as char),
                "cntSAgent",
                format!("magent-{m}"),
            ));
        }
    }
    let mut topology = String::new();
    let mut targets = String::new();
    for (i, (name, kind, parent)) in nodes.iter().enumerate() {
        let root = dir.join("nodes").join(name);
        node(&root, kind, &me)?;
        topology.push_str(&format!("{} {name} {kind} {} {parent}\n", i + 1, 18589 + i));
        let home = root.display();
        targets.push_str(&format!(
            "\n[[targets]]\nid = \"{name}\"\ntype = \"{kind}\"\n{}home = \"{home}\"\n\
             ctladmin = \"{home}/bin/ctladmin\"\nipc-owner = \"{}\"\nprocess-match = \"{home}/bin/\"\n",
            if parent == "-" {
                String::new()
            } else {
                format!("parent = \"{parent}\"\n")
            },
            account(name),
        ));
    }
    std::fs::write(dir.join("topology"), topology)?;
    std::fs::write(dir.join("ctladmin.login"), LOGIN)?;
    std::fs::create_dir_all(dir.join("sbin"))?;
    let ipcs = dir.join("sbin/ipcs");
    let _ = std::fs::remove_file(&ipcs);
    std::os::unix::fs::symlink(&me, &ipcs)?;
    let package = dir.join("packages").join(NEW_VERSION);
    release(&package, NEW_VERSION, SERVER_PROCS, &me)?;
    for (name, _, _) in &nodes {
        let root = dir.join("nodes").join(name);
        ctl(&root, "ctlinit")?;
        ctl(&root, "ctlstart")?;
    }
    let spec = format!(
        "# Upgrade a TASKCTL platform ({n} nodes) from {OLD_VERSION} to {NEW_VERSION}.\n\
         [rollout]\nname = \"taskctl-{NEW_VERSION}\"\nconcurrency = 4\n\n\
         [strategy]\nplugin = \"{strategy}\"\n[strategy.params]\ngroup-size = \"{group}\"\non-failure = \"continue\"\n\n\
         [adapter]\nplugin = \"{adapter}\"\n[adapter.params]\nversion = \"{NEW_VERSION}\"\n\
         version-file = \"lib/VERSION\"\npackage = \"{package}\"\nps = \"{ps}\"\nipcs = \"{ipcs}\"\n\
         ctladmin-login = \"taskctl-login\"\nsettle-timeout = \"10\"\n\n\
         [secrets]\ntaskctl-login = {{ file = \"{login}\" }}\n\n\
         [grants]\ndirs = [\n  {{ path = \"{packages}\", access = \"read\" }},\n  {{ path = \"{nodes_dir}\", access = \"read-write\" }},\n]\n\
         exec = [\"{nodes_dir}/*/bin/*\", \"{ps}\", \"{ipcs}\"]\n{targets}",
        n = nodes.len(),
        strategy = plugins.join("grouped.wasm").display(),
        group = o.group_size,
        adapter = plugins.join("taskctl.wasm").display(),
        package = package.display(),
        ps = ps(),
        ipcs = ipcs.display(),
        login = dir.join("ctladmin.login").display(),
        packages = dir.join("packages").display(),
        nodes_dir = dir.join("nodes").display(),
    );
    std::fs::write(dir.join("rollout.toml"), spec)?;
    println!(
        "{} TASKCTL nodes on {OLD_VERSION} started under {}; spec: {}",
        nodes.len(),
        dir.join("nodes").display(),
        dir.join("rollout.toml").display()
    );
    Ok(())
}

/// Stop every node and listener.
pub fn teardown(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir.join("nodes")) else {
        return Ok(());
    };
    for e in entries.filter_map(|e| e.ok()) {
        let root = e.path();
        let _ = ctl(&root, "ctlstop");
        let _ = ctl(&root, "ctlshut");
    }
    Ok(())
}
