//! Running a program a plugin asked for (already allowed by the authority): its own process
//! group, so a Ctrl-C meant for Cutover does not reach it and a timeout or an abort kills
//! everything it started; output captured up to a limit, the middle left out beyond it.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// What a program did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// None when killed (by a signal or the timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

/// How to run it.
pub struct Launch<'a> {
    pub real: &'a std::path::Path,
    pub arg0: &'a str,
    pub args: &'a [String],
    pub env: Vec<(String, String)>,
    pub cwd: std::path::PathBuf,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Bytes kept per output stream.
    pub keep: usize,
}

/// Kills the process group when dropped before the program finished (a timeout, or the step
/// was interrupted). A program that finished keeps what it started running: `bin/start`
/// scripts leave their servers behind on purpose.
struct GroupGuard(Option<rustix::process::Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Read a stream to its end, keeping the first and the last `keep / 2` bytes.
async fn capture<R: AsyncRead + Unpin>(mut r: R, keep: usize, name: &str) -> String {
    let half = (keep / 2).max(1);
    let (mut head, mut tail) = (Vec::new(), std::collections::VecDeque::new());
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n as u64;
        let mut chunk = &buf[..n];
        if head.len() < half {
            let take = chunk.len().min(half - head.len());
            head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
        tail.extend(chunk);
        while tail.len() > half {
            let extra = tail.len() - half;
            tail.drain(..extra);
        }
    }
    let kept = head.len() + tail.len();
    let mut out = String::from_utf8_lossy(&head).into_owned();
    if total > kept as u64 {
        out.push_str(&format!(
            "\n[… {} bytes of {name} left out; [limits] exec-output keeps {keep} bytes]\n",
            total - kept as u64
        ));
    }
    out.push_str(&String::from_utf8_lossy(tail.make_contiguous()));
    out
}

/// Run the program to completion or its timeout.
pub async fn run(l: Launch<'_>) -> std::io::Result<Finished> {
    let mut c = tokio::process::Command::new(l.real);
    c.arg0(l.arg0)
        .args(l.args)
        .env_clear()
        .envs(l.env)
        .current_dir(&l.cwd)
        .process_group(0)
        .stdin(if l.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = c.spawn()?;
    let mut group = GroupGuard(
        child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32)),
    );
    let stdin = child.stdin.take();
    let input = l.stdin;
    let feed = async move {
        if let (Some(mut s), Some(input)) = (stdin, input) {
            let _ = s.write_all(&input).await;
        }
    };
    let out = capture(child.stdout.take().expect("piped"), l.keep, "stdout");
    let err = capture(child.stderr.take().expect("piped"), l.keep, "stderr");
    let all = async {
        let (_, stdout, stderr, status) = tokio::join!(feed, out, err, child.wait());
        (stdout, stderr, status)
    };
    match tokio::time::timeout(l.timeout, all).await {
        Ok((stdout, stderr, status)) => {
            group.0 = None;
            Ok(Finished {
                code: status?.code(),
                stdout,
                stderr,
                timed_out: false,
            })
        }
        Err(_) => Ok(Finished {
            code: None,
            stdout: String::new(),
            stderr: format!(
                "killed after {:?}, with every process it started",
                l.timeout
            ),
            timed_out: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch<'a>(args: &'a [String], keep: usize, timeout: Duration) -> Launch<'a> {
        Launch {
            real: std::path::Path::new("/bin/sh"),
            arg0: "sh",
            args,
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: "/".into(),
            stdin: None,
            timeout,
            keep,
        }
    }

    #[tokio::test]
    async fn output_beyond_the_limit_is_left_out_and_reported() {
        let args = vec![
            "-c".into(),
            "head -c 5000000 /dev/zero | tr '\\0' a; echo END".into(),
        ];
        let f = run(launch(&args, 1 << 16, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(f.code, Some(0));
        assert!(f.stdout.len() < (1 << 16) + 200, "{}", f.stdout.len());
        assert!(f
            .stdout
            .contains("bytes of stdout left out; [limits] exec-output"));
        assert!(f.stdout.trim_end().ends_with("END"));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let marker = format!("{}", 1000 + std::process::id() % 1000);
        let args = vec![
            "-c".into(),
            format!("sleep 7{marker} & sleep 7{marker}; wait"),
        ];
        let f = run(launch(&args, 1024, Duration::from_millis(300)))
            .await
            .unwrap();
        assert!(f.timed_out);
        std::thread::sleep(Duration::from_millis(200));
        let left = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .filter(|c| String::from_utf8_lossy(c).contains(&format!("7{marker}")))
            .count();
        assert_eq!(left, 0);
    }
}
