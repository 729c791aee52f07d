//! The fleet builder: nodes, the artifacts to deploy, nginx in front, and two specs.

use crate::{archive, db, node};
use anyhow::{bail, Context, Result};
use simkit::{arg, read};
use std::path::Path;
use std::process::Command;

/// The portal version the nodes run.
pub const PORTAL: &str = "7.4.13-u100";
/// The module every node has, and its schema in `Release_`.
pub const BUNDLE: &str = "com.acme.blog.service";
/// The Java the nodes run.
pub const JAVA: &str = "17.0.9";

/// The nginx program.
pub fn nginx() -> String {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/usr/sbin/nginx".into())
}

/// The artifacts: module updates, a module touching cluster code, patches, properties.
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
    for id in ["de-11-7010", "de-12-7010"] {
        archive::write_fixpack(&dir.join(format!("liferay-fix-pack-{id}.zip")), id)?;
    }
    std::fs::write(
        dir.join("portal-ext.properties"),
        "company.default.locale=en_US\nsession.timeout=45\n",
    )?;
    Ok(())
}

/// The manager login of every node's Tomcat (user, password).
const MANAGER: (&str, &str) = ("cutover", "s3cret-manager");

fn install_node(node: &Path, port: u16, database: &str) -> Result<()> {
    for d in [
        "bin",
        "deploy",
        "osgi/modules",
        "patching",
        "run",
        "logs",
        "conf",
    ] {
        std::fs::create_dir_all(node.join(d))?;
    }
    std::fs::write(node.join("VERSION"), format!("{PORTAL}\n"))?;
    std::fs::write(node.join("port"), port.to_string())?;
    std::fs::write(node.join("database"), database)?;
    std::fs::write(
        node.join("portal-ext.properties"),
        "company.default.locale=en_US\n",
    )?;
    // Tomcat's users file: the manager is reachable only with a role ("Manager App How-To"
    // § Configuring Manager Application Access).
    std::fs::write(
        node.join("conf/tomcat-users.xml"),
        format!(
            "<tomcat-users>\n  <user username=\"{}\" password=\"{}\" roles=\"manager-script,manager-status\"/>\n</tomcat-users>\n",
            MANAGER.0, MANAGER.1
        ),
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

/// The node's Patching Tool, outside Liferay Home: its `default.properties` profile points at
/// the node ("Configuring the Patching Tool": `liferay.home`; SURFACES.md #4).
fn install_patching_tool(tool: &Path, node: &Path) -> Result<()> {
    std::fs::create_dir_all(tool.join("patches"))?;
    std::fs::write(
        tool.join("default.properties"),
        format!("liferay.home={}\n", node.display()),
    )?;
    simkit::write_exec(
        &tool.join("patching-tool.sh"),
        &format!(
            "#!/bin/sh\n# Liferay's Patching Tool (simulator)\nexec '{}' patching-tool \"$(dirname \"$0\")\" \"$@\"\n",
            std::env::current_exe()?.display()
        ),
    )
}

/// The programs around the nodes: a Java runtime, the database client and the backup and
/// restore programs.
fn install_tools(dir: &Path) -> Result<()> {
    let me = std::env::current_exe()?;
    // `java -version` prints the version to the error stream ("print product version to the
    // error stream and exit", the launcher's help; the format of JEP 322,
    // https://openjdk.org/jeps/322; SURFACES.md #16, b5); `--version` to the output stream.
    let banner = format!(
        "openjdk version \"{JAVA}\" 2023-10-17\nOpenJDK Runtime Environment (build {JAVA}+9)\nOpenJDK 64-Bit Server VM (build {JAVA}+9, mixed mode, sharing)"
    );
    simkit::write_exec(
        &dir.join(format!("jvm/{JAVA}/bin/java")),
        &format!(
            "#!/bin/sh\n# A Java runtime's launcher (simulator): only -version and --version\ncase \"$1\" in\n  -version) cat >&2 <<'EOF'\n{banner}\nEOF\n  ;;\n  --version) cat <<'EOF'\n{}\nEOF\n  ;;\n  *) echo 'this simulated java only prints its version' >&2; exit 1 ;;\nesac\n",
            banner.replace("openjdk version \"", "openjdk \"").replace('"', "")
        ),
    )?;
    for (name, what) in [
        ("mysql", "the MySQL command-line client"),
        ("db-backup", "the operator's database backup program"),
        ("db-restore", "the operator's database restore program"),
    ] {
        simkit::write_exec(
            &dir.join("bin").join(name),
            &format!(
                "#!/bin/sh\n# {what} (simulator), on the databases in ../db\nexec '{}' {name} \"$(dirname \"$0\")/../db\" \"$@\"\n",
                me.display()
            ),
        )?;
    }
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
/// idle with `--mode blue-green`; all live otherwise). `--mode rolling|blue-green|all-down`
/// picks the spec. The nodes share the database `lportal`, except with `--mode blue-green
/// --db separate` (the default there), where green has its own copy, `lportal_green`.
pub fn build(dir: &Path, args: &[String]) -> Result<()> {
    let n: usize = arg(args, "--nodes", "4").parse()?;
    let port: u16 = arg(args, "--port", "18700").parse()?;
    let lb_port: u16 = arg(args, "--lb-port", "18690").parse()?;
    let mode = arg(args, "--mode", "rolling");
    let separate = mode == "blue-green" && arg(args, "--db", "separate") == "separate";
    let plugins = simkit::plugins_dir(args);
    std::fs::create_dir_all(dir.join("db"))?;
    let dir = std::fs::canonicalize(dir)?;
    let plugins = std::fs::canonicalize(&plugins).with_context(|| {
        format!(
            "plugins folder {} (build the plugins first)",
            plugins.display()
        )
    })?;
    for name in ["lportal", "lportal_green"] {
        if name == "lportal" || separate {
            db::create(&dir.join("db"), name, 7413, &[(BUNDLE, "1.0.0")])?;
        }
    }
    artifacts(&dir.join("artifacts"))?;
    install_tools(&dir)?;
    let mut targets = String::new();
    let mut live = Vec::new();
    for i in 1..=n {
        let id = format!("node-{i}");
        let node = dir.join("nodes").join(&id);
        let tool = dir.join("patching").join(&id);
        let p = port + i as u16;
        let color = if i <= n / 2 { "blue" } else { "green" };
        let database = if separate && color == "green" {
            "lportal_green"
        } else {
            "lportal"
        };
        install_node(&node, p, database)?;
        install_patching_tool(&tool, &node)?;
        node::start(&node)?;
        if mode != "blue-green" || color == "blue" {
            live.push(p);
        }
        targets.push_str(&format!(
            "\n[[targets]]\nid = \"{id}\"\nroot = \"{}\"\nurl = \"http://127.0.0.1:{p}\"\ncolor = \"{color}\"\n\
             database = \"{database}\"\njava = \"{}\"\npatching-dir = \"{}\"\n",
            node.display(),
            dir.join(format!("jvm/{JAVA}/bin/java")).display(),
            tool.display(),
        ));
    }
    start_lb(&dir.join("lb"), lb_port, &live)?;
    std::fs::write(dir.join("manager-password"), MANAGER.1)?;
    let strategy = if mode == "blue-green" {
        "blue-green"
    } else {
        "rolling"
    };
    let all_down = if mode == "all-down" {
        format!(
            "db-backup = \"{b}/db-backup\"\ndb-restore = \"{b}/db-restore\"\nbackup-dir = \"{}\"\n",
            dir.join("backups").display(),
            b = dir.join("bin").display()
        )
    } else {
        String::new()
    };
    let spec = format!(
        "# A {mode} update of a {n}-node simulated Liferay cluster behind nginx.\n\
         [rollout]\nname = \"liferay-{mode}\"\nconcurrency = 2\n\n\
         [strategy]\nplugin = \"{s}\"\n[strategy.params]\non-failure = \"pause\"\n\n\
         [adapter]\nplugin = \"{a}\"\n[adapter.params]\nmode = \"{mode}\"\nartifacts = \"{art}\"\nmodule = \"blog-1.1.0.jar\"\n\
         # blog 1.1.0 raises its schema's minor version, which keeps the old code working.\n\
         schema-compatible = true\n\
         properties = \"portal-ext.properties\"\nlb-dir = \"{lb}\"\nnginx = \"{nginx}\"\n\
         db-client = \"{bin}/mysql\"\nmanager = \"/manager\"\nmanager-user = \"{user}\"\nmanager-password-secret = \"manager-password\"\n{all_down}\n\
         [secrets]\nmanager-password = {{ file = \"{pwd}\" }}\n\n\
         [grants]\ndirs = [\n  {{ path = \"{art}\", access = \"read\" }},\n  {{ path = \"{nodes}\", access = \"read-write\" }},\n  {{ path = \"{lb}\", access = \"read-write\" }},\n  {{ path = \"{patching}\", access = \"read-write\" }},\n]\n\
         exec = [\"{nodes}/*/bin/start\", \"{nodes}/*/bin/stop\", \"{nginx}\", \"{bin}/*\", \"{jvm}/*/bin/java\", \"{patching}/*/patching-tool.sh\"]\nhttp = [\"127.0.0.1:*\"]\n{targets}",
        s = plugins.join(format!("{}.wasm", strategy.replace('-', "_"))).display(),
        a = plugins.join("liferay_cluster.wasm").display(),
        art = dir.join("artifacts").display(),
        lb = dir.join("lb").display(),
        nginx = nginx(),
        nodes = dir.join("nodes").display(),
        bin = dir.join("bin").display(),
        jvm = dir.join("jvm").display(),
        patching = dir.join("patching").display(),
        pwd = dir.join("manager-password").display(),
        user = MANAGER.0,
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
