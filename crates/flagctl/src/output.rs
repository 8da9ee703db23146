//! Where a command's answer goes: text for people or JSON for programs, on stdout.

use serde::Serialize;

/// Text for people or JSON for programs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    /// Prints `text()` or, with `--json`, `value` as one JSON document.
    pub(crate) fn print<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
        if self.json { line(&serde_json::to_string_pretty(value)?) } else { line(&text()) }
    }
}

/// Writes `text` and a newline to stdout. Unlike `println!`, a closed stdout is an error the
/// caller sees (and `main` ends quietly on), not a panic.
pub(crate) fn line(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()?;
    Ok(())
}
