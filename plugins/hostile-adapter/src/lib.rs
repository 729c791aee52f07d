//! `hostile-adapter`: a test fixture that tries to escape its sandbox.
//!
//! It is written against the WIT contract directly (no SDK), so that nothing but the host
//! stands between an attack and what it is after. Two target steps run in order: `plant`
//! prepares an attack (symbolic links planted from inside the sandbox), `attack` carries it
//! out. Which attack is chosen by the `attack` label of the target (else the parameter);
//! `none` only reads the target's own `allowed.txt`, so benign targets show that the
//! rollout goes on around the hostile one.
//!
//! Every error returned carries the path or value tried and the host's error text verbatim,
//! so the host's explanation (which grant to add) reaches the operator unchanged. An attack
//! that unexpectedly succeeds returns what it got as outputs, so a test sees the escape.

wit_bindgen::generate!({ world: "adapter", path: "../../wit" });

// The world's own `use`s (description, step-context, target, ...) are generated at the crate
// root; the rest comes from the interfaces.
use cutover::plugin::adapter_types::{
    Access, Capability, DirRequest, Parameter, Phase, Scope, Step,
};
use cutover::plugin::types::Level;
use cutover::plugin::{exec, files, http, log, secrets};

struct Hostile;

export!(Hostile);

/// A target-scope rollout step with no capabilities of its own.
fn step(name: &str, description: &str, default_timeout_s: u32) -> Step {
    Step {
        name: name.into(),
        description: description.into(),
        scope: Scope::Target,
        phase: Phase::Rollout,
        undoable: false,
        idempotent: true,
        undo_idempotent: true,
        default_timeout_s,
        capabilities: Vec::new(),
    }
}

fn parameter(name: &str, description: &str, required: bool, default: Option<&str>) -> Parameter {
    Parameter {
        name: name.into(),
        description: description.into(),
        required,
        per_target: true,
        default: default.map(Into::into),
    }
}

fn dir(path: &str) -> Capability {
    Capability::Dir(DirRequest {
        path: path.into(),
        access: Access::ReadWrite,
    })
}

fn out(key: &str, value: impl Into<String>) -> Output {
    Output {
        key: key.into(),
        value: value.into(),
        secret: false,
    }
}

fn fail(message: impl Into<String>) -> StepError {
    StepError {
        message: message.into(),
        transient: false,
        outputs: Vec::new(),
    }
}

fn pair(key: &str, value: &str) -> Pair {
    Pair {
        key: key.into(),
        value: value.into(),
    }
}

/// What a step call knows of its target: labels first, then the adapter's params.
struct Call<'a> {
    target: &'a Target,
    params: &'a [Pair],
}

impl Call<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.target
            .labels
            .iter()
            .chain(self.params.iter())
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    fn need(&self, key: &str) -> Result<&str, StepError> {
        self.get(key)
            .ok_or_else(|| fail(format!("target `{}` has no `{key}`", self.target.id)))
    }
}

/// Read a file through WASI; what it holds is the output `stolen` (the test looks for it).
fn read(path: &str) -> Result<Vec<Output>, StepError> {
    std::fs::read(path)
        .map(|b| vec![out("stolen", String::from_utf8_lossy(&b))])
        .map_err(|e| fail(format!("{path}: {e}")))
}

/// A symbolic link at `link` pointing at `to`, created from inside the sandbox; whatever was
/// at `link` is removed first.
fn plant_link(to: &str, link: &str) -> Result<Vec<Output>, StepError> {
    let _ = std::fs::remove_file(link);
    let _ = std::fs::remove_dir_all(link);
    // `std::os::wasi::fs::symlink_path` is still unstable; this is the same WASI call.
    #[allow(deprecated)]
    std::fs::soft_link(to, link)
        .map(|_| vec![out("planted", format!("{link} -> {to}"))])
        .map_err(|e| fail(format!("planting {link} -> {to}: {e}")))
}

/// Run a program through the host.
fn run(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: Option<&str>,
) -> Result<exec::Exit, StepError> {
    let cmd = exec::Command {
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: cwd.map(Into::into),
        env: env.iter().map(|(k, v)| pair(k, v)).collect(),
        stdin: None,
        timeout_ms: None,
    };
    exec::run(&cmd).map_err(|e| fail(format!("exec of `{program}`: {e}")))
}

/// Run a program the attack should not be able to run: its output if it ran.
fn run_escape(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: Option<&str>,
) -> Result<Vec<Output>, StepError> {
    let exit = run(program, args, env, cwd)?;
    Ok(vec![
        out("code", format!("{:?}", exit.code)),
        out("stdout", exit.stdout),
        out("stderr", exit.stderr),
    ])
}

fn copy(from: &str, to: &str) -> Result<Vec<Output>, StepError> {
    files::copy_tree(from, to)
        .map(|s| vec![out("files", s.files.to_string())])
        .map_err(|e| fail(format!("copy-tree {from} -> {to}: {e}")))
}

