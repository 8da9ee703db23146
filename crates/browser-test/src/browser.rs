//! The browser and its helpers. Every helper panics with a message saying what failed, and
//! every wait is bounded (5 s unless told otherwise).

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long every helper waits unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);
const SKIP: &str = "skipped: no Chromium/ChromeDriver found (install Debian's chromium and chromium-driver)";
const SKIP_FIREFOX: &str =
    "skipped: no Firefox/geckodriver found (install Debian's firefox-esr and `cargo install geckodriver`)";

/// Without these Chromium tries to reach Google (there is no network) or fails as root.
#[rustfmt::skip]
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
];

/// A cookie's value and flags as the browser stored them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieInfo {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Whether scripts cannot read it.
    pub http_only: bool,
    /// Whether it is sent only over TLS.
    pub secure: bool,
    /// "Strict", "Lax" or "None".
    pub same_site: Option<String>,
    /// The path it is sent for.
    pub path: Option<String>,
}

/// One WebDriver session in its own headless browser; dropping it ends the session and kills
/// the WebDriver server, the browser and (Chromium's) crash handlers, waiting (≤ 3 s) until
/// they are gone.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    /// Held for its `Drop`: ends the WebDriver server and the browser with it.
    _driver: Driver,
    /// Where [`Browser::screenshot`] saves.
    screenshots: PathBuf,
}

#[derive(Debug)]
struct Driver {
    child: Child,
    port: u16,
    dir: PathBuf,
    session: Option<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(id) = &self.session {
            // Best effort: the driver quits its browser on DELETE /session/{id}.
            let _ = http(self.port, "DELETE", &format!("/session/{id}"), Duration::from_secs(5));
        }
        // Chromium stays in chromedriver's process group, but its chrome_crashpad_handlers setsid()
        // out of it; they name our XDG_CONFIG_HOME in their command line, so find them by that.
        let pgid = self.child.id();
        let pids = related_pids(pgid, &self.dir);
        let targets = pids.iter().map(u32::to_string).chain([format!("-{pgid}")]);
        // The shell's own kill: no procps needed. It signals the rest even if one pid is gone.
        let mut kill = Command::new("sh");
        let kill = kill.args(["-c", "kill -KILL \"$@\"", "sh"]).args(targets).stderr(Stdio::null()).status();
        if kill.is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // Orphans stay zombies until init reaps them (~2 s on this machine's init): wait for that,
        // so that `pgrep chromium` finds nothing once a test is over.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && pids.iter().any(|pid| Path::new(&format!("/proc/{pid}")).exists())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Which browser, and how its WebDriver server is started and its session asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// Debian's Chromium, through chromedriver.
    Chromium,
    /// Firefox (ESR), through geckodriver.
    Firefox,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "Chromium",
            Engine::Firefox => "Firefox",
        }
    }

    /// The WebDriver server and the browser, if both are here.
    fn binaries(self) -> Option<(PathBuf, PathBuf)> {
        match self {
            Engine::Chromium => Some((
                find_binary("CHROMEDRIVER", "/usr/bin/chromedriver", &["chromedriver"])?,
                find_binary("CHROMIUM", "/usr/bin/chromium", &["chromium", "google-chrome"])?,
            )),
            Engine::Firefox => Some((
                find_binary("GECKODRIVER", "/usr/bin/geckodriver", &["geckodriver"])?,
                find_binary("FIREFOX", "/usr/bin/firefox-esr", &["firefox-esr", "firefox"])?,
            )),
        }
    }

    fn driver_args(self, port: u16, log: &Path) -> Vec<String> {
        match self {
            Engine::Chromium => vec![format!("--port={port}"), format!("--log-path={}", log.display())],
            Engine::Firefox => vec!["--host".into(), "127.0.0.1".into(), "--port".into(), port.to_string()],
        }
    }

    fn capabilities(self, browser: &Path, profile: &Path) -> Value {
        let timeouts = json!({ "script": 5000, "pageLoad": 10000, "implicit": 0 });
        match self {
            Engine::Chromium => {
                let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
                args.push(format!("--user-data-dir={}", profile.display()));
                json!({ "browserName": "chrome", "goog:chromeOptions": { "binary": browser, "args": args }, "timeouts": timeouts })
            }
            // Without these prefs Firefox spends its first seconds trying to reach Mozilla
            // (updates, telemetry, safe browsing, captive portals): there is no network.
            Engine::Firefox => json!({
                "browserName": "firefox",
                "moz:firefoxOptions": { "binary": browser, "args": ["-headless"], "prefs": FIREFOX_PREFS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>() },
                "timeouts": timeouts,
            }),
        }
    }
}

