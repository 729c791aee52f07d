//! `cutover`: the command line.

use anyhow::Result;
use clap::{Parser, Subcommand};
use cutover::cli;
use std::path::PathBuf;

/// Zero-downtime fleet rollouts driven by sandboxed WebAssembly plugins.
#[derive(Parser)]
#[command(name = "cutover", version, about)]
struct Args {
    /// The journal (SQLite). Default: $CUTOVER_JOURNAL, else .cutover/journal.db.
    #[arg(long, global = true, env = "CUTOVER_JOURNAL")]
    journal: Option<PathBuf>,
    /// Show every step and plugin log line.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// The plugin store. Default: $CUTOVER_STORE, else $XDG_DATA_HOME/cutover/plugins.
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the stages, waves and gates a spec would run, and a worst-case duration.
    Plan {
        spec: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run a rollout.
    Run { spec: PathBuf },
    /// Show a rollout (the newest when no id is given).
    Status {
        id: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Continue a paused or interrupted rollout at the step where it stopped.
    Resume {
        id: i64,
        /// What happened to a non-idempotent step running at a crash: `done`, `retry` or
        /// `failed` for all, or `TARGET=done|retry|failed` for one target (repeatable).
        #[arg(long)]
        in_flight: Vec<String>,
        /// A remote host to leave out (repeatable): it is not reached, and its targets' steps
        /// and undos fail as on a lost host.
        #[arg(long, value_name = "HOST")]
        without_host: Vec<String>,
    },
    /// Stop a rollout: steps in flight are interrupted and their targets undone.
    Abort { id: i64 },
    /// Undo every updated target of a rollout.
    Rollback {
        id: i64,
        /// A remote host to leave out (repeatable): its targets' undos are recorded
        /// unreached, for a later rollback once it answers.
        #[arg(long, value_name = "HOST")]
        without_host: Vec<String>,
    },
    /// Release a rollout waiting at an approval gate or paused by its strategy.
    Approve { id: i64 },
    /// List rollouts.
    History {
        #[arg(long)]
        json: bool,
    },
    /// Serve a web dashboard of the journal: every rollout live, with approve, abort,
    /// rollback and resume for holders of a token.
    Serve {
        /// Where to listen: a loopback address unless --public.
        #[arg(long, default_value = "127.0.0.1:8640")]
        listen: std::net::SocketAddr,
        /// Allow a non-loopback address (the server speaks plain HTTP: put TLS in front).
        #[arg(long)]
        public: bool,
        /// Tokens that allow actions, one a line: `TOKEN` or `NAME TOKEN` (NAME is recorded
        /// as who acted). Default: $CUTOVER_TOKEN, else one made and printed at start.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Who acts with a token that has no name (default: the user running the server).
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
    },
    /// Inspect, create and test plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Leases on the nodes.
    Lease {
        #[command(subcommand)]
        command: LeaseCommand,
    },
    /// Serve a controller on standard input and output (what `ssh HOST cutover agent --stdio`
    /// runs on a remote target's host).
    Agent {
        /// Speak the agent protocol on stdin/stdout (the only mode).
        #[arg(long)]
        stdio: bool,
        /// Where to keep plugins (default: $XDG_CACHE_HOME/cutover-agent).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Measure plugin load time and engine throughput.
    Bench {
        /// Folder with the built strategy plugins (grouped.wasm).
        #[arg(long, default_value = "plugins/target/wasm32-wasip2/release")]
        plugins: PathBuf,
        /// The no-op adapter measured (a test fixture).
        #[arg(
            long,
            default_value = "host/tests/fixtures/target/wasm32-wasip2/release/noop_adapter.wasm"
        )]
        adapter: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        targets: usize,
        /// Targets in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// World, API version, steps and requested capabilities of a plugin (a file, or a
    /// reference installed in the store).
    Inspect {
        plugin: String,
        #[arg(long)]
        json: bool,
    },
    /// Keep a plugin in the store: an OCI reference (`oci://REGISTRY/REPO:TAG` or
    /// `@sha256:…`, pulled), an `https://…#sha256=HEX` URL, or a file (with FILE.minisig when
    /// there is one).
    Install { reference: String },
    /// The plugins in the store, their references and whether a rollout uses them.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a reference (or a digest with its references) from the store; plugins a
    /// rollout may still resume with are kept.
    Remove { reference: String },
    /// Remove the plugins no reference names and no rollout of this journal may still need
    /// (the file plugins of finished rollouts). Rollouts of other journals are not known here.
    Prune,
    /// Publish a plugin to an OCI registry, in the Wasm component layout (with FILE.minisig
    /// as a second layer when there is one).
    Push { file: PathBuf, reference: String },
    /// Write a new minisign key pair for signing plugins: OUT.key and OUT.pub.
    Keygen { out: PathBuf },
    /// Sign a plugin with a secret key: writes FILE.minisig.
    Sign {
        file: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
    /// Check a plugin's signature (a file with its .minisig, or an installed reference)
    /// against public keys (default: $CUTOVER_TRUST's). Exit code 1 when it does not verify.
    Verify {
        plugin: String,
        /// A public key file or base64 line; repeatable.
        #[arg(long)]
        key: Vec<String>,
    },
    /// Write a new plugin crate (it builds with `cargo build --release --target wasm32-wasip2`).
    New {
        #[arg(value_enum)]
        kind: cutover::kit::template::Kind,
        /// Crate and plugin name: lowercase letters, digits and `-`.
        name: String,
        /// Folder to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The cutover-sdk folder to depend on (default: this build's source tree if present,
        /// else the published crate).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Check a plugin against the contract; with a spec, run an adapter's steps on its test
    /// fleet with faults injected (re-runs, undos, budgets). Exit code 1 when a check fails.
    Test {
        plugin: PathBuf,
        /// A spec with a test fleet (adapters) or the strategy's parameters (strategies).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Paths under the targets' writable folders that change on their own (glob; `**`
        /// crosses folders), left out of the before/after comparisons. Repeatable.
        #[arg(long)]
        ignore: Vec<String>,
    },
}

#[derive(Subcommand)]
enum LeaseCommand {
    /// Remove a stale lease file (its holder is gone), saying whose it was.
    Break { path: PathBuf },
}

fn main() {
    let args = Args::parse();
    let code = match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "error: {}",
                cutover::plugin::authority::text::quoted(&format!("{e:#}"))
            );
            1
        }
    };
    std::process::exit(code);
}

fn run(args: Args) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ctx = cli::Ctx::new(args.journal, args.verbose, args.store);
    let code = rt.block_on(async move {
        match args.command {
            Command::Plan { spec, json } => cli::plan(&ctx, &spec, json).await,
            Command::Run { spec } => cli::run(&ctx, &spec).await,
            Command::Status { id, json } => cli::status(&ctx, id, json),
            Command::Resume {
                id,
                in_flight,
                without_host,
            } => cli::resume(&ctx, id, &in_flight, &without_host).await,
            Command::Abort { id } => cli::abort(&ctx, id),
            Command::Rollback { id, without_host } => cli::rollback(&ctx, id, &without_host).await,
            Command::Approve { id } => cli::approve(&ctx, id).await,
            Command::History { json } => cli::history(&ctx, json),
            Command::Serve {
                listen,
                public,
                token_file,
                operator,
            } => {
                let opts = cutover::serve::Options {
                    listen,
                    public,
                    token_file,
                    operator,
                };
                cutover::serve::run(ctx.journal_path(), ctx.store_path(), opts).await
            }
            Command::Plugin {
                command: PluginCommand::Inspect { plugin, json },
            } => cli::inspect(&ctx, &cli::store::file_of(&ctx, &plugin)?, json).await,
            Command::Plugin {
                command: PluginCommand::Install { reference },
            } => cli::store::install(&ctx, &reference).await,
            Command::Plugin {
                command: PluginCommand::List { json },
            } => cli::store::list(&ctx, json),
            Command::Plugin {
                command: PluginCommand::Remove { reference },
            } => cli::store::remove(&ctx, &reference),
            Command::Plugin {
                command: PluginCommand::Prune,
            } => cli::store::prune(&ctx),
            Command::Plugin {
                command: PluginCommand::Push { file, reference },
            } => cli::store::push(&ctx, &file, &reference).await,
            Command::Plugin {
                command: PluginCommand::Keygen { out },
            } => cli::store::keygen(&out),
            Command::Plugin {
                command: PluginCommand::Sign { file, key },
            } => cli::store::sign(&file, &key),
            Command::Plugin {
                command: PluginCommand::Verify { plugin, key },
            } => cli::store::verify(&ctx, &plugin, &key),
            Command::Plugin {
                command:
                    PluginCommand::New {
                        kind,
                        name,
                        dir,
                        sdk,
                    },
            } => cli::plugin_new(kind, &name, &dir, sdk.as_deref()),
            Command::Plugin {
                command:
                    PluginCommand::Test {
                        plugin,
                        spec,
                        ignore,
                    },
            } => cli::plugin_test(&ctx, &plugin, spec.as_deref(), &ignore).await,
            Command::Lease {
                command: LeaseCommand::Break { path },
            } => cli::lease_break(&path),
            Command::Agent { stdio, cache } => {
                if !stdio {
                    anyhow::bail!("`cutover agent` serves only over --stdio");
                }
                cutover::remote::agent::serve_stdio(cache).await.map(|()| 0)
            }
            Command::Bench {
                plugins,
                adapter,
                targets,
                concurrency,
            } => cutover::bench::run(&plugins, &adapter, targets, concurrency).await,
        }
    });
    // The journal is closed by now. A worker stuck in a plugin's blocking file read (a FIFO,
    // a hung mount) must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}