fn write(path: &str, contents: &[u8]) -> Result<Vec<Output>, StepError> {
    files::write_atomic(path, contents)
        .map(|_| vec![out("written", path)])
        .map_err(|e| fail(format!("write-atomic {path}: {e}")))
}

fn get(url: &str, timeout_ms: Option<u64>) -> Result<Vec<Output>, StepError> {
    let req = http::Request {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: None,
        timeout_ms,
    };
    http::send(&req)
        .map(|r| {
            vec![
                out("status", r.status.to_string()),
                out("body", String::from_utf8_lossy(&r.body)),
            ]
        })
        .map_err(|e| fail(format!("GET {url}: {e}")))
}

fn secret(name: &str) -> Result<String, StepError> {
    secrets::get(name).map_err(|e| fail(format!("secret {name}: {e}")))
}

/// The last `n` characters of `s`.
fn tail(s: &str, n: usize) -> String {
    let skip = s.chars().count().saturating_sub(n);
    s.chars().skip(skip).collect()
}

/// The flood's filler byte (see `exec-flood`): what is left without it is the host's note.
const FILLER: char = '~';

/// `plant`: prepare the attacks that need something on disk first.
fn plant(c: &Call, attack: &str, root: &str) -> Result<Vec<Output>, StepError> {
    match attack {
        // The granted `{root}/{nested}` becomes a link up to the filesystem root: enough
        // `..` to get there from any depth. `./` makes the path resolve through the `{root}`
        // preopen, not the nested one (which would be the directory itself).
        "nested-preopen" => {
            let nested = c.need("nested")?;
            plant_link(&"../".repeat(32), &format!("{root}/./{nested}"))
        }
        // `{root}/out` -> the canary's folder, by the relative path the test gives.
        "write-through-link" | "copy-through-link" => {
            plant_link(c.need("arg")?, &format!("{root}/out"))
        }
        // `{root}/tool` -> /bin/sh. The sandbox refuses to create a link with an absolute
        // target (EPERM), so it climbs there by a relative one.
        "exec-planted" => plant_link(
            &format!("{}bin/sh", "../".repeat(32)),
            &format!("{root}/tool"),
        ),
        _ => Ok(Vec::new()),
    }
}

/// `attack`: carry it out.
fn attack(c: &Call, attack: &str, root: &str) -> Result<Vec<Output>, StepError> {
    let prog = || c.need("prog");
    let arg = || c.need("arg");
    match attack {
        "none" | "read-granted" => {
            let path = format!("{root}/allowed.txt");
            let content =
                std::fs::read_to_string(&path).map_err(|e| fail(format!("{path}: {e}")))?;
            let mut outputs = vec![out("content", content)];
            if let Some(prog) = c.get("prog") {
                let exit = run(prog, &["env"], &[("SAFE_VAR", "ok")], Some(root))?;
                outputs.push(out("env", exit.stdout));
            }
            Ok(outputs)
        }
        "read-outside" => read("/etc/passwd"),
        "climb" => read(&format!("{root}/../secret.txt")),
        "symlink" => read(&format!("{root}/escape-link")),
        "write-readonly" => {
            let path = "/etc/cutover-planted";
            std::fs::write(path, b"x")
                .map(|_| vec![out("written", path)])
                .map_err(|e| fail(format!("{path}: {e}")))
        }
        "copy-out" => copy(root, "/tmp/cutover-stolen"),
        "nested-preopen" => read(&format!("{root}/{}/{}", c.need("nested")?, arg()?)),
        "write-through-link" => write(&format!("{root}/out/canary.txt"), b"owned"),
        "copy-through-link" => copy(&format!("{root}/out"), &format!("{root}/stolen")),
        "copy-race" => {
            let mut copies = 0;
            for n in 0..40 {
                if files::copy_tree(&format!("{root}/tree"), &format!("{root}/copy-{n}")).is_ok() {
                    copies += 1;
                }
                let _ = files::write_atomic(&format!("{root}/tree/sub/f.txt"), b"owned");
            }
            Ok(vec![out("copies", copies.to_string())])
        }
        "copy-self" => copy(root, &format!("{root}/sub/copy")),
        "exec-ungranted" => run_escape("/bin/sh", &["-c", "id"], &[], None),
        "exec-planted" => run_escape(&format!("{root}/tool"), &["-c", "id"], &[], None),
        "exec-dotdot" => {
            // Far enough up to reach `/` from wherever the granted program lives.
            let up = "/..".repeat(32);
            run_escape(&format!("{}{up}/bin/sh", prog()?), &["-c", "id"], &[], None)
        }
        "env-ld-preload" => run_escape(prog()?, &["env"], &[("LD_PRELOAD", "/tmp/x.so")], None),
        "env-path" => run_escape(prog()?, &["env"], &[("PATH", root)], None),
        "env-bash-env" => {
            let x = format!("{root}/x");
            run_escape(prog()?, &["env"], &[("BASH_ENV", &x)], None)
        }
        "cwd-outside" => run_escape(prog()?, &["env"], &[], Some("/etc")),
        "redirect" => {
            // A full URL is sent as is; `host:port` (what the capability names) means `/` there.
            let http = c.need("http")?;
            if http.contains("://") {
                get(http, Some(5_000))
            } else {
                get(&format!("http://{http}/"), Some(5_000))
            }
        }
        "secret-leak" => {
            let value = secret(c.need("secret")?)?;
            log::write(Level::Info, &format!("the token is {value}"));
            Err(StepError {
                message: format!("failed with token {value}"),
                transient: false,
                outputs: vec![out("token", value)],
            })
        }
        "spin" => {
            let mut x: u64 = 0;
            loop {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                if x == 42 {
                    return Ok(Vec::new());
                }
            }
        }
        "spin-child" => run_escape(prog()?, &["spawn-sleep", arg()?], &[], None),
        "escape-codes" => {
            log::write(Level::Warn, "\u{1b}]0;pwned\u{7}\u{1b}[2J\n  ✔ t9 updated");
            log::progress("\u{1b}[1A\u{1b}[2Kdone\u{7}", Some(0.5));
            Err(fail("\u{1b}[31mred\n  ✔ t8 updated"))
        }
        "fifo-copy" => copy(&format!("{root}/fifo-dir"), &format!("{root}/fifo-copy")),
        "fifo-write" => write(&format!("{root}/pipe"), b"x"),
        "fifo-read" => read(&format!("{root}/pipe")),
        "exec-flood" => {
            let exit = run(prog()?, &["flood", arg()?], &[], None)?;
            let notes: String = exit
                .stdout
                .chars()
                .filter(|&ch| ch != FILLER)
                .take(4000)
                .collect();
            Ok(vec![
                out("stdout-len", exit.stdout.len().to_string()),
                out("stdout-tail", tail(&exit.stdout, 300)),
                out("stdout-notes", notes),
            ])
        }
        "log-flood" => {
            for n in 0..100_000 {
                log::write(Level::Info, &format!("line {n}"));
            }
            log::write(Level::Info, &"y".repeat(4 << 20));
            Ok(Vec::new())
        }
        "trap" => panic!("deliberate panic"),
        "memory" => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                hog.push(vec![1u8; 16 << 20]);
            }
        }
        "leak" => Err(StepError {
            message: "the key is k3y-0f-the-engine".into(),
            transient: false,
            outputs: vec![Output {
                key: "key".into(),
                value: "k3y-0f-the-engine".into(),
                secret: true,
            }],
        }),
        "http-ungranted" => get("http://127.0.0.1:9/", Some(500)),
        "secret-ungranted" => secret("root-password").map(|v| vec![out("stolen", v)]),
        other => Err(fail(format!("unknown attack `{other}`"))),
    }
}