/// Firefox preferences that keep it off the network and quiet.
const FIREFOX_PREFS: &[(&str, bool)] = &[
    ("app.update.disabledForTesting", true),
    ("browser.shell.checkDefaultBrowser", false),
    ("browser.safebrowsing.malware.enabled", false),
    ("browser.safebrowsing.phishing.enabled", false),
    ("datareporting.policy.dataSubmissionEnabled", false),
    ("extensions.update.enabled", false),
    ("network.captive-portal-service.enabled", false),
    ("network.connectivity-service.enabled", false),
    ("toolkit.telemetry.enabled", false),
];

impl Browser {
    /// Starts chromedriver + headless Chromium (`$CHROMEDRIVER`/`$CHROMIUM`, else /usr/bin, else
    /// `PATH`). `None`, after one line on stderr, when either is missing — a panic instead when
    /// `CI_REQUIRES_BROWSER=1`.
    pub async fn start(screenshots: impl Into<PathBuf>) -> Option<Browser> {
        Self::start_engine(Engine::Chromium, screenshots.into()).await
    }

    /// As [`Browser::start`], with geckodriver + headless Firefox (`$GECKODRIVER`/`$FIREFOX`,
    /// else /usr/bin/geckodriver and /usr/bin/firefox-esr, else `PATH`).
    pub async fn start_firefox(screenshots: impl Into<PathBuf>) -> Option<Browser> {
        Self::start_engine(Engine::Firefox, screenshots.into()).await
    }

