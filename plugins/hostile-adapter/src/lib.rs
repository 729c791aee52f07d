//! `hostile-adapter`: a test fixture that tries to escape its sandbox. Its one step does
//! what the `attack` parameter says; every attempt must fail with an error naming the grant.

use cutover_sdk::adapter_types::*;
use cutover_sdk::params::label;
use cutover_sdk::step::{fail, out};
use cutover_sdk::{cmd, files, web};
use std::path::Path;

struct Hostile;

impl cutover_sdk::Adapter for Hostile {
    fn describe() -> Description {
        Description {
            name: "hostile-adapter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "tries to escape the sandbox (test fixture)".into(),
            parameters: vec![
                Parameter {
                    name: "attack".into(),
                    description: "what to try (a target label overrides it)".into(),
                    required: true,
                    per_target: true,
                    default: None,
                },
                Parameter {
                    name: "root".into(),
                    description: "a directory granted read-only".into(),
                    required: true,
                    per_target: true,
                    default: None,
                },
            ],
            capabilities: vec![Capability::Dir(DirRequest {
                path: "{root}".into(),
                access: Access::Read,
            })],
            steps: vec![Step {
                name: "attack".into(),
                description: "try the attack".into(),
                scope: Scope::Target,
                phase: Phase::Rollout,
                undoable: false,
                idempotent: true,
                default_timeout_s: 3,
            }],
        }
    }

    fn run_step(
        _: String,
        target: Option<Target>,
        ctx: StepContext,
    ) -> Result<Vec<Output>, StepError> {
        let t = target.ok_or_else(|| fail("no target"))?;
        let root = Path::new(label(&t, "root")?);
        match cutover_sdk::params::label_or_param(&t, &ctx.params, "attack", "") {
            "read-granted" => {
                files::read_string(&root.join("allowed.txt")).map(|s| vec![out("content", s)])
            }
            "read-outside" => {
                files::read_string(Path::new("/etc/passwd")).map(|s| vec![out("stolen", s)])
            }
            "symlink" => {
                files::read_string(&root.join("escape-link")).map(|s| vec![out("stolen", s)])
            }
            "climb" => {
                files::read_string(&root.join("../secret.txt")).map(|s| vec![out("stolen", s)])
            }
            "write-readonly" => std::fs::write(root.join("planted.txt"), b"x")
                .map(|_| vec![])
                .map_err(|e| files::io_error("writing", &root.join("planted.txt"), e)),
            "exec" => {
                cmd::run("/bin/sh", &["-c", "id"], None).map(|e| vec![out("stdout", e.stdout)])
            }
            "http" => web::get("http://127.0.0.1:9/", Some(500))
                .map(|(s, _)| vec![out("status", s.to_string())])
                .map_err(fail),
            "secret" => cutover_sdk::adapter::cutover::plugin::secrets::get("root-password")
                .map(|s| vec![out("stolen", s)])
                .map_err(fail),
            "leak" => Err(StepError {
                message: "the key is k3y-0f-the-engine".into(),
                transient: false,
                outputs: vec![cutover_sdk::step::secret("key", "k3y-0f-the-engine")],
            }),
            "copy-out" => files::copy_tree(root, Path::new("/tmp/cutover-stolen"))
                .map(|s| vec![out("files", s.files.to_string())]),
            "trap" => panic!("deliberate panic"),
            "memory" => {
                let mut hog: Vec<Vec<u8>> = Vec::new();
                loop {
                    hog.push(vec![1u8; 16 << 20]);
                }
            }
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    if x == 42 {
                        return Ok(vec![]);
                    }
                }
            }
            other => Err(fail(format!("unknown attack `{other}`"))),
        }
    }

    fn undo_step(_: String, _: Option<Target>, _: StepContext) -> Result<(), StepError> {
        Ok(())
    }
}

cutover_sdk::export_adapter!(Hostile);
