//! The retry policy: which statuses are retried, and how long to wait before each retry.
//!
//! Kept apart from the request loop so the rules can be read (and unit-tested) in one place.
//! Waits use exponential backoff with full jitter, raised to what the server asked for in
//! `Retry-After` (delta-seconds or an HTTP-date) or `retry-after-ms` (sent by OpenAI-style
//! APIs). A server's request is honoured above `backoff_max_ms`, up to [`RETRY_AFTER_CAP`].

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` honoured; longer requests are cut to this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(600);

/// Whether a reply with this status is retried: 408, 429 and every 5xx. Everything else
/// (2xx, 3xx that were not followed, and the other 4xx) is handed to the caller.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// The wait before retry `n` (0-based): a uniform draw from
/// `0..=min(max_ms, initial_ms * 2^n)`, but at least `retry_after` (capped at
/// [`RETRY_AFTER_CAP`]).
pub fn backoff(n: u32, initial_ms: u64, max_ms: u64, retry_after: Option<Duration>) -> Duration {
    let ceiling = if n >= 63 {
        u64::MAX
    } else {
        initial_ms.saturating_mul(1u64 << n)
    }
    .min(max_ms);
    let jitter = Duration::from_millis(fastrand::u64(0..=ceiling));
    match retry_after {
        Some(ra) => jitter.max(ra.min(RETRY_AFTER_CAP)),
        None => jitter,
    }
}

/// The wait a server asks for, from the values of its `retry-after-ms` and `Retry-After`
/// headers (the first that parses wins). `now` is the clock an HTTP-date is measured from; a
/// date in the past means no wait.
pub fn server_wait(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    let from_ms = retry_after_ms
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|ms| seconds(ms / 1000.0));
    from_ms.or_else(|| retry_after.and_then(|v| parse_retry_after(v, now)))
}

/// Parses a `Retry-After` value: delta-seconds (fractions accepted) or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return seconds(secs);
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `secs` as a duration when it is a finite, non-negative number (huge values saturate).
fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 201, 204, 301, 400, 401, 403, 404, 409, 413, 422, 451] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn backoff_stays_within_the_exponential_ceiling() {
        for n in 0..8u32 {
            let ceiling = (10u64 << n).min(200);
            let mut top = Duration::ZERO;
            for _ in 0..200 {
                let d = backoff(n, 10, 200, None);
                assert!(d <= Duration::from_millis(ceiling), "n={n}: {d:?}");
                top = top.max(d);
            }
            // Full jitter reaches well into the range.
            assert!(top >= Duration::from_millis(ceiling / 2), "n={n}: {top:?}");
        }
        assert!(backoff(200, 10, 200, None) <= Duration::from_millis(200));
        assert!(backoff(3, u64::MAX, u64::MAX, None) <= Duration::MAX);
    }

    #[test]
    fn retry_after_raises_the_wait_past_backoff_max_up_to_the_cap() {
        let d = backoff(0, 5, 20, Some(Duration::from_secs(3)));
        assert_eq!(d, Duration::from_secs(3));
        let d = backoff(0, 5, 20, Some(Duration::from_secs(86_400)));
        assert_eq!(d, RETRY_AFTER_CAP);
    }

    #[test]
    fn parses_delta_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        let in_90s = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&in_90s, now),
            Some(Duration::from_secs(90))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        let now = SystemTime::now();
        assert_eq!(
            server_wait(Some("250"), Some("3"), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            server_wait(Some("x"), Some("3"), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(server_wait(None, None, now), None);
    }
}
