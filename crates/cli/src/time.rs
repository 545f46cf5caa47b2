//! Timestamps for campaign names and tables (the calendar arithmetic lives in art-report).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn utc(secs: i64) -> String {
    art_report::render::utc_datetime(secs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(super::utc(1_795_865_266), "2026-11-28 11:27:46");
    }
}
