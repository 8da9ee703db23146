//! Where each field of a YAML (or JSON) document starts, by the path flag-core uses in its
//! problems (`flags[1].rules[0].clauses[0].values[2]`), so an error can name the file line.
//!
//! serde does not keep positions, so the document is also read with yaml-rust2's event
//! parser, which marks each event with its line. That read comes first and enforces the
//! nesting limit ([`MAX_FILE_DEPTH`]): serde_yaml_ng (libyaml) takes time quadratic in the depth
//! before its own recursion limit refuses a document (12 s for 40,000 levels), while this
//! pull parser stops at the first node past the limit, so a file is refused in time linear
//! in its size.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

/// How deep a flag file may nest, counting every mapping and sequence from the top. The flag
/// model itself needs 8 (`segments[0].rules[0].clauses[0].values`); the rest is for JSON
/// variant values. flagctl and the SDK's offline file reader both check files with it.
pub const MAX_FILE_DEPTH: usize = 64;

/// How many levels of a too-deep path an error shows: as deep as the flag model goes before
/// a free-form value starts (`flags[0].variants[0].value`), where a path of 64 levels would
/// be unreadable.
const SHOWN_DEPTH: usize = 6;

/// A document nested deeper than [`MAX_FILE_DEPTH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    /// The path of the node the nesting is in (at most [`SHOWN_DEPTH`] levels).
    pub path: String,
    /// Its 1-based line.
    pub line: usize,
}

/// Why a walk stopped early.
enum Deep {
    /// Past the limit, here.
    At(TooDeep),
    /// yaml-rust2 ran out of flow levels at char `index`, while looking ahead.
    Flow { index: usize, fallback: TooDeep },
}

/// Field path → 1-based line.
#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// The index of `text`; empty when it does not parse (serde reports that error), and
    /// [`TooDeep`] when it nests deeper than [`MAX_FILE_DEPTH`].
    pub fn of(text: &str) -> Result<LineIndex, TooDeep> {
        match LineIndex::walk(text) {
            Err(Deep::At(found)) => Err(found),
            // A flow document (JSON) gives no events until the scanner's look-ahead ends, so
            // the path is not known yet: walk the part read so far, whose end stops the
            // look-ahead. It is no longer than the file, so the check stays linear.
            Err(Deep::Flow { index, fallback }) => {
                let end = text.char_indices().nth(index).map_or(text.len(), |(at, _)| at);
                match LineIndex::walk(&text[..end]) {
                    Err(Deep::At(found)) => Err(found),
                    _ => Err(fallback),
                }
            }
            Ok(index) => Ok(index),
        }
    }

    fn walk(text: &str) -> Result<LineIndex, Deep> {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(text);
        loop {
            match parser.next_token() {
                Ok((Event::StreamEnd, _)) => return Ok(LineIndex { lines: walker.lines }),
                Ok((event, mark)) => walker.on_event(event, mark).map_err(Deep::At)?,
                // yaml-rust2 counts flow levels in a `u8` and refuses a 256th while looking
                // ahead, before the events of the levels past ours arrive: that is too deep.
                Err(error) if error.info() == "recursion limit exceeded" => {
                    let fallback = walker.too_deep(error.marker().line());
                    return Err(Deep::Flow { index: error.marker().index(), fallback });
                }
                Err(_) => return Ok(LineIndex::default()),
            }
        }
    }

    /// The line of `path`, or of the nearest enclosing field that has one.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return Some(*line);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

/// Where the walk is: inside a mapping (expecting a key, or the value of `key`) or a
/// sequence (at item `index`).
#[derive(Debug)]
enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Debug, Default)]
struct Walker {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

impl Walker {
    /// The path of the node that starts now, if it is a value (not a mapping key).
    fn value_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Map { path, key: Some(key) }) => Some(join(path, key)),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Seq { path, index }) => Some(format!("{path}[{index}]")),
        }
    }

    /// A value has ended: the enclosing mapping expects a key, the sequence its next item.
    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }

    /// The error for nesting past the limit here: the path of the node at
    /// [`SHOWN_DEPTH`] (or of the value starting now, when the walk is not that deep yet).
    fn too_deep(&self, line: usize) -> TooDeep {
        let path = match self.stack.get(SHOWN_DEPTH - 1) {
            Some(Frame::Map { path, .. } | Frame::Seq { path, .. }) => path.clone(),
            None => self.value_path().unwrap_or_default(),
        };
        let line = self.lines.get(&path).copied().unwrap_or(line);
        TooDeep { path, line }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        // yaml-rust2 counts lines from 1.
        self.lines.entry(path.to_owned()).or_insert(mark.line());
    }
}

