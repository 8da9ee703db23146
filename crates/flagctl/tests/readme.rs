//! The README's walkthrough, run exactly as written against a real flagd: every `$ flagctl`
//! line is run and its output compared with the lines under it. Timestamps differ from run
//! to run and are compared as timestamps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use regex::Regex;
use support::Flagd;

/// The marker before each walkthrough's console block.
const BASICS: &str = "<!-- walkthrough: run as written";
const ENVIRONMENTS: &str = "<!-- walkthrough: environments";
/// The marker before a file a walkthrough reads: `<!-- walkthrough-file: NAME -->`.
const FILE: &str = "<!-- walkthrough-file: ";

/// One `$ flagctl …` line: its arguments, the output under it and the exit code an
/// `[exit N]` line after the output names (0 without one).
struct Step {
    args: Vec<String>,
    expected: String,
    code: i32,
}

/// The steps of the walkthrough after `marker`.
fn walkthrough(readme: &str, marker: &str) -> Vec<Step> {
    let block = fenced(readme, marker, "```console\n");
    let mut steps: Vec<Step> = Vec::new();
    for line in block.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            let words = split(command);
            assert_eq!(words[0], "flagctl", "the walkthrough runs flagctl only: {line}");
            steps.push(Step { args: words[1..].to_vec(), expected: String::new(), code: 0 });
        } else {
            let step = steps.last_mut().expect("output follows a command");
            match line.strip_prefix("[exit ").and_then(|code| code.strip_suffix(']')) {
                Some(code) => step.code = code.parse().expect("`[exit N]` names a number"),
                None => {
                    step.expected.push_str(line);
                    step.expected.push('\n');
                }
            }
        }
    }
    steps
}

/// The text of the first `fence` block after `marker`.
fn fenced<'r>(readme: &'r str, marker: &str, fence: &str) -> &'r str {
    let start = readme.find(marker).unwrap_or_else(|| panic!("the README has the marker {marker:?}"));
    let block = &readme[start..];
    let block = &block[block.find(fence).expect("a fenced block follows the marker") + fence.len()..];
    &block[..block.find("```").expect("the block ends")]
}

/// Every `walkthrough-file` of the README: (name, content).
fn files(readme: &str) -> Vec<(String, String)> {
    readme
        .match_indices(FILE)
        .map(|(at, _)| {
            let name = &readme[at + FILE.len()..];
            let name = name[..name.find(" -->").expect("the file marker ends")].to_owned();
            let content = fenced(&readme[at..], FILE, "```yaml\n").to_owned();
            (name, content)
        })
        .collect()
}

/// Runs `steps` against a new flagd, from a directory holding the README's files, and
/// compares each output with the README's (timestamps as timestamps).
fn run(readme: &str, steps: Vec<Step>) {
    let time = Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    let flagd = Flagd::start();
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files(readme) {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    for Step { args, expected, code } in steps {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = support::flagctl_in(Some(dir.path()), &flagd.address, &args, &[]);
        assert_eq!(
            run.code,
            code,
            "`flagctl {}` exited otherwise: {}{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        assert_eq!(
            time.replace_all(&run.stdout, "<time>"),
            time.replace_all(&expected, "<time>"),
            "`flagctl {}` printed something else than the README shows",
            args.join(" ")
        );
    }
}

/// Shell-like words: spaces separate, double quotes group.
fn split(command: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in command.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn the_readme_walkthrough_works_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let steps = walkthrough(&readme, BASICS);
    let commands: Vec<&str> = steps.iter().map(|step| step.args[0].as_str()).collect();
    for needed in ["set", "eval", "kill", "history", "rollback"] {
        assert!(commands.contains(&needed), "the walkthrough lost its `{needed}` step: {commands:?}");
    }
    run(&readme, steps);
}

#[test]
fn the_readme_environments_walkthrough_works_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let steps = walkthrough(&readme, ENVIRONMENTS);
    let commands: Vec<String> = steps.iter().map(|step| step.args.join(" ")).collect();
    for needed in ["env create staging", "diff staging production", "promote", "bookmark", "restore"] {
        assert!(
            commands.iter().any(|command| command.contains(needed)),
            "the walkthrough lost its `{needed}` step: {commands:?}"
        );
    }
    assert!(steps.iter().any(|step| step.code == 1), "the walkthrough shows a diff that differs");
    run(&readme, steps);
}

#[test]
fn quoted_words_stay_together() {
    assert_eq!(split(r#"kill chat --reason "incident 4711""#), ["kill", "chat", "--reason", "incident 4711"]);
}
