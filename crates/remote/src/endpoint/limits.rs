//! How hard one endpoint may be driven: the concurrency cap and the requests-per-minute limit.
//!
//! Both live in the [`Endpoint`](super::Endpoint) and are shared by every thread that uses it,
//! so the caps hold overall (several `map_concurrent` calls at once, or plain threads), not per
//! caller. The semaphore is held only while an attempt is in flight, never during a backoff
//! sleep, so a waiting retry does not block other requests. The rate limiter is a token bucket
//! taken before each attempt (retries count too: the server sees them as requests).

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Locks `m`, ignoring poisoning: the state guarded here stays consistent even if a holder
/// panicked (every critical section is a few arithmetic steps).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A counting semaphore (Mutex + Condvar) that also records the peak number of holders.
#[derive(Debug)]
pub(crate) struct Semaphore {
    cap: usize,
    state: Mutex<SemState>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct SemState {
    in_flight: usize,
    max_in_flight: usize,
}

/// One held slot of a [`Semaphore`]; released on drop.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    sem: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore with `cap` slots (at least one).
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            state: Mutex::new(SemState::default()),
            freed: Condvar::new(),
        }
    }

    /// Blocks until a slot is free and takes it.
    pub(crate) fn acquire(&self) -> Permit<'_> {
        let mut s = lock(&self.state);
        while s.in_flight >= self.cap {
            s = self.freed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        Permit { sem: self }
    }

    /// The most slots ever held at once.
    pub(crate) fn max_in_flight(&self) -> usize {
        lock(&self.state).max_in_flight
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.sem.state);
        s.in_flight -= 1;
        drop(s);
        self.sem.freed.notify_one();
    }
}

/// Requests-per-minute limit as a token bucket with reservations.
///
/// The bucket refills at `rpm / 60` tokens per second and holds at most
/// `burst = max(1, ceil(rpm / 60))` tokens (one second's worth), starting full. Each attempt
/// takes one token; when none is left the caller reserves the next one (the balance goes
/// negative) and sleeps until it is due, outside the lock. Callers are thus served in the
/// order they asked, and over any window of `t` seconds at most `burst + t * rpm / 60`
/// attempts start.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_sec: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A limiter allowing `rpm` requests per minute (at least 1).
    pub(crate) fn new(rpm: u32) -> Self {
        let per_sec = f64::from(rpm.max(1)) / 60.0;
        let burst = per_sec.ceil().max(1.0);
        Self {
            per_sec,
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    /// The bucket size (see the type's doc).
    #[cfg(test)]
    fn burst(&self) -> u32 {
        self.burst as u32
    }

    /// Takes a token, sleeping until one is due; returns how long it slept.
    pub(crate) fn acquire(&self) -> Duration {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        wait
    }

    /// Takes (or reserves) a token at `now`; returns how long until it is due.
    fn reserve(&self, now: Instant) -> Duration {
        let mut b = lock(&self.bucket);
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst) - 1.0;
        b.last = b.last.max(now);
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.per_sec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_one_second_of_tokens_at_least_one() {
        assert_eq!(RateLimiter::new(600).burst(), 10);
        assert_eq!(RateLimiter::new(90).burst(), 2);
        assert_eq!(RateLimiter::new(1).burst(), 1);
    }

    #[test]
    fn reservations_space_requests_at_the_refill_rate() {
        let r = RateLimiter::new(600); // 10 per second, burst 10
        let t0 = lock(&r.bucket).last;
        for _ in 0..10 {
            assert_eq!(r.reserve(t0), Duration::ZERO);
        }
        // The 11th..13th are due 0.1, 0.2, 0.3 s later.
        for k in 1..=3u32 {
            let w = r.reserve(t0).as_secs_f64();
            assert!((w - 0.1 * f64::from(k)).abs() < 1e-9, "{k}: {w}");
        }
        // A second later the debt (3 tokens) is repaid and 7 more are available.
        let later = t0 + Duration::from_secs(1);
        for _ in 0..7 {
            assert_eq!(r.reserve(later), Duration::ZERO);
        }
        assert!(r.reserve(later) > Duration::ZERO);
    }

    #[test]
    fn semaphore_caps_and_records_peak() {
        let s = Semaphore::new(2);
        let a = s.acquire();
        let b = s.acquire();
        assert_eq!(s.max_in_flight(), 2);
        drop(a);
        let c = s.acquire();
        drop((b, c));
        assert_eq!(s.max_in_flight(), 2);
    }
}
