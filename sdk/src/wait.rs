//! Waiting and polling with the host's clock (sleeps count against the step's budget).

use crate::adapter::cutover::plugin::clock;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    clock::now_ms()
}

/// Sleep for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    clock::sleep_ms(ms)
}

/// Call `check` every `interval_ms` until it returns `Some`, or `timeout_ms` has passed
/// (then the last note `check` gave is returned as the error).
pub fn poll<T>(
    timeout_ms: u64,
    interval_ms: u64,
    mut check: impl FnMut(u32) -> Result<T, String>,
) -> Result<T, String> {
    let start = now_ms();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match check(attempt) {
            Ok(v) => return Ok(v),
            Err(note) => {
                if now_ms().saturating_sub(start) + interval_ms > timeout_ms {
                    return Err(format!(
                        "gave up after {attempt} tries in {} ms: {note}",
                        now_ms() - start
                    ));
                }
            }
        }
        sleep_ms(interval_ms);
    }
}
