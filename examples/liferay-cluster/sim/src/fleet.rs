//! The fleet builder: nodes, the artifacts to deploy, nginx in front, and two specs.

use crate::{archive, node};
use anyhow::{bail, Context, Result};
use simkit::{arg, read};
use std::path::Path;
use std::process::Command;

/// The portal version the nodes run.
pub const PORTAL: &str = "7.4.13-u100";
/// The module every node has, and its schema in `Release_`.
pub const BUNDLE: &str = "com.acme.blog.service";

/// The nginx program.
pub fn nginx() -> String {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/usr/sbin/nginx".into())
}

/// The artifacts: module updates, a module touching cluster code, fix packs, properties.
fn artifacts(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let jar = |file: &str, version: &str, schema: Option<&str>, packages: &[&str]| {
        archive::write_jar(&dir.join(file), BUNDLE, version, schema, packages)
    };
    jar(
        "blog-1.1.0.jar",
        "1.1.0",
        Some("1.1.0"),
        &["com.acme.blog.service.impl"],
    )?;
    jar(
        "blog-2.0.0.jar",
        "2.0.0",
        Some("2.0.0"),
        &["com.acme.blog.service.impl"],
    )?;
    archive::write_jar(
        &dir.join("cluster-tuning-1.0.0.jar"),
        "com.acme.cluster.tuning",
        "1.0.0",
        None,
        &[
            "com.acme.cluster.tuning",
            "com.liferay.portal.kernel.cluster.messaging",
        ],
    )?;
    archive::write_fixpack(&dir.join("fixpack-de-11.zip"), "de-11", true)?;
    archive::write_fixpack(&dir.join("fixpack-de-12.zip"), "de-12", false)?;
    std::fs::write(
        dir.join("portal-ext.properties"),
        "company.default.locale=en_US\nsession.timeout=45\n",
    )?;
    Ok(())
}

fn install_node(node: &Path, port: u16) -> Result<()> {
    for d in ["bin", "deploy", "osgi/modules", "patching", "run"] {
        std::fs::create_dir_all(node.join(d))?;
    }
    std::fs::write(node.join("VERSION"), format!("{PORTAL}\n"))?;
    std::fs::write(node.join("java-version"), "17.0.9\n")?;
    std::fs::write(node.join("port"), port.to_string())?;
    std::fs::write(
        node.join("portal-ext.properties"),
        "company.default.locale=en_US\n",
    )?;
    archive::write_jar(
        &node.join(format!("osgi/modules/{BUNDLE}-1.0.0.jar")),
        BUNDLE,
        "1.0.0",
        Some("1.0.0"),
        &["com.acme.blog.service.impl"],
    )?;
    simkit::control_scripts(node, "a Liferay DXP node (simulator)", &["start", "stop"])?;
    Ok(())
}

