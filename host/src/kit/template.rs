//! `cutover plugin new adapter|strategy NAME`: a crate that builds with plain
//! `cargo build --release --target wasm32-wasip2` and, for adapters, a test fleet that
//! `cutover plugin test` runs it on.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Which kind of plugin to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Adapter,
    Strategy,
}

const CARGO: &str = include_str!("templates/Cargo.toml.in");
const CONFIG: &str = include_str!("templates/config.toml.in");
const ADAPTER: &str = include_str!("templates/adapter.rs.in");
const STRATEGY: &str = include_str!("templates/strategy.rs.in");
const FLEET: &str = include_str!("templates/test-fleet.toml.in");

/// Where the SDK is: `sdk` when given, else the source tree this binary was built from when
/// it is still there, else the published crate.
fn sdk_dependency(sdk: Option<&Path>) -> Result<String> {
    let path = match sdk {
        Some(p) => Some(
            p.canonicalize()
                .with_context(|| format!("--sdk {}", p.display()))?,
        ),
        None => Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk"))
            .canonicalize()
            .ok(),
    };
    Ok(match path {
        Some(p) if p.join("Cargo.toml").is_file() => {
            format!("{{ path = {:?} }}", p.display().to_string())
        }
        Some(p) => bail!(
            "{} holds no Cargo.toml: give the cutover-sdk folder",
            p.display()
        ),
        None => "\"1.1\"".to_string(),
    })
}

/// Write the crate `name` into `dir/name`; its path.
pub fn create(kind: Kind, name: &str, dir: &Path, sdk: Option<&Path>) -> Result<PathBuf> {
    let ok = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        bail!(
            "plugin name `{name}`: use lowercase letters, digits and `-`, starting with a letter"
        );
    }
    let root = dir.join(name);
    if root.exists() {
        bail!(
            "{} already exists: choose another name or folder",
            root.display()
        );
    }
    let file = name.replace('-', "_");
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::create_dir_all(root.join(".cargo"))?;
    let abs = root.canonicalize()?;
    let fill = |t: &str| {
        t.replace("{crate}", name)
            .replace("{name}", name)
            .replace("{file}", &file)
            .replace("{dir}", &abs.display().to_string())
    };
    let write = |rel: &str, text: String| -> Result<()> {
        std::fs::write(root.join(rel), text).with_context(|| format!("writing {rel}"))
    };
    write(
        "Cargo.toml",
        fill(CARGO).replace("{sdk}", &sdk_dependency(sdk)?),
    )?;
    write(".cargo/config.toml", fill(CONFIG))?;
    write(".gitignore", "/target\n/test-fleet\n".into())?;
    match kind {
        Kind::Adapter => {
            write("src/lib.rs", fill(ADAPTER))?;
            write("test-fleet.toml", fill(FLEET))?;
            for node in ["node-1", "node-2"] {
                std::fs::create_dir_all(root.join("test-fleet").join(node))?;
            }
        }
        Kind::Strategy => write("src/lib.rs", fill(STRATEGY))?,
    }
    Ok(root)
}
