//! `websphere-sim`: a simulated WebSphere ND cell with application editions.
//!
//! - `websphere-sim init DIR [options]`: write a cell (`cell.json`), the deployment manager
//!   profile's `properties/soap.client.props`, `bin/workclassoperations.py` and an HAProxy
//!   configuration (`haproxy.cfg`) routing to the members with cookie affinity.
//! - `websphere-sim serve DIR`: run the deployment manager (wsadmin's SOAP port) and the members.
//! - `websphere-sim fleet DIR --members N --port P [--mode grouped|atomic] [--reset soft|hard]
//!   --plugins DIR`: a cell started with HAProxy in front, and a `rollout.toml` for it;
//!   `websphere-sim teardown DIR` stops them.
//! - `websphere-sim traffic URL --clients N --stop FILE --out FILE --new EDITION`: clients that
//!   each keep one session through the router until FILE exists; a JSON summary in `--out`.

mod cell;
mod fleet;
mod jython;
mod member;
mod traffic;

use anyhow::{Context, Result};
use simkit::arg;
use std::path::Path;

fn main() {
    simkit::main("websphere-sim", |args| {
        match args.first().map(String::as_str) {
        Some("init") => init(&simkit::folder(args, 1)?, args),
        Some("serve") => serve(&simkit::folder(args, 1)?),
        Some("traffic") => traffic::run(args),
        Some("fleet") => fleet::build(&simkit::folder(args, 1)?, args),
        Some("teardown") => fleet::teardown(&simkit::folder(args, 1)?),
        _ => anyhow::bail!("usage: websphere-sim init DIR [--members N --base-port P --soap-port P --router-port P --router-admin-port P --request-timeout S --statistic-set all|extended|basic --editions 1.0,2.0 --routing 2.0 --restart-ms MS --work-ms MS --user U --password P] | serve DIR | fleet DIR --members N --port P [--mode grouped|atomic] [--reset soft|hard] | teardown DIR | traffic URL --clients N --stop FILE --out FILE --new EDITION"),
    }
    })
}

pub fn num<T: std::str::FromStr>(args: &[String], name: &str, default: &str) -> Result<T> {
    arg(args, name, default)
        .parse()
        .map_err(|_| anyhow::anyhow!("{name} wants a number"))
}

pub fn init(dir: &Path, args: &[String]) -> Result<()> {
    let members: usize = num(args, "--members", "6")?;
    let base: u16 = num(args, "--base-port", "19080")?;
    let editions: Vec<String> = arg(args, "--editions", "1.0,2.0")
        .split(',')
        .map(str::to_string)
        .collect();
    let app = arg(args, "--app", "Shop");
    let opt = |n: &str| {
        args.iter()
            .position(|a| a == n)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let config = cell::Config {
        cell: "cell01".into(),
        cluster: arg(args, "--cluster", "cluster1"),
        app: app.clone(),
        soap_port: num(args, "--soap-port", "18879")?,
        members: (0..members)
            .map(|i| cell::MemberConfig {
                name: format!("member{}", i + 1),
                node: format!("node{:02}", i / 2 + 1),
                port: base + i as u16,
            })
            .collect(),
        installed: editions
            .iter()
            .map(|e| format!("{app}-edition{e}"))
            .collect(),
        routing: arg(args, "--routing", &editions.join(","))
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        statistic_set: arg(args, "--statistic-set", "all"),
        restart_ms: num(args, "--restart-ms", "600")?,
        work_ms: num(args, "--work-ms", "15")?,
        user: opt("--user"),
        password: opt("--password"),
    };
    std::fs::create_dir_all(dir.join("profile/properties"))?;
    std::fs::create_dir_all(dir.join("bin"))?;
    simkit::write_atomic(
        &dir.join("cell.json"),
        serde_json::to_string_pretty(&config)?.as_bytes(),
    )?;
    let mut state = cell::State::default();
    state.editions.insert(editions[0].clone(), "active".into());
    for e in &editions[1..] {
        state.editions.insert(e.clone(), "inactive".into());
    }
    simkit::write_atomic(
        &dir.join("state.json"),
        serde_json::to_string_pretty(&state)?.as_bytes(),
    )?;
    // The stock file's comment and key ("The soap.client.props file"; IBM: "set a higher
    // value for the com.ibm.SOAP.requestTimeout property in the
    // profile_root/properties/soap.client.props file").
    let timeout = arg(args, "--request-timeout", "180");
    simkit::write_atomic(
        &dir.join("profile/properties/soap.client.props"),
        format!("#------------------------------------------------------------------------------\n# SOAP Request Timeout\n#\n# - timeout (specified in seconds [default 180], 0 implies no timeout)\n#\n#------------------------------------------------------------------------------\ncom.ibm.SOAP.requestTimeout={timeout}\n").as_bytes(),
    )?;
    // The script IBM ships in app_server_root/bin; this wsadmin answers it itself.
    simkit::write_atomic(
        &dir.join("bin/workclassoperations.py"),
        b"# workclassoperations.py (answered by the simulated wsadmin)\n",
    )?;
    let router: u16 = num(args, "--router-port", "18080")?;
    let admin: u16 = num(args, "--router-admin-port", "18081")?;
    let servers: String = config
        .members
        .iter()
        .map(|m| {
            format!(
                "    server {n} 127.0.0.1:{p} cookie {n} check inter 300 fall 2 rise 1\n",
                n = m.name,
                p = m.port
            )
        })
        .collect();
    simkit::write_atomic(
        &dir.join("haproxy.cfg"),
        format!("global\n    stats socket ipv4@127.0.0.1:{admin} level admin\n    pidfile {pid}\n\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n    retries 3\n    option redispatch\n    retry-on conn-failure empty-response\n    option http-server-close\n\nfrontend web\n    bind 127.0.0.1:{router}\n    default_backend cluster\n\nbackend cluster\n    balance roundrobin\n    cookie ROUTE insert indirect nocache\n    option httpchk GET /app/ping\n    http-check expect status 200\n{servers}",
            pid = dir.join("haproxy.pid").display()).as_bytes(),
    )?;
    Ok(())
}

fn serve(dir: &Path) -> Result<()> {
    let cell = std::sync::Arc::new(cell::Cell::open(dir)?);
    cell.start()?;
    let server = tiny_http::Server::http(("127.0.0.1", cell.config.soap_port))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("the SOAP port {}", cell.config.soap_port))?;
    simkit::write_atomic(
        &dir.join("dmgr.pid"),
        std::process::id().to_string().as_bytes(),
    )?;
    for mut req in server.incoming_requests() {
        let cell = cell.clone();
        std::thread::spawn(move || {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let reply = match cell.check_login(v["user"].as_str(), v["password"].as_str()) {
                Err(e) => serde_json::json!({ "login": e.to_string() }),
                Ok(()) => match (v["script"].as_str(), v["workclass"].as_array()) {
                    (Some(s), _) => {
                        let (out, error) = cell.run(s);
                        serde_json::json!({ "out": out, "error": error })
                    }
                    (None, Some(a)) => {
                        let a: Vec<String> = a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect();
                        match cell.list_work_classes(&a) {
                            Ok(out) => serde_json::json!({ "out": out }),
                            Err(e) => serde_json::json!({ "out": "", "error": e.to_string() }),
                        }
                    }
                    _ => serde_json::json!({ "out": "", "error": "nothing to run" }),
                },
            };
            let _ = req.respond(tiny_http::Response::from_string(reply.to_string()));
        });
    }
    Ok(())
}
