//! A stand-in for util-linux's `ipcs` (seed L59-61: `ipcs -m` shows the listener's shared
//! memory, `ipcs -q` its message queues), listing the objects the simulated nodes hold in
//! their `run/ipc`. The real `ipcs` would not see them: they are files, not kernel objects.
//!
//! The output is util-linux's default format (2.38, `sys-utils/ipcs.c`, `do_shm` and
//! `do_msg`): a blank line, a heading, a column header, then one row per object: `0x%08x `
//! key, `%-10d` id, `%-10.10s` owner (user names cut at 10 characters), then for a segment
//! ` %-10o %-10ju %-10ju %-6s %-6s` perms, bytes, nattch, status; for a queue
//! ` %-10o %-12ju %-12ju` perms, used-bytes, messages; and a blank line.

use anyhow::{bail, Result};
use std::path::Path;

/// `ipcs -m` or `ipcs -q` over the fleet at `fleet`.
pub fn run(fleet: &Path, args: &[String]) -> Result<()> {
    let shm = match args.first().map(String::as_str) {
        Some("-m") => true,
        Some("-q") => false,
        _ => bail!("the simulator's ipcs knows -m and -q only"),
    };
    let mut out = String::from("\n");
    if shm {
        out.push_str("------ Shared Memory Segments --------\n");
        out.push_str(&format!(
            "{:<10} {:<10} {:<10} {:<10} {:<10} {:<10} {:<12}\n",
            "key", "shmid", "owner", "perms", "bytes", "nattch", "status"
        ));
    } else {
        out.push_str("------ Message Queues --------\n");
        out.push_str(&format!(
            "{:<10} {:<10} {:<10} {:<10} {:<12} {:<12}\n",
            "key", "msqid", "owner", "perms", "used-bytes", "messages"
        ));
    }
    let mut nodes: Vec<_> = std::fs::read_dir(fleet.join("nodes"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    nodes.sort();
    for node in nodes {
        let text = std::fs::read_to_string(node.join("run/ipc")).unwrap_or_default();
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [kind, key, id, owner, perms, bytes] = f.as_slice() else {
                continue;
            };
            let owner: String = owner.chars().take(10).collect();
            let key = format!(
                "0x{:08x}",
                u32::from_str_radix(key.trim_start_matches("0x"), 16)?
            );
            match (shm, *kind) {
                (true, "m") => out.push_str(&format!(
                    "{key} {id:<10} {owner:<10} {perms:<10} {bytes:<10} {:<10} {:<6} {:<6}\n",
                    0, " ", " "
                )),
                (false, "q") => out.push_str(&format!(
                    "{key} {id:<10} {owner:<10} {perms:<10} {bytes:<12} {:<12}\n",
                    0
                )),
                _ => {}
            }
        }
    }
    out.push('\n');
    print!("{out}");
    Ok(())
}
