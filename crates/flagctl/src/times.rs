//! Times as the command line gives them — RFC 3339 (`2026-12-01T10:00:00Z`) or a duration
//! ago (`1h`) — as milliseconds since the Unix epoch, the form requests carry. `diff`'s
//! `ENV@TIME` / `ENV@-1h` and `log --since/--until` read them the same way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `at` in milliseconds since the Unix epoch; `None` before it (or past what an `i64` holds).
pub(crate) fn unix_ms(at: SystemTime) -> Option<i64> {
    i64::try_from(at.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// An RFC 3339 time (`2026-12-01T10:00:00Z`, or without the zone as UTC).
pub(crate) fn rfc3339_ms(text: &str) -> Option<i64> {
    unix_ms(humantime::parse_rfc3339_weak(text).ok()?)
}

/// A duration (`1h`, `30m`, `2h 5m`) before now.
pub(crate) fn ago_ms(duration: &str) -> Option<i64> {
    let ago: Duration = humantime::parse_duration(duration).ok()?;
    unix_ms(SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_rfc3339_or_a_duration_ago() {
        assert_eq!(rfc3339_ms("2025-12-01T10:00:00Z"), Some(1_764_583_200_000));
        assert_eq!(rfc3339_ms("2025-13-01T10:00:00Z"), None);
        let now = unix_ms(SystemTime::now()).unwrap();
        let hour_ago = ago_ms("1h").unwrap();
        assert!((now - hour_ago - 3_600_000).abs() < 60_000, "{now} {hour_ago}");
        assert_eq!(ago_ms("soon"), None);
    }
}
