//! A generator of realistic engine data trees:
//!
//! ```text
//! data/dsrunner/exec/osgi/<execution-uuid>/.metadata          JSON with "artifactFile"
//! data/dsrunner/exec/osgi/<execution-uuid>/<Name>_OSGI_<v>.kar
//! data/dsrunner/exec/osgi/<execution-uuid>/lib/*.jar           (some tasks)
//! data/dsrunner/exec/osgi/<execution-uuid>/bin/run.sh          (some tasks, mode 750)
//! data/dsrunner/dsrunner.properties
//! data/cls/<TASKID>-<EXECUTION_ID>-state.dat                   JSON with "currentFilePath", mode 600
//! data/cls/<TASKID>-<EXECUTION_ID>-<date>-001.json.log         JSON lines, a few large ones
//! data/cls/archive/<month>/<...>.json.log.gz                   (some tasks)
//! ```
//!
//! Every fourth task was written by a Windows engine: its paths use the escaped-backslash
//! form (`\\data\\dsrunner\\...`) of the same installation root. Every sixth task keeps its
//! `.metadata` in `data/dsrunner/osgi/<uuid>/` instead, the layout of the seed's own example
//! (whose text says `exec/osgi`): its `artifactFile` still points into `exec/osgi`.

use crate::Rng;
use anyhow::Result;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const NAMES: &[(&str, &str)] = &[
    ("SimpleRecipientList", "ROUTE"),
    ("SimpleTimerRoute", "ROUTE"),
    ("OrderSync", "DATA_SERVICE"),
    ("CustomerLookup", "DATA_SERVICE"),
    ("InvoiceRouter", "ROUTE"),
    ("StockFeed", "DATA_SERVICE"),
];

fn mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Write `tasks` tasks into `root/data` (seeded, so two engines differ).
pub fn generate(root: &Path, tasks: usize, seed: u64) -> Result<()> {
    let root = std::fs::canonicalize(root)?;
    let mut rng = Rng::seeded(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xA5A5);
    let osgi = root.join("data/dsrunner/exec/osgi");
    let cls = root.join("data/cls");
    std::fs::create_dir_all(&osgi)?;
    std::fs::create_dir_all(cls.join("archive"))?;
    std::fs::write(
        root.join("data/dsrunner/dsrunner.properties"),
        "dsrunner.heartbeat.interval=30000\ndsrunner.exec.dir=exec\n",
    )?;
    let unix_root = root.display().to_string();
    let windows_root = unix_root.replace('/', "\\\\");
    for i in 0..tasks {
        let (name, kind) = NAMES[i % NAMES.len()];
        let task_id = rng.hex(24);
        let exec_id = rng.uuid();
        let stamp = format!(
            "2023{:02}{:02}{:06}",
            1 + i % 12,
            1 + i % 28,
            rng.word() % 1_000_000
        );
        let kar = format!("{name}_OSGI_0.1.{}.{stamp}.kar", i % 7);
        let dir = osgi.join(&exec_id);
        std::fs::create_dir_all(&dir)?;
        let windows = i % 4 == 3;
        let (prefix, sep) = if windows {
            (windows_root.as_str(), "\\\\")
        } else {
            (unix_root.as_str(), "/")
        };
        let artifact = [prefix, "data", "dsrunner", "exec", "osgi", &exec_id, &kar].join(sep);
        let kar_bytes: Vec<u8> = (0..2048 + (rng.word() % 8192) as usize)
            .map(|_| rng.word() as u8)
            .collect();
        std::fs::write(dir.join(&kar), kar_bytes)?;
        let meta_dir = if i % 6 == 5 {
            let d = root.join("data/dsrunner/osgi").join(rng.uuid());
            std::fs::create_dir_all(&d)?;
            d
        } else {
            dir.clone()
        };
        std::fs::write(
            meta_dir.join(".metadata"),
            format!(
                "{{\"taskId\":\"{task_id}\",\"executionId\":\"{exec_id}\",\"name\":\"{name}\",\"type\":\"{kind}\",\"artifactFile\":\"{artifact}\",\"artifactVersion\":\"0.1.{}.{stamp}\",\"deployedAt\":\"2023-05-10T14:00:{:02}Z\",\"keepRunning\":true}}\n",
                i % 7,
                i % 60
            ),
        )?;
        if i % 5 == 0 {
            std::fs::create_dir_all(dir.join("lib"))?;
            std::fs::write(dir.join("lib/commons-route-1.2.jar"), vec![0x50u8; 4096])?;
        }
        if i % 9 == 0 {
            std::fs::create_dir_all(dir.join("bin"))?;
            std::fs::write(dir.join("bin/run.sh"), "#!/bin/sh\nexec java -jar \"$@\"\n")?;
            mode(&dir.join("bin/run.sh"), 0o750)?;
        }
        let log_name = format!("{task_id}-{exec_id}-2023-05-10-14-001.json.log");
        let log_path = [prefix, "data", "cls", &log_name].join(sep);
        // A few large logs; most are small.
        let lines = if i % 50 == 7 { 16_000 } else { 20 + i % 40 };
        let mut log = String::with_capacity(lines * 130);
        for n in 0..lines {
            log.push_str(&format!(
                "{{\"ts\":\"2023-05-10T14:{:02}:{:02}.{:03}Z\",\"level\":\"INFO\",\"task\":\"{task_id}\",\"msg\":\"processed batch {n} of {name}\"}}\n",
                (n / 60) % 60,
                n % 60,
                n % 1000
            ));
        }
        std::fs::write(cls.join(&log_name), log)?;
        let state = cls.join(format!("{task_id}-{exec_id}-state.dat"));
        std::fs::write(
            &state,
            format!(
                "{{\"taskId\":\"{task_id}\",\"executionId\":\"{exec_id}\",\"currentFilePath\":\"{log_path}\",\"offset\":{},\"rotation\":1}}",
                lines * 120
            ),
        )?;
        mode(&state, 0o600)?;
        if i % 10 == 0 {
            let month = cls.join(format!("archive/2023-{:02}", 1 + i % 4));
            std::fs::create_dir_all(&month)?;
            let gz: Vec<u8> = (0..1024).map(|_| rng.word() as u8).collect();
            std::fs::write(
                month.join(format!("{task_id}-{exec_id}-2023-04-30-001.json.log.gz")),
                gz,
            )?;
        }
    }
    Ok(())
}