    async fn start_engine(engine: Engine, screenshots: PathBuf) -> Option<Browser> {
        let Some((driver, browser)) = engine.binaries() else {
            let missing = match engine {
                Engine::Chromium => SKIP,
                Engine::Firefox => SKIP_FIREFOX,
            };
            if std::env::var("CI_REQUIRES_BROWSER").is_ok_and(|v| v == "1") {
                panic!("CI_REQUIRES_BROWSER=1 but {}", missing.trim_start_matches("skipped: "));
            }
            // Once per test binary, and past libtest's capture (it only captures the print macros).
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| drop(writeln!(std::io::stderr(), "{missing}")));
            return None;
        };
        Some(Self::launch(engine, &driver, &browser, screenshots).await)
    }

    async fn launch(engine: Engine, driver_bin: &Path, browser: &Path, screenshots: PathBuf) -> Browser {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("console-browser-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).expect("creating the browser's profile tempdir");
        let log = dir.join("webdriver.log");
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("finding a free loopback port")
            .port();
        let log_file = std::fs::File::create(&log).expect("creating the WebDriver log");
        let child = Command::new(driver_bin)
            .args(engine.driver_args(port, &log))
            .env("XDG_CONFIG_HOME", dir.join("config")) // crash reports would go to ~/.config
            .env("XDG_CACHE_HOME", dir.join("cache"))
            // geckodriver makes Firefox's profile under the temp dir: ours, removed at the end.
            .env("TMPDIR", &dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_or_else(|_| Stdio::null(), Stdio::from))
            .stderr(Stdio::from(log_file))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", driver_bin.display()));
        let mut driver = Driver { child, port, dir, session: None };

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = http(port, "GET", "/status", Duration::from_secs(1));
            if status.is_some_and(|body| body.replace(char::is_whitespace, "").contains("\"ready\":true")) {
                break;
            }
            if let Ok(Some(code)) = driver.child.try_wait() {
                panic!("{} exited early ({code}); log: {}", driver_bin.display(), log.display());
            }
            assert!(Instant::now() < deadline, "{} /status not ready after 10 s", driver_bin.display());
            tokio::time::sleep(POLL).await;
        }

        let caps = engine.capabilities(browser, &profile);
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps.as_object().cloned().expect("capabilities are an object"));
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            builder.connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .unwrap_or_else(|_| panic!("no {} session after 30 s; log: {}", engine.name(), log.display()))
        .unwrap_or_else(|e| panic!("opening a WebDriver session: {e}; log: {}", log.display()));
        driver.session = client.session_id().await.expect("reading the WebDriver session id");
        // New headless mode draws window chrome (1280x900 gives a 1280x757 viewport): size the
        // window so that the viewport, which layout and screenshots see, is 1280x900.
        let chrome = client.execute("return [outerWidth - innerWidth, outerHeight - innerHeight]", vec![]);
        let chrome = chrome.await.expect("measuring the window chrome");
        let extra = |i: usize| chrome[i].as_u64().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        client.set_window_size(1280 + extra(0), 900 + extra(1)).await.expect("resizing the window");
        Browser { client, _driver: driver, screenshots }
    }

    /// The fantoccini client, for anything not wrapped here.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Navigates and waits for the load event (WebDriver page-load timeout: 10 s).
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The page's address now.
    pub async fn current_url(&self) -> String {
        self.client.current_url().await.expect("reading the current URL").to_string()
    }

    async fn find(&self, css: &str) -> Element {
        let find = move || async move { self.client.find(Locator::Css(css)).await.ok() };
        poll(DEFAULT_TIMEOUT, find, || format!("no element matches `{css}`")).await
    }

    /// Clears the field matching `css` (waiting up to 5 s for it) and types `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear().await.unwrap_or_else(|e| panic!("clearing `{css}`: {e}"));
        el.send_keys(text).await.unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
    }

    /// Clicks the element matching `css` (waiting up to 5 s for it).
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    }

    /// The rendered text of the element matching `css` (waiting up to 5 s for it).
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_else(|e| panic!("reading the text of `{css}`: {e}"))
    }

    /// Polls until the text of `css` contains `needle` (a live update, no reload); returns it.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let last = &std::sync::Mutex::new(None);
        let attempt = move || async move {
            let text = self.client.find(Locator::Css(css)).await.ok()?.text().await.ok()?;
            if text.contains(needle) {
                return Some(text);
            }
            *last.lock().ok()? = Some(text);
            None
        };
        let seen = || last.lock().ok().and_then(|text| text.clone());
        let what = || format!("`{css}` does not contain {needle:?} (last text: {:?})", seen());
        poll(timeout, attempt, what).await
    }

    /// Whether an element matches `css` right now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        !self.client.find_all(Locator::Css(css)).await.expect("querying the DOM").is_empty()
    }

    /// Runs `js` as a function body (`return` a value); a returned Promise is awaited (≤ 5 s).
    pub async fn execute(&self, js: &str) -> Value {
        self.execute_with(js, Vec::new()).await
    }

    /// Like [`Browser::execute`], with `arguments[i]` bound to `args[i]`.
    pub async fn execute_with(&self, js: &str, args: Vec<Value>) -> Value {
        self.client.execute(js, args).await.unwrap_or_else(|e| panic!("running script {js:?}: {e}"))
    }

    /// Saves a PNG of the viewport as `<name>.png` in the folder given at start.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = &self.screenshots;
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let png = self.client.screenshot().await.expect("taking a screenshot");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// All cookies for the current page, HttpOnly ones included, with their flags.
    pub async fn cookies(&self) -> Vec<CookieInfo> {
        let all = self.client.get_all_cookies().await.expect("reading cookies over WebDriver");
        let info = |c: &fantoccini::cookies::Cookie<'_>| CookieInfo {
            name: c.name().to_string(),
            value: c.value().to_string(),
            http_only: c.http_only().unwrap_or(false),
            secure: c.secure().unwrap_or(false),
            same_site: c.same_site().map(|s| s.to_string()),
            path: c.path().map(str::to_string),
        };
        all.iter().map(info).collect()
    }

    /// The cookie called `name`, if the current page has one.
    pub async fn cookie(&self, name: &str) -> Option<CookieInfo> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    /// Waits (≤ 5 s) for an alert or `confirm()` dialog, presses OK and returns its message.
    pub async fn accept_alert(&self) -> String {
        let text = self.alert_text().await;
        self.client.accept_alert().await.expect("accepting the dialog");
        text
    }

    /// Waits (≤ 5 s) for an alert or `confirm()` dialog, presses Cancel and returns its message.
    pub async fn dismiss_alert(&self) -> String {
        let text = self.alert_text().await;
        self.client.dismiss_alert().await.expect("dismissing the dialog");
        text
    }

    async fn alert_text(&self) -> String {
        let attempt = move || async move { self.client.get_alert_text().await.ok() };
        poll(DEFAULT_TIMEOUT, attempt, || "no alert/confirm dialog open".to_string()).await
    }

    /// Milliseconds from navigation start to the first contentful paint, else to the end of
    /// DOMContentLoaded / load; waits (≤ 5 s) for a positive value.
    pub async fn first_render_ms(&self) -> f64 {
        const JS: &str = "const p = performance.getEntriesByName('first-contentful-paint')[0];
            if (p && p.startTime > 0) return p.startTime;
            const n = performance.getEntriesByType('navigation')[0];
            return n ? (n.domContentLoadedEventEnd || n.loadEventEnd || 0) : 0;";
        let attempt = move || async move { self.execute(JS).await.as_f64().filter(|ms| *ms > 0.0) };
        poll(DEFAULT_TIMEOUT, attempt, || "no paint or navigation timing".to_string()).await
    }

    /// POSTs `fields` form-encoded to `path` from inside the page, with its cookies but without
    /// its CSRF token (a forged request); returns the HTTP status (after following redirects).
    pub async fn post_form_without_csrf(&self, path: &str, fields: &[(&str, &str)]) -> u16 {
        const JS: &str = "return fetch(arguments[0], { method: 'POST', credentials: 'same-origin',
            body: new URLSearchParams(arguments[1]) }).then(r => r.status);";
        let fields: Value = fields.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let status = self.execute_with(JS, vec![json!(path), fields]).await;
        status.as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or_else(|| panic!("POST {path}: {status}"))
    }
}

