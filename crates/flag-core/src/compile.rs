//! Validation and compilation are one pass: a flag set is valid exactly when it compiles,
//! so the server refuses precisely what the SDK's evaluator could not run.

use std::borrow::Borrow;

use rustc_hash::FxHashMap;

use crate::bucketing::BucketInput;
use crate::compile_clause::{ClauseSite, compile_clause};
use crate::compiled::{
    CompiledFlag, CompiledPrerequisite, CompiledRule, CompiledSegment, CompiledServe, CompiledSplit,
    CompiledVariant, Served, StringSet, Targeting,
};
use crate::date::parse_rfc3339_millis;
use crate::error::{Problems, ValidationError};
use crate::evaluate::Snapshot;
use crate::model::{Flag, FlagSet, Segment, Serve, Split, Weight};
use crate::murmur::MAX_TOTAL_WEIGHT;
use crate::value::KEY_ATTRIBUTE;

/// Longest flag or segment key accepted.
pub const MAX_KEY_LEN: usize = 128;

impl FlagSet {
    /// Checks the whole set, reporting every problem with its path.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.compile().map(drop)
    }

    /// Validates the set and compiles it into an immutable [`Snapshot`] for evaluation.
    pub fn compile(&self) -> Result<Snapshot, ValidationError> {
        compile_parts(&self.flags, &self.segments)
    }
}

/// [`FlagSet::compile`] of flags and segments held elsewhere — behind `Arc`s shared with the
/// previous state, say — without first cloning them into a [`FlagSet`]. Problem paths are
/// as for a set holding them in this order.
pub fn compile_parts<F: Borrow<Flag>, S: Borrow<Segment>>(
    flags: &[F],
    segments: &[S],
) -> Result<Snapshot, ValidationError> {
    let flags: Vec<&Flag> = flags.iter().map(Borrow::borrow).collect();
    let segments: Vec<&Segment> = segments.iter().map(Borrow::borrow).collect();
    let mut p = Problems::new();
    let flag_index = index_keys(flags.iter().map(|f| f.key.as_str()), "flags", "flag", &mut p);
    let segment_index = index_keys(segments.iter().map(|s| s.key.as_str()), "segments", "segment", &mut p);

    let compiled_segments: Vec<_> = p.field("segments", |p| {
        let compiled = segments.iter().enumerate();
        compiled.map(|(i, segment)| p.index(i, |p| compile_segment(segment, p))).collect()
    });
    let compiled_flags: Vec<_> = p.field("flags", |p| {
        let names = Names { flags: &flags, flag_index: &flag_index, segments: &segment_index };
        let compiled = flags.iter().enumerate();
        compiled.map(|(i, flag)| p.index(i, |p| compile_flag(flag, &names, p))).collect()
    });
    p.field("flags", |p| report_prerequisite_cycles(&compiled_flags, p));
    p.into_result()?;

    // No problems were reported, so every flag and segment compiled.
    let compiled_flags: Box<[CompiledFlag]> = compiled_flags.into_iter().flatten().collect();
    let compiled_segments: Box<[CompiledSegment]> = compiled_segments.into_iter().flatten().collect();
    Ok(Snapshot::new(compiled_flags, compiled_segments))
}

struct Names<'a> {
    flags: &'a [&'a Flag],
    flag_index: &'a FxHashMap<&'a str, u32>,
    segments: &'a FxHashMap<&'a str, u32>,
}

/// Maps each key to its first position, reporting bad syntax and duplicates.
fn index_keys<'a>(
    keys: impl Iterator<Item = &'a str>,
    list: &'static str,
    noun: &str,
    p: &mut Problems,
) -> FxHashMap<&'a str, u32> {
    let mut index = FxHashMap::default();
    p.field(list, |p| {
        for (i, key) in keys.enumerate() {
            p.index(i, |p| {
                if let Err(message) = check_key(key) {
                    p.report_in("key", message);
                }
                if let Some(first) = index.insert(key, i as u32) {
                    index.insert(key, first);
                    p.report_in(
                        "key",
                        format!(
                            "expected a unique {noun} key, found {key:?} again (first at {list}[{first}])"
                        ),
                    );
                }
            });
        }
    });
    index
}

pub(crate) fn check_key(key: &str) -> Result<(), String> {
    let well_formed = key.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !well_formed || key.len() > MAX_KEY_LEN {
        return Err(format!(
            "expected a key of 1 to {MAX_KEY_LEN} letters, digits, `_`, `.` or `-` starting with a letter or digit, found {key:?}"
        ));
    }
    Ok(())
}

