//! The pool of base URLs behind one endpoint: which URL the next attempt goes to.
//!
//! Requests are spread round-robin. A URL that gave a connection error, a timeout or a 5xx is
//! marked down for the cooldown and skipped while any other URL is up; when every URL is down,
//! the one whose cooldown ends first is used (a pool never refuses to try). A retry passes the
//! URL that just failed as `avoid`, so it goes elsewhere when another URL is up even if the
//! failure (408, 429, a cut body) did not mark the URL down. A success marks the URL up again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::limits::lock;

/// Base URLs with their health.
#[derive(Debug)]
pub(crate) struct Pool {
    urls: Vec<String>,
    cooldown: Duration,
    state: Mutex<PoolState>,
}

#[derive(Debug)]
struct PoolState {
    /// Where the round-robin scan starts next time.
    next: usize,
    /// For each URL: down until this instant (`None`: up).
    down_until: Vec<Option<Instant>>,
}

impl Pool {
    /// A pool over `urls` (at least one; trailing slashes removed), all up.
    pub(crate) fn new(urls: &[String], cooldown: Duration) -> Self {
        let urls: Vec<String> = urls
            .iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        assert!(!urls.is_empty(), "a pool needs at least one URL");
        let n = urls.len();
        Self {
            urls,
            cooldown,
            state: Mutex::new(PoolState {
                next: 0,
                down_until: vec![None; n],
            }),
        }
    }

    /// The base URLs, without trailing slashes.
    pub(crate) fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The index of the URL the next attempt should use (see the module doc).
    pub(crate) fn pick(&self, avoid: Option<usize>) -> usize {
        self.pick_at(avoid, Instant::now())
    }

    fn pick_at(&self, avoid: Option<usize>, now: Instant) -> usize {
        let mut s = lock(&self.state);
        let n = self.urls.len();
        let up = |s: &PoolState, i: usize| s.down_until[i].is_none_or(|t| t <= now);
        let chosen = (0..n)
            .map(|k| (s.next + k) % n)
            .find(|&i| up(&s, i) && Some(i) != avoid)
            .or(avoid.filter(|&i| i < n && up(&s, i)))
            .unwrap_or_else(|| {
                // Every URL is down: the one that comes back first.
                (0..n)
                    .min_by_key(|&i| s.down_until[i].unwrap_or(now))
                    .unwrap_or(0)
            });
        s.next = (chosen + 1) % n;
        chosen
    }

    /// Marks URL `i` down for the cooldown, from now.
    pub(crate) fn mark_down(&self, i: usize) {
        self.mark_down_at(i, Instant::now());
    }

    fn mark_down_at(&self, i: usize, now: Instant) {
        lock(&self.state).down_until[i] = Some(now + self.cooldown);
    }

    /// Marks URL `i` up (it just answered).
    pub(crate) fn mark_up(&self, i: usize) {
        lock(&self.state).down_until[i] = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Pool {
        let urls: Vec<String> = (0..n).map(|i| format!("http://h{i}/")).collect();
        Pool::new(&urls, Duration::from_secs(10))
    }

    #[test]
    fn round_robin_and_trailing_slash() {
        let p = pool(3);
        assert_eq!(p.urls()[0], "http://h0");
        let t = Instant::now();
        let picks: Vec<usize> = (0..6).map(|_| p.pick_at(None, t)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn down_urls_are_skipped_until_their_cooldown_ends() {
        let p = pool(3);
        let t = Instant::now();
        p.mark_down_at(1, t);
        let picks: Vec<usize> = (0..4).map(|_| p.pick_at(None, t)).collect();
        assert_eq!(picks, [0, 2, 0, 2]);
        let later = t + Duration::from_secs(11);
        let picks: Vec<usize> = (0..3).map(|_| p.pick_at(None, later)).collect();
        assert_eq!(picks, [0, 1, 2]);
    }

    #[test]
    fn retry_avoids_the_failed_url_when_another_is_up() {
        let p = pool(2);
        let t = Instant::now();
        assert_eq!(p.pick_at(None, t), 0);
        assert_eq!(p.pick_at(Some(1), t), 0);
        // Only the avoided one is up: use it.
        p.mark_down_at(0, t);
        assert_eq!(p.pick_at(Some(1), t), 1);
    }

    #[test]
    fn all_down_uses_the_one_back_first_and_success_restores() {
        let p = pool(3);
        let t = Instant::now();
        p.mark_down_at(2, t);
        p.mark_down_at(0, t + Duration::from_secs(1));
        p.mark_down_at(1, t + Duration::from_secs(2));
        assert_eq!(p.pick_at(None, t + Duration::from_secs(3)), 2);
        assert_eq!(p.pick_at(Some(2), t + Duration::from_secs(3)), 2);
        p.mark_up(1);
        assert_eq!(p.pick_at(None, t + Duration::from_secs(3)), 1);
    }
}