impl Guest for Hostile {
    fn describe() -> Description {
        let p = |name, description| parameter(name, description, false, None);
        Description {
            leases: vec![],
            name: "hostile-adapter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "tries to escape the sandbox (test fixture)".into(),
            parameters: vec![
                parameter("attack", "what to try", false, Some("none")),
                parameter("root", "the target's own read-write folder", true, None),
                p("nested", "a folder under root, granted on its own"),
                p("prog", "a program the attack may run"),
                p("conflict", "a second program, which may lie under root"),
                p("http", "host:port (or a URL) the attack may reach"),
                p("secret", "a secret name the attack may read"),
                p("arg", "the attack's argument"),
            ],
            capabilities: vec![
                dir("{root}"),
                dir("{root}/{nested?}"),
                Capability::Exec("{prog?}".into()),
                Capability::Exec("{conflict?}".into()),
                Capability::Http("{http?}".into()),
                Capability::Secret("{secret?}".into()),
                Capability::Env("SAFE_VAR".into()),
            ],
            steps: vec![
                step("plant", "prepare the attack", 10),
                // The largest budget a plugin can ask for: the host must cap it.
                step("attack", "try the attack", u32::MAX),
            ],
        }
    }

    fn preflight(_: Vec<Target>, _: Vec<Pair>, _: String) -> Result<Vec<Finding>, PluginError> {
        Ok(Vec::new())
    }

    fn constraints(_: Vec<Target>, _: Vec<Pair>) -> Result<Vec<Constraint>, PluginError> {
        Ok(Vec::new())
    }

    fn run_step(
        step: String,
        target: Option<Target>,
        context: StepContext,
    ) -> Result<Vec<Output>, StepError> {
        let target = target.ok_or_else(|| fail("target steps only"))?;
        let c = Call {
            target: &target,
            params: &context.params,
        };
        let root = c.need("root")?.trim_end_matches('/').to_string();
        let which = c.get("attack").unwrap_or("none").to_string();
        match step.as_str() {
            "plant" => plant(&c, &which, &root),
            "attack" => attack(&c, &which, &root),
            other => Err(fail(format!("unknown step `{other}`"))),
        }
    }

    fn undo_step(_: String, _: Option<Target>, _: StepContext) -> Result<(), StepError> {
        Ok(())
    }
}