fn compile_segment(segment: &Segment, p: &mut Problems) -> Option<CompiledSegment> {
    let Segment { key: _, description: _, included, excluded, rules } = segment;
    let before = p.count();
    let rules: Vec<Box<[_]>> = p.field("rules", |p| {
        let rules = rules.iter().enumerate();
        rules
            .map(|(r, rule)| {
                p.index(r, |p| {
                    p.field("clauses", |p| {
                        let clauses = rule.clauses.iter().enumerate();
                        clauses
                            .filter_map(|(c, clause)| {
                                p.index(c, |p| compile_clause(clause, ClauseSite::Segment, p))
                            })
                            .collect()
                    })
                })
            })
            .collect()
    });
    let set = |keys: &[String]| StringSet::new(keys.iter().map(|k| k.as_str().into()).collect());
    (p.count() == before).then(|| CompiledSegment {
        included: set(included),
        excluded: set(excluded),
        rules: rules.into(),
    })
}

fn compile_flag(flag: &Flag, names: &Names<'_>, p: &mut Problems) -> Option<CompiledFlag> {
    let Flag {
        key,
        description: _,
        variants,
        enabled,
        off_variant,
        rules,
        default,
        prerequisites,
        version: _,
        metadata,
    } = flag;
    let before = p.count();

    if variants.is_empty() {
        p.report_in("variants", "expected at least one variant");
    }
    let kind = variants.first().map(|v| v.value.kind());
    p.field("variants", |p| {
        for (i, variant) in variants.iter().enumerate() {
            p.index(i, |p| {
                if let Err(message) = check_key(&variant.name) {
                    p.report_in("name", message.replace("a key", "a variant name"));
                }
                if let Some(first) = variants[..i].iter().position(|v| v.name == variant.name) {
                    let message = format!(
                        "expected a unique variant name, found {:?} again (first at variants[{first}])",
                        variant.name
                    );
                    p.report_in("name", message);
                }
                if let Some(kind) = kind.filter(|kind| *kind != variant.value.kind()) {
                    let message =
                        format!("expected a {kind} value like variants[0], found a {}", variant.value.kind());
                    p.report_in("value", message);
                }
            });
        }
    });
    let variant_index = |name: &str| variants.iter().position(|v| v.name == name).map(|i| i as u32);
    let unknown_variant = |name: &str| {
        let known: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
        format!("expected one of the flag's variants {known:?}, found {name:?}")
    };

    let off = match off_variant {
        None => Some(Served::CALLER_DEFAULT),
        Some(name) => {
            let index = variant_index(name);
            if index.is_none() {
                p.report_in("off_variant", unknown_variant(name));
            }
            index.map(Served::variant)
        }
    };
    let serve_context =
        ServeContext { flag_key: key, variant_index: &variant_index, unknown_variant: &unknown_variant };
    let default = p.field("default", |p| compile_serve(default, &serve_context, p));
    let site = ClauseSite::Flag { segments: names.segments };
    let rules: Vec<CompiledRule> = p.field("rules", |p| {
        let rules = rules.iter().enumerate();
        rules
            .filter_map(|(r, rule)| {
                p.index(r, |p| {
                    let clauses: Vec<_> = p.field("clauses", |p| {
                        let clauses = rule.clauses.iter().enumerate();
                        clauses
                            .filter_map(|(c, clause)| p.index(c, |p| compile_clause(clause, site, p)))
                            .collect()
                    });
                    let serve = p.field("serve", |p| compile_serve(&rule.serve, &serve_context, p))?;
                    Some(CompiledRule { clauses: clauses.into(), serve })
                })
            })
            .collect()
    });
    let prerequisites: Vec<_> = p.field("prerequisites", |p| {
        let prerequisites = prerequisites.iter().enumerate();
        prerequisites
            .filter_map(|(i, pre)| p.index(i, |p| compile_prerequisite(&pre.flag, &pre.variant, names, p)))
            .collect()
    });
    p.field("metadata", |p| {
        for (field, stamp) in [("created_at", &metadata.created_at), ("updated_at", &metadata.updated_at)] {
            if let Some(stamp) = stamp.as_deref().filter(|s| parse_rfc3339_millis(s).is_none()) {
                p.report_in(field, format!("expected an RFC 3339 time, found {stamp:?}"));
            }
        }
    });

    if p.count() != before {
        return None;
    }
    Some(CompiledFlag {
        key: key.as_str().into(),
        kind: kind?,
        enabled: *enabled,
        off_variant: off?,
        variants: variants
            .iter()
            .map(|v| CompiledVariant { name: v.name.as_str().into(), value: v.value.clone() })
            .collect(),
        first_variant: 0,
        targeting: (!prerequisites.is_empty() || !rules.is_empty())
            .then(|| Box::new(Targeting { prerequisites: prerequisites.into(), rules: rules.into() })),
        default: default?,
    })
}

fn compile_prerequisite(
    flag: &str,
    variant: &str,
    names: &Names<'_>,
    p: &mut Problems,
) -> Option<CompiledPrerequisite> {
    let Some(&index) = names.flag_index.get(flag) else {
        p.report_in("flag", format!("expected the key of a flag in the set, found {flag:?}"));
        return None;
    };
    let required = names.flags[index as usize];
    let Some(position) = required.variants.iter().position(|v| v.name == variant) else {
        let known: Vec<&str> = required.variants.iter().map(|v| v.name.as_str()).collect();
        p.report_in("variant", format!("expected one of {flag:?}'s variants {known:?}, found {variant:?}"));
        return None;
    };
    Some(CompiledPrerequisite { flag: index, variant: position as u32 })
}