/// Retries `attempt` every 50 ms until it gives `Some`; after `timeout`, panics with `what()`.
async fn poll<T, F: Future<Output = Option<T>>>(
    timeout: Duration,
    mut attempt: impl FnMut() -> F,
    what: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("{} after waiting {timeout:?}", what());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `$var` if set (it must be a file), else `default`, else the first of `names` on `PATH`.
fn find_binary(var: &str, default: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).map(PathBuf::from) {
        assert!(path.is_file(), "{var}={} is not a file", path.display());
        return Some(path);
    }
    if Path::new(default).is_file() {
        return Some(default.into());
    }
    let dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    names.iter().flat_map(|name| dirs.iter().map(move |d| d.join(name))).find(|p| p.is_file())
}

/// Processes (zombies included) in group `pgid`, or whose command line mentions `dir`.
fn related_pids(pgid: u32, dir: &Path) -> Vec<u32> {
    let dir = format!("{}/", dir.display()); // the slash keeps ...-1 from matching ...-10
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    let pids = entries.filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok());
    let related = |pid: &u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // "pid (comm) state ppid pgrp ..."; comm may hold spaces, so split after the last ')'.
        let group = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        group == Some(pgid) || String::from_utf8_lossy(&cmdline).contains(&dir)
    };
    pids.filter(related).collect()
}

/// A blocking HTTP/1.1 request to chromedriver: the raw response, or `None` on any error.
fn http(port: u16, method: &str, path: &str, timeout: Duration) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    // chromedriver keeps the connection open (even with `Connection: close`): stop at Content-Length.
    let (mut response, mut buf) = (Vec::new(), [0u8; 4096]);
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response);
        let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
        let length = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
        });
        if length.is_none_or(|len| body.len() >= len) {
            break;
        }
    }
    (!response.is_empty()).then(|| String::from_utf8_lossy(&response).into_owned())
}
