//! Validation errors: every problem in a flag set, each with the path of its field.

use std::fmt;

/// One thing wrong with a flag set: where, and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field, from the flag set down: `flags[2].rules[0].clauses[1].values[0]`.
    pub path: String,
    /// What was expected there and what was found, e.g. `expected a number, found "abc"`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A flag set was refused. Lists every problem found, not just the first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ValidationError {
    /// At least one problem, in the order the fields appear.
    pub problems: Vec<Problem>,
}

impl ValidationError {
    /// An error of `problems`, for checks made outside flag-core (e.g. a file's duplicate
    /// keys); `None` when there are none.
    pub fn from_problems(problems: Vec<Problem>) -> Option<ValidationError> {
        (!problems.is_empty()).then_some(ValidationError { problems })
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid flag set: {one}"),
            many => {
                write!(f, "invalid flag set ({} problems):", many.len())?;
                for problem in many {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

enum Step {
    Field(&'static str),
    Index(usize),
}

/// Collects problems while compilation walks the model, keeping the current field path as
/// a stack so that a path string is only built when something is wrong.
pub(crate) struct Problems {
    path: Vec<Step>,
    found: Vec<Problem>,
}

impl Problems {
    pub(crate) fn new() -> Self {
        Problems { path: Vec::with_capacity(8), found: Vec::new() }
    }

    /// Runs `f` one field deeper.
    pub(crate) fn field<R>(&mut self, name: &'static str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(Step::Field(name));
        let result = f(self);
        self.path.pop();
        result
    }

    /// Runs `f` on element `index` of the current list.
    pub(crate) fn index<R>(&mut self, index: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(Step::Index(index));
        let result = f(self);
        self.path.pop();
        result
    }

    /// Records a problem at the current path.
    pub(crate) fn report(&mut self, message: impl Into<String>) {
        let mut path = String::new();
        for step in &self.path {
            match step {
                Step::Field(name) if path.is_empty() => path.push_str(name),
                Step::Field(name) => {
                    path.push('.');
                    path.push_str(name);
                }
                Step::Index(index) => {
                    path.push('[');
                    path.push_str(itoa::Buffer::new().format(*index));
                    path.push(']');
                }
            }
        }
        self.found.push(Problem { path, message: message.into() });
    }

    /// Records a problem in field `name` of the current path.
    pub(crate) fn report_in(&mut self, name: &'static str, message: impl Into<String>) {
        self.field(name, |p| p.report(message));
    }

    /// How many problems so far; compare before and after a step to see if it failed.
    pub(crate) fn count(&self) -> usize {
        self.found.len()
    }

    pub(crate) fn into_result(self) -> Result<(), ValidationError> {
        if self.found.is_empty() { Ok(()) } else { Err(ValidationError { problems: self.found }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_fields_and_indices() {
        let mut problems = Problems::new();
        problems.field("flags", |p| {
            p.index(2, |p| p.field("rules", |p| p.index(0, |p| p.report_in("serve", "expected a variant"))))
        });
        let error = problems.into_result().unwrap_err();
        assert_eq!(error.problems[0].path, "flags[2].rules[0].serve");
        assert_eq!(error.to_string(), "invalid flag set: flags[2].rules[0].serve: expected a variant");
    }
}
