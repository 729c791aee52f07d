//! `fleet-fixture`: a test fixture with fleet-scope steps in every phase. Each step and undo
//! appends a line to `<dir>/steps.log`; parameter `fail` names a step that fails.

use cutover_sdk::adapter_types::*;
use cutover_sdk::params::param;
use cutover_sdk::step::fail;
use std::io::Write;
use std::path::Path;

struct FleetFixture;

fn step(name: &str, scope: Scope, phase: Phase) -> Step {
    Step {
        name: name.into(),
        description: format!("record `{name}`"),
        scope,
        phase,
        undoable: true,
        idempotent: true,
        undo_idempotent: true,
        default_timeout_s: 5,
        capabilities: Vec::new(),
    }
}

fn record(ctx: &StepContext, line: &str) -> Result<(), StepError> {
    let path = Path::new(param(&ctx.params, "dir")?).join("steps.log");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| cutover_sdk::files::io_error("appending to", &path, e))?;
    writeln!(f, "{line}").map_err(|e| cutover_sdk::files::io_error("writing", &path, e))
}

fn who(target: &Option<Target>) -> String {
    target
        .as_ref()
        .map(|t| format!(" {}", t.id))
        .unwrap_or_default()
}

impl cutover_sdk::Adapter for FleetFixture {
    fn describe() -> Description {
        Description {
            leases: vec![],
            name: "fleet-fixture".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "records fleet and target steps (test fixture)".into(),
            parameters: vec![
                Parameter {
                    name: "dir".into(),
                    description: "where steps.log is written".into(),
                    required: true,
                    per_target: false,
                    default: None,
                },
                Parameter {
                    name: "fail".into(),
                    description: "a step that fails".into(),
                    required: false,
                    per_target: false,
                    default: Some(String::new()),
                },
            ],
            capabilities: vec![Capability::Dir(DirRequest {
                path: "{dir}".into(),
                access: Access::ReadWrite,
            })],
            steps: vec![
                step("prepare", Scope::Fleet, Phase::Prepare),
                step("update", Scope::Target, Phase::Rollout),
                step("switch", Scope::Fleet, Phase::Switch),
                step("announce", Scope::Fleet, Phase::Finalize),
                step("cleanup", Scope::Target, Phase::Finalize),
            ],
        }
    }

    fn run_step(
        name: String,
        target: Option<Target>,
        ctx: StepContext,
    ) -> Result<Vec<Output>, StepError> {
        if param(&ctx.params, "fail")? == name {
            return Err(fail(format!("{name} fails (as asked)")));
        }
        let fleet = if target.is_none() {
            format!(" (fleet of {})", ctx.fleet.len())
        } else {
            String::new()
        };
        record(&ctx, &format!("{name}{}{fleet}", who(&target)))?;
        Ok(vec![])
    }

    fn undo_step(name: String, target: Option<Target>, ctx: StepContext) -> Result<(), StepError> {
        record(&ctx, &format!("undo {name}{}", who(&target)))
    }
}

cutover_sdk::export_adapter!(FleetFixture);
