//! Number clauses on string attributes. Ours reads a numeric string (`"42"`, `" 7 "`) as a
//! number; JSONLogic engines disagree on strings (JavaScript's reads `" "` as 0 and `"0x10"`
//! as 16, datalogic throws on `"abc"`), so no comparison of a string is exact in all of them.
//! So where ours is about to read an attribute as a number and the context holds a string
//! there, the export answers [`NO_VARIANT`](super::NO_VARIANT) — an error, the caller's
//! default — rather than a guess; numbers (and bools, which never match) are compared exactly.

use std::collections::{BTreeSet, HashMap};

use flag_core::{Clause, Flag, Operator, Segment};
use serde_json::Value as Json;

use super::clause::is_number_operator;
use super::expr::{is_string, or, var};

/// The attributes that number clauses read, in clauses and in the segments they name.
#[derive(Default)]
pub(crate) struct ReadAsNumbers<'a> {
    attributes: BTreeSet<&'a str>,
}

impl<'a> ReadAsNumbers<'a> {
    pub(crate) fn clauses(&mut self, clauses: &'a [Clause], segments: &HashMap<&str, &'a Segment>) {
        for clause in clauses {
            if is_number_operator(clause.op) {
                self.attributes.insert(&clause.attribute);
            } else if clause.op == Operator::InSegment {
                // Segments name no segments (compilation refuses it), so one level is all.
                let named = clause.values.iter().filter_map(|s| segments.get(s.0.as_str()));
                for rule in named.flat_map(|segment| &segment.rules) {
                    self.clauses(&rule.clauses, segments);
                }
            }
        }
    }

    /// Every rule of `flag` and of the flags it requires, `depth` levels down at most; none
    /// of a killed flag, whose rules are not evaluated.
    pub(crate) fn flag(
        &mut self,
        flag: &'a Flag,
        flags: &HashMap<&str, &'a Flag>,
        segments: &HashMap<&str, &'a Segment>,
        depth: usize,
    ) {
        if !flag.enabled {
            return;
        }
        for rule in &flag.rules {
            self.clauses(&rule.clauses, segments);
        }
        if depth == 0 {
            return;
        }
        for required in flag.prerequisites.iter().filter_map(|p| flags.get(p.flag.as_str())) {
            self.flag(required, flags, segments, depth - 1);
        }
    }

    /// The condition "one of them holds a string", or `None` when there are none.
    pub(crate) fn any_string(&self) -> Option<Json> {
        (!self.attributes.is_empty())
            .then(|| or(self.attributes.iter().map(|a| is_string(&var(a))).collect()))
    }
}
