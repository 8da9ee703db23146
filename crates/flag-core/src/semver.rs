//! Semantic versions parsed and compared without allocating.
//!
//! Context attributes such as `app_version` are parsed on every evaluation, so the parser
//! borrows its pre-release text instead of building owned identifiers the way general
//! semver crates do. Precedence follows semver.org §11; build metadata is ignored.

use std::cmp::Ordering;

/// A version borrowed from the text it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Semver<'a> {
    major: u64,
    minor: u64,
    patch: u64,
    /// Dot-separated pre-release identifiers; empty for a release.
    pre: &'a str,
}

/// A version kept in a compiled clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedSemver {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Box<str>,
}

impl OwnedSemver {
    pub(crate) fn as_semver(&self) -> Semver<'_> {
        Semver { major: self.major, minor: self.minor, patch: self.patch, pre: &self.pre }
    }
}

impl Semver<'_> {
    pub(crate) fn to_owned_semver(self) -> OwnedSemver {
        OwnedSemver { major: self.major, minor: self.minor, patch: self.patch, pre: self.pre.into() }
    }
}

fn numeric(text: &str) -> Option<u64> {
    let leading_zero = text.len() > 1 && text.starts_with('0');
    if text.is_empty() || leading_zero || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn valid_identifiers(text: &str, numeric_rules: bool) -> bool {
    text.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            // A numeric pre-release identifier must not have leading zeros.
            && (!numeric_rules || !id.bytes().all(|b| b.is_ascii_digit()) || numeric(id).is_some())
    })
}

/// Reads a numeric identifier (no leading zeros) starting at `*at`.
#[inline]
fn number_at(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let start = *at;
    let mut value: u64 = 0;
    while let Some(&digit @ b'0'..=b'9') = bytes.get(*at) {
        value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
        *at += 1;
    }
    let leading_zero = *at - start > 1 && bytes[start] == b'0';
    (*at > start && !leading_zero).then_some(value)
}

/// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]` strictly (no `v` prefix, no leading zeros),
/// in one pass over the bytes: this runs for every evaluation of a semver clause.
pub(crate) fn parse(text: &str) -> Option<Semver<'_>> {
    let bytes = text.as_bytes();
    let mut at = 0;
    let major = number_at(bytes, &mut at)?;
    (bytes.get(at) == Some(&b'.')).then_some(())?;
    at += 1;
    let minor = number_at(bytes, &mut at)?;
    (bytes.get(at) == Some(&b'.')).then_some(())?;
    at += 1;
    let patch = number_at(bytes, &mut at)?;
    let rest = &text[at..];
    let (pre, build) = match rest.as_bytes().first() {
        None => ("", None),
        Some(b'-') => match rest[1..].split_once('+') {
            Some((pre, build)) => (pre, Some(build)),
            None => (&rest[1..], None),
        },
        Some(b'+') => ("", Some(&rest[1..])),
        Some(_) => return None,
    };
    let pre_ok = !rest.starts_with('-') || valid_identifiers(pre, true);
    let build_ok = build.is_none_or(|build| valid_identifiers(build, false));
    (pre_ok && build_ok).then_some(Semver { major, minor, patch, pre })
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    match (numeric(a), numeric(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

impl Ord for Semver<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(
            || match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                // A pre-release comes before its release.
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    let mut ours = self.pre.split('.');
                    let mut theirs = other.pre.split('.');
                    loop {
                        match (ours.next(), theirs.next()) {
                            (None, None) => return Ordering::Equal,
                            (None, Some(_)) => return Ordering::Less,
                            (Some(_), None) => return Ordering::Greater,
                            (Some(a), Some(b)) => match compare_identifier(a, b) {
                                Ordering::Equal => {}
                                unequal => return unequal,
                            },
                        }
                    }
                }
            },
        )
    }
}

impl PartialOrd for Semver<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_what_semver_org_refuses() {
        for bad in ["1.2", "1.2.3.4", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+", "a.b.c", ""] {
            assert!(parse(bad).is_none(), "{bad} should be refused");
        }
        assert!(parse("1.2.3-rc.1+build.5").is_some());
    }

    #[test]
    fn orders_the_semver_org_example_chain() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "2.0.0",
        ];
        for pair in chain.windows(2) {
            assert!(parse(pair[0]).unwrap() < parse(pair[1]).unwrap(), "{} < {}", pair[0], pair[1]);
        }
    }

    fn version() -> impl Strategy<Value = String> {
        let id = prop_oneof!["[0-9]{1,3}", "[a-z][a-z0-9-]{0,4}"];
        (0u8..3, 0u8..12, 0u8..3, proptest::collection::vec(id, 0..3)).prop_map(|(a, b, c, pre)| {
            let pre: Vec<String> = pre
                .into_iter()
                .map(|id| id.trim_start_matches('0').to_owned())
                .map(|id| if id.is_empty() { "0".into() } else { id })
                .collect();
            if pre.is_empty() { format!("{a}.{b}.{c}") } else { format!("{a}.{b}.{c}-{}", pre.join(".")) }
        })
    }

    proptest! {
        #[test]
        fn accepts_exactly_what_the_semver_crate_accepts(
            text in r"(0|1|01|[1-9][0-9]{0,2})(\.(0|00|[1-9][0-9]?)){0,3}(-[0-9a-z.-]{0,5})?(\+[0-9a-z.-]{0,4})?",
        ) {
            prop_assert_eq!(parse(&text).is_some(), semver::Version::parse(&text).is_ok(), "{}", text);
        }

        #[test]
        fn precedence_agrees_with_the_semver_crate(a in version(), b in version()) {
            let ours = parse(&a).unwrap().cmp(&parse(&b).unwrap());
            let theirs = semver::Version::parse(&a).unwrap().cmp_precedence(&semver::Version::parse(&b).unwrap());
            prop_assert_eq!(ours, theirs);
        }
    }
}