/// nginx in front of the live nodes, on `lb_port`.
fn start_lb(lb: &Path, lb_port: u16, live: &[u16]) -> Result<()> {
    for d in ["tmp", "logs"] {
        std::fs::create_dir_all(lb.join(d))?;
    }
    let tmp = lb.join("tmp");
    std::fs::write(
        lb.join("nginx.conf"),
        format!(
            "worker_processes 1;\npid {lb}/nginx.pid;\nerror_log {lb}/logs/error.log notice;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n  fastcgi_temp_path {t}/fastcgi;\n  uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n\
             \x20 upstream liferay {{\n    include {lb}/upstream.conf;\n  }}\n\
             \x20 server {{\n    listen 127.0.0.1:{lb_port};\n    location / {{\n      proxy_pass http://liferay;\n      proxy_next_upstream error timeout http_502 http_503;\n      proxy_connect_timeout 2s;\n    }}\n  }}\n}}\n",
            lb = lb.display(),
            t = tmp.display(),
        ),
    )?;
    let servers: String = live
        .iter()
        .map(|p| format!("server 127.0.0.1:{p};\n"))
        .collect();
    std::fs::write(lb.join("upstream.conf"), servers)?;
    let o = Command::new(nginx())
        .arg("-p")
        .arg(lb)
        .args(["-c", "nginx.conf", "-e"])
        .arg(lb.join("logs/error.log"))
        .output()
        .context("starting nginx (install it: apt-get install nginx-light)")?;
    if !o.status.success() {
        bail!(
            "nginx did not start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

/// Build the cluster: `--nodes N` nodes (the first half blue and live, the rest green and
/// idle in the blue-green spec; all live in the rolling spec, chosen with `--mode`).
pub fn build(dir: &Path, args: &[String]) -> Result<()> {
    let n: usize = arg(args, "--nodes", "4").parse()?;
    let port: u16 = arg(args, "--port", "18700").parse()?;
    let lb_port: u16 = arg(args, "--lb-port", "18690").parse()?;
    let mode = arg(args, "--mode", "rolling");
    let plugins = simkit::plugins_dir(args);
    std::fs::create_dir_all(dir.join("db"))?;
    let dir = std::fs::canonicalize(dir)?;
    let plugins = std::fs::canonicalize(&plugins).with_context(|| {
        format!(
            "plugins folder {} (build the plugins first)",
            plugins.display()
        )
    })?;
    std::fs::write(
        dir.join("db/release.json"),
        format!("{{\"{BUNDLE}\": \"1.0.0\"}}"),
    )?;
    artifacts(&dir.join("artifacts"))?;
    let mut targets = String::new();
    let mut live = Vec::new();
    for i in 1..=n {
        let node = dir.join("nodes").join(format!("node-{i}"));
        let p = port + i as u16;
        install_node(&node, p)?;
        node::start(&node)?;
        let color = if i <= n / 2 { "blue" } else { "green" };
        if mode == "rolling" || color == "blue" {
            live.push(p);
        }
        targets.push_str(&format!(
            "\n[[targets]]\nid = \"node-{i}\"\nroot = \"{}\"\nurl = \"http://127.0.0.1:{p}\"\ncolor = \"{color}\"\n",
            node.display()
        ));
    }
    start_lb(&dir.join("lb"), lb_port, &live)?;
    let strategy = if mode == "rolling" {
        "rolling"
    } else {
        "blue-green"
    };
    let spec = format!(
        "# A {mode} update of a {n}-node simulated Liferay cluster behind nginx.\n\
         [rollout]\nname = \"liferay-{mode}\"\nconcurrency = 2\n\n\
         [strategy]\nplugin = \"{s}\"\n[strategy.params]\non-failure = \"pause\"\n\n\
         [adapter]\nplugin = \"{a}\"\n[adapter.params]\nmode = \"{mode}\"\nartifacts = \"{art}\"\nmodule = \"blog-1.1.0.jar\"\n\
         properties = \"portal-ext.properties\"\nlb-dir = \"{lb}\"\nnginx = \"{nginx}\"\n\n\
         [grants]\ndirs = [\n  {{ path = \"{art}\", access = \"read\" }},\n  {{ path = \"{nodes}\", access = \"read-write\" }},\n  {{ path = \"{lb}\", access = \"read-write\" }},\n]\n\
         exec = [\"{nodes}/*/bin/start\", \"{nodes}/*/bin/stop\", \"{nginx}\"]\nhttp = [\"127.0.0.1:*\"]\n{targets}",
        s = plugins.join(format!("{}.wasm", strategy.replace('-', "_"))).display(),
        a = plugins.join("liferay_cluster.wasm").display(),
        art = dir.join("artifacts").display(),
        lb = dir.join("lb").display(),
        nginx = nginx(),
        nodes = dir.join("nodes").display(),
    );
    std::fs::write(dir.join("rollout.toml"), spec)?;
    println!(
        "{n} Liferay nodes on {PORTAL} behind nginx at http://127.0.0.1:{lb_port}/ ({mode}); spec: {}",
        dir.join("rollout.toml").display()
    );
    Ok(())
}

/// Stop the nodes and nginx.
pub fn teardown(dir: &Path) -> Result<()> {
    if let Ok(entries) = std::fs::read_dir(dir.join("nodes")) {
        for e in entries.filter_map(|e| e.ok()) {
            let _ = node::stop(&e.path());
        }
    }
    let lb = dir.join("lb");
    if !read(&lb.join("nginx.pid")).is_empty() {
        let _ = Command::new(nginx())
            .arg("-p")
            .arg(&lb)
            .args(["-c", "nginx.conf", "-e"])
            .arg(lb.join("logs/error.log"))
            .args(["-s", "quit"])
            .output();
    }
    Ok(())
}
