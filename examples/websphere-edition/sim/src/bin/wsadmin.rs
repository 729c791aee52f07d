//! `wsadmin` of the simulated cell, with the options IBM documents ("wsadmin scripting
//! tool", rxml_commandline): `-lang jython`, `-conntype SOAP`, `-host`, `-port`, `-user`,
//! `-password`, and `-c command` or `-f script [arguments]`. It prints WASX7209I on
//! connecting, then what the script prints; an exception is printed as WASX7015E and the
//! exit status is 105, as wsadmin does when a command fails.

use anyhow::{bail, Context, Result};

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{e:#}");
            std::process::exit(103);
        }
    }
}

fn run() -> Result<i32> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opt = std::collections::BTreeMap::new();
    let mut script: Option<serde_json::Value> = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-c" => {
                let cmd = args.get(i + 1).context("-c needs a command")?;
                script = Some(serde_json::json!({ "script": cmd }));
                i += 2;
            }
            "-f" => {
                let path = args.get(i + 1).context("-f needs a script file")?;
                let rest = args[i + 2..].to_vec();
                script = Some(if path.ends_with("workclassoperations.py") {
                    serde_json::json!({ "workclass": rest })
                } else {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("WASX7121E: Cannot find {path}"))?;
                    serde_json::json!({ "script": text })
                });
                i = args.len();
            }
            "-lang" | "-conntype" | "-host" | "-port" | "-user" | "-password" | "-profileName" => {
                opt.insert(a.to_string(), args.get(i + 1).cloned().unwrap_or_default());
                i += 2;
            }
            other => bail!("WASX7023E: unknown option {other}"),
        }
    }
    if opt.get("-lang").map(String::as_str) != Some("jython") {
        bail!("this wsadmin runs Jython only: give -lang jython");
    }
    if opt.get("-conntype").is_some_and(|c| c != "SOAP") {
        bail!("this wsadmin connects with -conntype SOAP only");
    }
    let Some(mut body) = script else {
        bail!("give -c command or -f script: interactive mode is not simulated");
    };
    body["user"] = opt.get("-user").cloned().into();
    body["password"] = opt.get("-password").cloned().into();
    let host = opt.get("-host").map(String::as_str).unwrap_or("localhost");
    let port = opt.get("-port").map(String::as_str).unwrap_or("8879");
    let url = format!("http://{host}:{port}/wsadmin");
    let reply: serde_json::Value = match ureq::post(&url).send(body.to_string().as_bytes()) {
        Ok(r) => serde_json::from_str(&r.into_body().read_to_string()?)?,
        Err(e) => {
            println!("WASX7023E: Error creating \"SOAP\" connection to host \"{host}\"; exception information: {e}");
            return Ok(103);
        }
    };
    if let Some(login) = reply["login"].as_str() {
        println!("{login}");
        return Ok(103);
    }
    println!("WASX7209I: Connected to process \"dmgr\" on node dmgrNode using SOAP connector;  The type of process is: DeploymentManager");
    print!("{}", reply["out"].as_str().unwrap_or_default());
    if let Some(e) = reply["error"].as_str() {
        let cmd = body["script"].as_str().unwrap_or("script");
        println!("WASX7015E: Exception running command: \"{cmd}\"; exception information:\n {e}");
        return Ok(105);
    }
    Ok(0)
}
