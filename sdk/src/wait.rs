//! Waiting and polling with the WASI clocks (sleeps count against the step's budget).

use crate::{Error, Result};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sleep for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms))
}

/// Call `check` every `interval_ms` until it returns `Ok`, or `timeout_ms` has passed (then
/// the last note `check` gave is returned in the error).
pub fn poll<T>(
    timeout_ms: u64,
    interval_ms: u64,
    mut check: impl FnMut(u32) -> std::result::Result<T, String>,
) -> Result<T> {
    let start = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match check(attempt) {
            Ok(v) => return Ok(v),
            Err(note) => {
                let spent = start.elapsed().as_millis() as u64;
                if spent + interval_ms > timeout_ms {
                    return Err(Error::new(format!(
                        "gave up after {attempt} tries in {spent} ms: {note}"
                    )));
                }
            }
        }
        sleep_ms(interval_ms);
    }
}
