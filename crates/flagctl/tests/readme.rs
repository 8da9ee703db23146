//! The README's walkthrough, run exactly as written against a real flagd: every `$ flagctl`
//! line is run and its output compared with the lines under it. Timestamps differ from run
//! to run and are compared as timestamps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use regex::Regex;
use support::Flagd;

const MARKER: &str = "<!-- walkthrough:";

/// (command arguments, expected output) for each `$ flagctl …` line of the walkthrough.
fn walkthrough(readme: &str) -> Vec<(Vec<String>, String)> {
    let start = readme.find(MARKER).expect("the README has a walkthrough marker");
    let block = &readme[start..];
    let block = &block[block.find("```console\n").expect("a console block follows the marker") + 11..];
    let block = &block[..block.find("```").expect("the console block ends")];
    let mut steps: Vec<(Vec<String>, String)> = Vec::new();
    for line in block.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            let words = split(command);
            assert_eq!(words[0], "flagctl", "the walkthrough runs flagctl only: {line}");
            steps.push((words[1..].to_vec(), String::new()));
        } else {
            let (_, expected) = steps.last_mut().expect("output follows a command");
            expected.push_str(line);
            expected.push('\n');
        }
    }
    steps
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
    let steps = walkthrough(&readme);
    let commands: Vec<&str> = steps.iter().map(|(args, _)| args[0].as_str()).collect();
    for needed in ["set", "eval", "kill", "history", "rollback"] {
        assert!(commands.contains(&needed), "the walkthrough lost its `{needed}` step: {commands:?}");
    }
    let time = Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").unwrap();
    let flagd = Flagd::start();
    for (args, expected) in steps {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = flagd.flagctl(&args).ok();
        assert_eq!(
            time.replace_all(&output, "<time>"),
            time.replace_all(&expected, "<time>"),
            "`flagctl {}` printed something else than the README shows",
            args.join(" ")
        );
    }
}

#[test]
fn quoted_words_stay_together() {
    assert_eq!(split(r#"kill chat --reason "incident 4711""#), ["kill", "chat", "--reason", "incident 4711"]);
}