struct ServeContext<'a> {
    flag_key: &'a str,
    variant_index: &'a dyn Fn(&str) -> Option<u32>,
    unknown_variant: &'a dyn Fn(&str) -> String,
}

fn compile_serve(serve: &Serve, cx: &ServeContext<'_>, p: &mut Problems) -> Option<CompiledServe> {
    match serve {
        Serve::Variant(name) => {
            let index = (cx.variant_index)(name);
            if index.is_none() {
                p.report_in("variant", (cx.unknown_variant)(name));
            }
            index.map(|index| CompiledServe::Variant(Served::variant(index)))
        }
        Serve::Split(split) => {
            p.field("split", |p| compile_split(split, cx, p)).map(|s| CompiledServe::Split(Box::new(s)))
        }
        Serve::CallerDefault => Some(CompiledServe::Variant(Served::CALLER_DEFAULT)),
    }
}

fn compile_split(split: &Split, cx: &ServeContext<'_>, p: &mut Problems) -> Option<CompiledSplit> {
    let Split { by, salt, weights, bucketing } = split;
    let before = p.count();
    if by.as_deref() == Some("") {
        p.report_in("by", "expected an attribute name, or no `by` to bucket by the targeting key");
    }
    if weights.is_empty() {
        p.report_in("weights", "expected at least one weighted variant");
    }
    let mut ranges = Vec::with_capacity(weights.len());
    let mut total: i128 = 0;
    p.field("weights", |p| {
        for (i, Weight { variant, weight }) in weights.iter().enumerate() {
            p.index(i, |p| {
                let index = (cx.variant_index)(variant);
                match index {
                    None => p.report_in("variant", (cx.unknown_variant)(variant)),
                    Some(_) if weights[..i].iter().any(|w| w.variant == *variant) => {
                        p.report_in(
                            "variant",
                            format!("expected each variant once per split, found {variant:?} again"),
                        );
                    }
                    Some(_) => {}
                }
                if !(0..=i64::from(MAX_TOTAL_WEIGHT)).contains(weight) {
                    let message = format!("expected a weight from 0 to {MAX_TOTAL_WEIGHT}, found {weight}");
                    p.report_in("weight", message);
                }
                total += i128::from(*weight);
                if let (Some(index), Ok(upper), true) = (index, u32::try_from(total), *weight > 0) {
                    ranges.push((upper, index));
                }
            });
        }
        if !weights.is_empty() && !(1..=i128::from(MAX_TOTAL_WEIGHT)).contains(&total) {
            p.report(format!(
                "expected weights totalling from 1 to {MAX_TOTAL_WEIGHT} (100 000 for percentages), found {total}"
            ));
        }
    });
    if p.count() != before {
        return None;
    }
    let input = BucketInput::new(*bucketing, cx.flag_key, salt.as_deref(), by.is_some());
    // Bucketing `by: key` is bucketing by the targeting key (framed as an attribute's text
    // under flagd-v3, as `input` was told).
    let by = by.as_deref().filter(|by| *by != KEY_ATTRIBUTE).map(Into::into);
    // In range: checked just above.
    let total = u32::try_from(total).ok()?;
    Some(CompiledSplit { by, input, total, ranges: ranges.into() })
}

/// Reports each prerequisite that closes a cycle, naming the cycle.
fn report_prerequisite_cycles(flags: &[Option<CompiledFlag>], p: &mut Problems) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; flags.len()];
    let edges = |flag: usize| flags[flag].as_ref().map_or(&[][..], |f| f.prerequisites());
    for start in 0..flags.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Depth-first with an explicit stack of (flag, next edge) so deep chains cannot overflow.
        let mut stack = vec![(start, 0usize)];
        marks[start] = Mark::OnPath;
        while let Some(&mut (flag, ref mut next)) = stack.last_mut() {
            let Some(edge) = edges(flag).get(*next) else {
                marks[flag] = Mark::Done;
                stack.pop();
                continue;
            };
            let edge_index = *next;
            *next += 1;
            let target = edge.flag as usize;
            match marks[target] {
                Mark::New => {
                    marks[target] = Mark::OnPath;
                    stack.push((target, 0));
                }
                Mark::OnPath => {
                    let from = stack.iter().position(|&(f, _)| f == target).unwrap_or(0);
                    let key = |f: usize| flags[f].as_ref().map_or("?", |f| &f.key);
                    let mut cycle: Vec<&str> = stack[from..].iter().map(|&(f, _)| key(f)).collect();
                    cycle.push(key(target));
                    p.index(flag, |p| {
                        p.field("prerequisites", |p| {
                            p.index(edge_index, |p| {
                                p.report_in(
                                    "flag",
                                    format!("expected no prerequisite cycle, found {}", cycle.join(" -> ")),
                                )
                            })
                        })
                    });
                }
                Mark::Done => {}
            }
        }
    }
}
