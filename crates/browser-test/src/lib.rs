//! A real headless Chromium (or Firefox) for end-to-end tests of the web console, driven over
//! WebDriver (Debian's chromedriver, or geckodriver, and the fantoccini client).
//!
//! A crate of its own so the console's browser tests in `flagd` and the console's figures in
//! `benches` drive the browser the same way. Missing Chromium skips with one clear line,
//! unless `CI_REQUIRES_BROWSER=1` (CI sets it) makes that a failure.
//!
//! # Layout
//! - `browser` — starting chromedriver and Chromium (and ending every process they start),
//!   and the bounded helpers tests use: fill, click, wait for text, screenshots, cookies,
//!   dialogs, timings.
//!
//! ```no_run
//! # async fn example() {
//! let Some(browser) = browser_test::Browser::start("target/tmp/screenshots").await else { return };
//! browser.goto("http://127.0.0.1:8014/ui/login").await;
//! browser.screenshot("sign-in").await;
//! # }
//! ```
// Test support: a failed step panics with what failed, which is how a test reports it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![forbid(unsafe_code)]

mod browser;

pub use browser::{Browser, CHROMIUM_ARGS, CookieInfo, DEFAULT_TIMEOUT};