impl Walker {
    fn on_event(&mut self, event: Event, mark: Marker) -> Result<(), TooDeep> {
        match event {
            Event::Scalar(text, ..) => match self.value_path() {
                Some(path) => {
                    self.record(&path, mark);
                    self.value_done();
                }
                None => {
                    if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                        let field = join(path, &text);
                        *key = Some(text);
                        self.record(&field, mark);
                    }
                }
            },
            Event::Alias(_) => self.value_done(),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if self.stack.len() == MAX_FILE_DEPTH {
                    return Err(self.too_deep(mark.line()));
                }
                let path = self.value_path().unwrap_or_default();
                self.record(&path, mark);
                let frame = if matches!(event, Event::MappingStart(..)) {
                    Frame::Map { path, key: None }
                } else {
                    Frame::Seq { path, index: 0 }
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
flags:
  - key: chat
    variants:
      - { name: on, value: true }
      - name: off
        value: false
    rules:
      - clauses:
          - attribute: country
            values: [NZ, AU]
";

    #[test]
    fn fields_map_to_the_line_they_start_on() {
        let index = LineIndex::of(FILE).unwrap();
        assert_eq!(index.line_of("flags[0].key"), Some(2));
        assert_eq!(index.line_of("flags[0].variants[0].name"), Some(4));
        assert_eq!(index.line_of("flags[0].variants[1].value"), Some(6));
        assert_eq!(index.line_of("flags[0].rules[0].clauses[0].values[1]"), Some(10));
    }

    #[test]
    fn a_path_without_a_line_falls_back_to_its_nearest_parent() {
        let index = LineIndex::of(FILE).unwrap();
        // `op` is missing from the clause: the clause's own line is the best answer.
        assert_eq!(index.line_of("flags[0].rules[0].clauses[0].op"), Some(9));
        assert_eq!(index.line_of("segments[0]"), None);
    }

    #[test]
    fn json_files_get_lines_too() {
        let index = LineIndex::of("{\n  \"flags\": [\n    {\"key\": \"a\"},\n    {\"key\": \"b\"}\n  ]\n}\n")
            .unwrap();
        assert_eq!(index.line_of("flags[1].key"), Some(4));
    }

    /// `flags: [{ variants: [{ value: …` nested `depth` levels in `style`.
    fn deep(style: &str, depth: usize) -> String {
        let mut text = String::from("flags:\n  - key: x\n    variants:\n      - name: on\n        value: ");
        match style {
            "object" => {
                text.push_str(&"{\"a\": ".repeat(depth));
                text.push('1');
                text.push_str(&"}".repeat(depth));
            }
            "array" => {
                text.push_str(&"[".repeat(depth));
                text.push('1');
                text.push_str(&"]".repeat(depth));
            }
            _ => {
                text.push_str("\n          ");
                text.push_str(&"- ".repeat(depth));
                text.push('1');
            }
        }
        text.push('\n');
        text
    }

    #[test]
    fn nesting_past_the_limit_is_refused_at_the_value_it_is_in_whatever_the_style() {
        // 100,000 levels: refused after reading the first few hundred bytes, not the whole.
        for style in ["object", "array", "dashes"] {
            let error = LineIndex::of(&deep(style, 100_000)).unwrap_err();
            assert_eq!(error, TooDeep { path: "flags[0].variants[0].value".into(), line: 5 }, "{style}");
        }
        // A JSON file, all on one line.
        let json = format!(
            "{{\"flags\": [{{\"key\": \"x\", \"variants\": [{{\"name\": \"on\", \"value\": {}1{}}}]}}]}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let error = LineIndex::of(&json).unwrap_err();
        assert_eq!(error, TooDeep { path: "flags[0].variants[0].value".into(), line: 1 });
        // Within the limit, the same shapes are indexed as usual.
        let index = LineIndex::of(&deep("object", MAX_FILE_DEPTH - 6)).unwrap();
        assert_eq!(index.line_of("flags[0].variants[0].value.a.a"), Some(5));
    }
}
