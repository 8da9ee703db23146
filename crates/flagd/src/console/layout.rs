//! The page shell every console page shares, and the small pieces pages are built from.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use maud::{DOCTYPE, Markup, html};

use super::assets;
use super::session::SignedIn;

/// A whole page: head, navigation (with who is signed in and sign-out), then `body`.
pub(crate) fn shell(title: &str, signed: Option<&SignedIn>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(signed) = signed { meta name="csrf-token" content=(signed.csrf); }
                title { (title) " · flagd" }
                link rel="stylesheet" href=(assets::STYLESHEET_PATH);
                script src=(assets::SCRIPT_PATH) defer {}
            }
            body {
                header.top {
                    a.brand href="/ui/flags" { "flagd" }
                    @if let Some(signed) = signed {
                        nav {
                            a href="/ui/flags" { "Flags" }
                            a href="/ui/audit" { "Audit log" }
                            a href="/ui/sdks" { "SDKs" }
                            a href="/ui/environments" { "Environments" }
                        }
                        span.who {
                            span #signed-in-as { (signed.name) }
                            @if let Some(role) = signed.role() { " (" (role.name()) ")" }
                            form.inline method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(signed.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf_field(signed: &SignedIn) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.csrf); }
}

/// Milliseconds since the epoch as `2026-12-03 14:05:09 UTC`.
pub(crate) fn time_text(timestamp_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(timestamp_ms).unwrap_or(0));
    let text = humantime::format_rfc3339_seconds(at).to_string();
    format!("{} UTC", text.trim_end_matches('Z').replacen('T', " ", 1))
}

/// How long ago, roughly: `42 s ago`, `3 min ago`, `5 h ago`, `2 d ago`.
pub(crate) fn ago(timestamp_ms: i64) -> String {
    let secs = (now_ms() - timestamp_ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86400),
    }
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(time_text(1_764_590_400_000), "2025-12-01 12:00:00 UTC");
        assert_eq!(ago(now_ms() - 5_000), "5 s ago");
        assert_eq!(ago(now_ms() - 3 * 3_600_000), "3 h ago");
    }
}
