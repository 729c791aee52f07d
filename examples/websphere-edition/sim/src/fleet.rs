//! A started cell for the tests and the demo: the deployment manager and members, HAProxy
//! in front (started from Debian's `haproxy`), and the spec of an edition rollout 1.0 → 2.0.

use anyhow::{bail, Context, Result};
use simkit::arg;
use std::path::Path;
use std::process::Command;

fn haproxy() -> String {
    std::env::var("HAPROXY").unwrap_or_else(|_| "/usr/sbin/haproxy".into())
}

pub fn build(dir: &Path, args: &[String]) -> Result<()> {
    let port: u16 = crate::num(args, "--port", "19080")?;
    let members: usize = crate::num(args, "--members", "6")?;
    let (soap, router, admin) = (port + 20, port + 21, port + 22);
    let mut init: Vec<String> = [
        "--members".to_string(),
        members.to_string(),
        "--base-port".into(),
        port.to_string(),
        "--soap-port".into(),
        soap.to_string(),
        "--router-port".into(),
        router.to_string(),
        "--router-admin-port".into(),
        admin.to_string(),
    ]
    .into();
    for k in [
        "--request-timeout",
        "--statistic-set",
        "--routing",
        "--restart-ms",
        "--work-ms",
    ] {
        if let Some(i) = args.iter().position(|a| a == k) {
            init.extend([k.to_string(), args.get(i + 1).cloned().unwrap_or_default()]);
        }
    }
    crate::init(dir, &init)?;
    std::fs::create_dir_all(dir.join("profile/temp"))?;
    let me = std::env::current_exe()?;
    simkit::spawn_detached(Command::new(&me).arg("serve").arg(dir))?;
    if !simkit::wait_until(std::time::Duration::from_secs(10), || {
        simkit::listening(soap, std::time::Duration::from_millis(200))
    }) {
        bail!("the deployment manager did not listen on {soap}");
    }
    let o = Command::new(haproxy())
        .arg("-f")
        .arg(dir.join("haproxy.cfg"))
        .arg("-D")
        .output()
        .with_context(|| format!("starting {} (Debian package haproxy)", haproxy()))?;
    if !o.status.success() {
        bail!("haproxy: {}", String::from_utf8_lossy(&o.stderr));
    }
    let plugins = simkit::plugins_dir(args);
    let mode = arg(args, "--mode", "grouped");
    let reset = arg(args, "--reset", "soft");
    let wsadmin = me.with_file_name("wsadmin");
    let (strategy, sparams) = if mode == "atomic" {
        ("atomic", "switch-step = \"switch\"\n")
    } else {
        ("grouped", "group-size = 2\n")
    };
    let targets: String = (0..members)
        .map(|i| {
            format!(
                "\n[[targets]]\nid = \"member{n}\"\nnode = \"node{node:02}\"\naddress = \"127.0.0.1:{p}\"\n",
                n = i + 1,
                node = i / 2 + 1,
                p = port + i as u16
            )
        })
        .collect();
    let spec = format!(
        "# Edition 2.0 of Shop onto a {members}-member simulated WebSphere cluster behind HAProxy ({mode}, {reset} reset).\n\
         [rollout]\nname = \"shop-2.0\"\nconcurrency = 3\n\n\
         [strategy]\nplugin = \"{s}\"\n[strategy.params]\n{sparams}\n\
         [adapter]\nplugin = \"{a}\"\n[adapter.params]\nwsadmin = \"{wsadmin}\"\ndmgr-host = \"127.0.0.1\"\ndmgr-port = \"{soap}\"\n\
         profile = \"{profile}\"\nworkclass-script = \"{wc}\"\napp = \"Shop\"\nfrom-edition = \"1.0\"\nedition = \"2.0\"\ncluster = \"cluster1\"\n\
         admin-role = \"configurator\"\nrollout-strategy = \"{mode}\"\nreset-strategy = \"{reset}\"\ndrainage-interval = \"2\"\npoll-interval = \"1\"\n\
         quiesce-estimate = \"300\"\nrestart-estimate = \"600\"\nrouter = \"127.0.0.1:{admin}\"\nrouter-backend = \"cluster\"\n\
         verify-path = \"/app/ping\"\nverify-expect = \"edition=2.0\"\n\n\
         [grants]\ndirs = [\n  {{ path = \"{profile}/properties\", access = \"read\" }},\n  {{ path = \"{profile}/temp\", access = \"read-write\" }},\n]\n\
         exec = [\"{wsadmin}\"]\ntcp = [\"127.0.0.1:{admin}\"]\nhttp = [\"127.0.0.1:*\"]\n{targets}",
        s = plugins.join(format!("{strategy}.wasm")).display(),
        a = plugins.join("websphere_edition.wasm").display(),
        wsadmin = wsadmin.display(),
        profile = dir.join("profile").display(),
        wc = dir.join("bin/workclassoperations.py").display(),
    );
    std::fs::write(dir.join("rollout.toml"), spec)?;
    println!(
        "{members} members of cluster1 behind HAProxy at http://127.0.0.1:{router}/app/hit, wsadmin on {soap}; spec: {}",
        dir.join("rollout.toml").display()
    );
    Ok(())
}

/// Stop the deployment manager (and its members) and HAProxy.
pub fn teardown(dir: &Path) -> Result<()> {
    for pid in ["dmgr.pid", "haproxy.pid"] {
        if let Ok(p) = simkit::read(&dir.join(pid)).trim().parse::<i32>() {
            let _ = Command::new("kill").arg(p.to_string()).status();
        }
    }
    Ok(())
}
