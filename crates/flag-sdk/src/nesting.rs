//! The nesting limit of an offline flags file, checked before it is parsed.
//!
//! serde_yaml_ng (libyaml) takes time quadratic in a document's depth before its recursion
//! limit refuses it (12 s for 40,000 levels). yaml-rust2's pull parser is read first instead,
//! and stops at the first node past [`MAX_DEPTH`], so any file is refused in time linear in
//! its size. JSON files are read the same way (JSON is YAML), for the same message. flagctl
//! applies the same limit to the files it applies, with the same wording.

use yaml_rust2::parser::{Event, Parser};

/// How deep a flag file may nest, counting every mapping and sequence from the top (the flag
/// model needs 8; the rest is for JSON variant values).
pub(crate) const MAX_DEPTH: usize = 64;

/// How many levels of the path a refusal shows: down to where a free-form value starts
/// (`flags[0].variants[0].value`); a path of 64 levels would be unreadable.
const SHOWN_DEPTH: usize = 6;

/// One open mapping (expecting a key, or the value of `key`) or sequence (at item `index`).
#[derive(Debug)]
enum Frame {
    Map { path: String, line: usize, key: Option<(String, usize)> },
    Seq { path: String, line: usize, index: usize },
}

/// `Err((field, line))` when `text` nests deeper than [`MAX_DEPTH`]. A document that does
/// not parse is left to serde, which reports it.
pub(crate) fn check(text: &str) -> Result<(), (String, usize)> {
    match walk(text) {
        Ok(()) => Ok(()),
        Err(Deep::At(found)) => Err(found),
        // A flow document (JSON) gives no events until the scanner's look-ahead ends, so the
        // path is not known yet: walk the part read so far, whose end stops the look-ahead.
        // It is no longer than the file, so the check stays linear.
        Err(Deep::Flow { index, fallback }) => {
            let end = text.char_indices().nth(index).map_or(text.len(), |(at, _)| at);
            match walk(&text[..end]) {
                Err(Deep::At(found)) => Err(found),
                _ => Err(fallback),
            }
        }
    }
}

/// Why a walk stopped early.
enum Deep {
    /// At this field and line.
    At((String, usize)),
    /// yaml-rust2 ran out of flow levels at char `index`, while looking ahead.
    Flow { index: usize, fallback: (String, usize) },
}

fn walk(text: &str) -> Result<(), Deep> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            // yaml-rust2 refuses a 256th flow level while looking ahead, before the events of
            // the levels past ours arrive: that is too deep (see `check`).
            Err(error) if error.info() == "recursion limit exceeded" => {
                let fallback = too_deep(&stack, error.marker().line());
                return Err(Deep::Flow { index: error.marker().index(), fallback });
            }
            Err(_) => return Ok(()),
        };
        match event {
            Event::StreamEnd => return Ok(()),
            Event::Scalar(text, ..) => match stack.last_mut() {
                Some(Frame::Map { key: key @ None, .. }) => *key = Some((text, mark.line())),
                _ => value_done(&mut stack),
            },
            Event::Alias(_) => value_done(&mut stack),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if stack.len() == MAX_DEPTH {
                    return Err(Deep::At(too_deep(&stack, mark.line())));
                }
                let (path, line) = value_path(&stack).unwrap_or_else(|| (String::new(), mark.line()));
                let line = if line == 0 { mark.line() } else { line };
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Map { path, line, key: None }
                } else {
                    Frame::Seq { path, line, index: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                value_done(&mut stack);
            }
            _ => {}
        }
    }
}

/// The path (and the line of its key, 0 for none) of the value that starts now.
fn value_path(stack: &[Frame]) -> Option<(String, usize)> {
    let join =
        |parent: &str, key: &str| if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") };
    match stack.last() {
        None => Some((String::new(), 0)),
        Some(Frame::Map { path, key: Some((key, line)), .. }) => Some((join(path, key), *line)),
        Some(Frame::Map { key: None, .. }) => None,
        Some(Frame::Seq { path, index, .. }) => Some((format!("{path}[{index}]"), 0)),
    }
}

fn value_done(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Map { key, .. }) => *key = None,
        Some(Frame::Seq { index, .. }) => *index += 1,
        None => {}
    }
}

fn too_deep(stack: &[Frame], line: usize) -> (String, usize) {
    match stack.get(SHOWN_DEPTH - 1) {
        Some(Frame::Map { path, line, .. } | Frame::Seq { path, line, .. }) => (path.clone(), *line),
        None => match value_path(stack) {
            Some((path, key_line)) if key_line > 0 => (path, key_line),
            Some((path, _)) => (path, line),
            None => (String::new(), line),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_nested_past_the_limit_is_refused_at_the_value_it_is_in() {
        let head = "flags:\n  - key: x\n    variants:\n      - name: on\n        value: ";
        for (open, close) in [("{\"a\": ", "}"), ("[", "]")] {
            let text = format!("{head}{}1{}\n", open.repeat(100_000), close.repeat(100_000));
            assert_eq!(check(&text), Err(("flags[0].variants[0].value".into(), 5)), "{open}");
            let text = format!("{head}{}1{}\n", open.repeat(MAX_DEPTH - 6), close.repeat(MAX_DEPTH - 6));
            assert_eq!(check(&text), Ok(()), "{open}");
        }
    }
}
