//! One JSONLogic test on one attribute, as what it says for each type the attribute can
//! have — missing, a string, a number, a bool — and from that as our clauses.
//!
//! JSONLogic's answer depends on the attribute's type (`x < 5` holds for a missing `x`,
//! read as 0); our clauses never hold for a missing attribute and never match a wrong type.
//! Splitting by type makes each part exact: within one type the attribute is present, so a
//! negated clause there means exactly "does not match", and negation is De Morgan per type.

use flag_core::{Clause, KEY_ATTRIBUTE, Literal, Operator};

/// Alternatives of all-of clauses: `[]` never holds, `[[]]` always does.
pub(crate) type Dnf = Vec<Vec<Clause>>;

/// How many alternatives a condition may grow to before it is refused.
pub(crate) const MAX_ALTERNATIVES: usize = 256;

/// What a test says, per type of the attribute it reads.
#[derive(Clone, Debug)]
pub(crate) struct Atom {
    /// Our attribute name (`key` for the targeting key, which is always a string).
    pub(crate) attribute: String,
    pub(crate) missing: bool,
    pub(crate) string: Dnf,
    pub(crate) number: Dnf,
    pub(crate) boolean: Dnf,
}

impl Atom {
    /// A test that holds for no value of any type.
    pub(crate) fn never(attribute: &str) -> Atom {
        Atom {
            attribute: attribute.to_owned(),
            missing: false,
            string: vec![],
            number: vec![],
            boolean: vec![],
        }
    }

    /// A clause on this attribute with no negation.
    pub(crate) fn clause(&self, op: Operator, values: &[&str]) -> Clause {
        Clause {
            attribute: self.attribute.clone(),
            op,
            values: values.iter().map(|v| Literal((*v).to_owned())).collect(),
            negate: false,
        }
    }

    pub(crate) fn negated(&self) -> Result<Atom, String> {
        Ok(Atom {
            attribute: self.attribute.clone(),
            missing: !self.missing,
            string: complement(&self.string)?,
            number: complement(&self.number)?,
            boolean: complement(&self.boolean)?,
        })
    }

    /// The test as our clauses.
    pub(crate) fn to_dnf(&self) -> Dnf {
        if self.attribute == KEY_ATTRIBUTE {
            // The targeting key is always there, and always a string.
            return self.string.clone();
        }
        let mut out: Dnf = Vec::new();
        if self.missing {
            out.push(vec![Clause { negate: true, ..self.clause(Operator::Exists, &[]) }]);
        }
        if self.string == self.number && self.number == self.boolean {
            // The same clauses mean the right thing for every type: no type guard.
            for all in &self.string {
                out.push(if all.is_empty() { vec![self.clause(Operator::Exists, &[])] } else { all.clone() });
            }
            return out;
        }
        for (all, guard) in self
            .string
            .iter()
            .map(|a| (a, self.is_string(a)))
            .chain(self.number.iter().map(|a| (a, self.is_number())))
            .chain(self.boolean.iter().map(|a| (a, self.is_bool())))
        {
            let mut clauses = guard;
            clauses.extend(all.iter().cloned());
            out.push(clauses);
        }
        out
    }

    /// The clauses that select strings, unless `all` already matches only strings.
    fn is_string(&self, all: &[Clause]) -> Vec<Clause> {
        let string_only = all.iter().any(|c| {
            !c.negate
                && matches!(
                    c.op,
                    Operator::StartsWith
                        | Operator::EndsWith
                        | Operator::Contains
                        | Operator::SemverEq
                        | Operator::SemverLt
                        | Operator::SemverLte
                        | Operator::SemverGt
                        | Operator::SemverGte
                )
        });
        if string_only { vec![] } else { vec![self.clause(Operator::StartsWith, &[""])] }
    }

    fn is_number(&self) -> Vec<Clause> {
        // Context values are strings, numbers or bools: neither a string nor a bool. (No
        // number clause: those also match numeric strings, and do not export.)
        vec![self.not_string(), Clause { negate: true, ..self.clause(Operator::In, &["true", "false"]) }]
    }

    fn is_bool(&self) -> Vec<Clause> {
        vec![self.clause(Operator::In, &["true", "false"]), self.not_string()]
    }

    /// Holds for a present attribute that is not a string (a wrong type never matches, so
    /// the negation holds for it).
    fn not_string(&self) -> Clause {
        Clause { negate: true, ..self.clause(Operator::StartsWith, &[""]) }
    }
}

/// Every combination of one alternative from `a` and one from `b`.
pub(crate) fn product(a: &Dnf, b: &Dnf) -> Result<Dnf, String> {
    if a.len().saturating_mul(b.len()) > MAX_ALTERNATIVES {
        return Err(format!("the condition expands to more than {MAX_ALTERNATIVES} alternatives"));
    }
    Ok(a.iter().flat_map(|x| b.iter().map(move |y| x.iter().chain(y).cloned().collect())).collect())
}

/// The alternatives of `a`, then those of `b`.
pub(crate) fn union(mut a: Dnf, b: Dnf) -> Result<Dnf, String> {
    a.extend(b);
    if a.len() > MAX_ALTERNATIVES {
        return Err(format!("the condition expands to more than {MAX_ALTERNATIVES} alternatives"));
    }
    Ok(a)
}

/// The negation of `dnf`, for an attribute known to be present (so a negated clause means
/// exactly "does not match").
fn complement(dnf: &Dnf) -> Result<Dnf, String> {
    let mut out: Dnf = vec![vec![]];
    for all in dnf {
        let any_fails: Dnf = all.iter().map(|c| vec![Clause { negate: !c.negate, ..c.clone() }]).collect();
        out = product(&out, &any_fails)?;
    }
    Ok(out)
}
