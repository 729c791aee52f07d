//! Clients looping through the router, each keeping its session: a request fails when the
//! answer is not 200, and a session is lost when the member's count for it does not go on
//! from the last one (a new session was started instead).

use anyhow::Result;
use simkit::arg;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default, serde::Serialize)]
struct Summary {
    requests: u64,
    failures: u64,
    lost_sessions: u64,
    /// Edition → answers.
    editions: std::collections::BTreeMap<String, u64>,
    /// Answers from another edition that began after the first answer of the new edition
    /// had ended (an atomic rollout serves one consistent edition).
    old_after_new: u64,
    errors: Vec<String>,
}

struct Answer {
    start: Instant,
    end: Instant,
    edition: String,
    member: String,
}

pub fn run(args: &[String]) -> Result<()> {
    let url = args.get(1).cloned().unwrap_or_default();
    let clients: usize = arg(args, "--clients", "8").parse()?;
    let stop = std::path::PathBuf::from(arg(args, "--stop", "stop"));
    let out = std::path::PathBuf::from(arg(args, "--out", "traffic.json"));
    let new = arg(args, "--new", "2.0");
    let summary = Arc::new(Mutex::new(Summary::default()));
    let answers = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (url, stop, summary, answers) =
                (url.clone(), stop.clone(), summary.clone(), answers.clone());
            std::thread::spawn(move || client(&url, &stop, &summary, &answers))
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let mut s = std::mem::take(&mut *summary.lock().unwrap());
    let answers = answers.lock().unwrap();
    if let Some(first) = answers
        .iter()
        .filter(|a| a.edition == new)
        .min_by_key(|a| a.end)
    {
        let late: Vec<&Answer> = answers
            .iter()
            .filter(|a| a.edition != new && a.start > first.end)
            .collect();
        s.old_after_new = late.len() as u64;
        for a in late.iter().take(5) {
            s.errors.push(format!(
                "edition {} from {} {} ms after {} answered {new}",
                a.edition,
                a.member,
                (a.start - first.end).as_millis(),
                first.member
            ));
        }
    }
    simkit::write_atomic(&out, serde_json::to_string_pretty(&s)?.as_bytes())
}

fn client(
    url: &str,
    stop: &std::path::Path,
    summary: &Mutex<Summary>,
    answers: &Mutex<Vec<Answer>>,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(90)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut session: Option<(String, u64)> = None;
    while !stop.exists() {
        let start = Instant::now();
        let mut req = agent.get(format!("{url}/app/hit"));
        if !cookies.is_empty() {
            let c: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header("Cookie", c.join("; "));
        }
        let mut s = summary.lock().unwrap();
        s.requests += 1;
        drop(s);
        let resp = match req.call() {
            Ok(r) => r,
            Err(e) => {
                note(summary, format!("transport: {e}"));
                continue;
            }
        };
        let status = resp.status().as_u16();
        for h in resp.headers().get_all("set-cookie") {
            if let Some((k, v)) = h
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .and_then(|c| c.split_once('='))
            {
                cookies.retain(|(n, _)| n != k);
                cookies.push((k.trim().into(), v.trim().into()));
            }
        }
        let body = resp.into_body().read_to_string().unwrap_or_default();
        if status != 200 {
            note(summary, format!("{status}: {}", body.trim()));
            continue;
        }
        let field = |k: &str| {
            body.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap_or("")
                .to_string()
        };
        let (edition, id, count) = (
            field("edition="),
            field("session="),
            field("count=").parse::<u64>().unwrap_or(0),
        );
        let mut s = summary.lock().unwrap();
        *s.editions.entry(edition.clone()).or_default() += 1;
        if let Some((old_id, old_count)) = &session {
            if *old_id != id || count != old_count + 1 {
                s.lost_sessions += 1;
                if s.errors.len() < 20 {
                    s.errors.push(format!(
                        "session {old_id} at {old_count}, then {id} at {count}"
                    ));
                }
            }
        }
        drop(s);
        session = Some((id, count));
        let member = field("member=");
        answers.lock().unwrap().push(Answer {
            start,
            end: Instant::now(),
            edition,
            member,
        });
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn note(summary: &Mutex<Summary>, e: String) {
    let mut s = summary.lock().unwrap();
    s.failures += 1;
    if s.errors.len() < 20 {
        s.errors.push(e);
    }
    drop(s);
    std::thread::sleep(Duration::from_millis(50));
}
