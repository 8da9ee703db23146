//! Where each field of a YAML (or JSON) document starts, by the path flag-core uses in its
//! problems (`flags[1].rules[0].clauses[0].values[2]`), so an error can name the file line.
//!
//! serde does not keep positions, so the document is read a second time with yaml-rust2's
//! event parser, which marks each event with its line.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Field path → 1-based line.
#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// The index of `text`; empty when it does not parse (serde reports that error).
    pub(crate) fn of(text: &str) -> LineIndex {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut walker, false).is_err() {
            return LineIndex::default();
        }
        LineIndex { lines: walker.lines }
    }

    /// The line of `path`, or of the nearest enclosing field that has one.
    pub(crate) fn line_of(&self, path: &str) -> Option<usize> {
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

    fn record(&mut self, path: &str, mark: Marker) {
        // yaml-rust2 counts lines from 1.
        self.lines.entry(path.to_owned()).or_insert(mark.line());
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
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
        let index = LineIndex::of(FILE);
        assert_eq!(index.line_of("flags[0].key"), Some(2));
        assert_eq!(index.line_of("flags[0].variants[0].name"), Some(4));
        assert_eq!(index.line_of("flags[0].variants[1].value"), Some(6));
        assert_eq!(index.line_of("flags[0].rules[0].clauses[0].values[1]"), Some(10));
    }

    #[test]
    fn a_path_without_a_line_falls_back_to_its_nearest_parent() {
        let index = LineIndex::of(FILE);
        // `op` is missing from the clause: the clause's own line is the best answer.
        assert_eq!(index.line_of("flags[0].rules[0].clauses[0].op"), Some(9));
        assert_eq!(index.line_of("segments[0]"), None);
    }

    #[test]
    fn json_files_get_lines_too() {
        let index = LineIndex::of("{\n  \"flags\": [\n    {\"key\": \"a\"},\n    {\"key\": \"b\"}\n  ]\n}\n");
        assert_eq!(index.line_of("flags[1].key"), Some(4));
    }
}
