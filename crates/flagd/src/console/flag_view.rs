//! A flag drawn for reading: its variants, rules and split, and what a change would do to
//! it, field by field.

use flag_core::{FieldChange, Flag, FlagSet, Serve, SubjectDiff};
use flag_proto::v1;
use maud::{Markup, html};

/// What a serve gives, with a split drawn as a bar of its shares.
pub(crate) fn serve_markup(serve: &Serve) -> Markup {
    html! {
        span.serve { (flag_core::serve_text(serve)) }
        @if let Serve::Split(split) = serve {
            // An SVG rather than styled spans: widths as attributes keep the page within a
            // content security policy without inline styles.
            svg.split-bar role="img" aria-label=(flag_core::serve_text(serve)) viewBox="0 0 100 4" preserveAspectRatio="none" {
                @for (variant, x, width) in shares(split) {
                    rect class={ "variant-" (css_name(variant)) } data-variant=(variant)
                        x=(format!("{x:.3}")) y="0" width=(format!("{width:.3}")) height="4" {
                        title { (variant) " " (format!("{width:.3}").trim_end_matches('0').trim_end_matches('.')) "%" }
                    }
                }
            }
        }
    }
}

/// Each served variant of `split` with where its share starts and how wide it is, in percent.
fn shares(split: &flag_core::Split) -> Vec<(&str, f64, f64)> {
    let total = split.total_weight().max(1) as f64;
    let mut start = 0.0;
    let mut shares = Vec::new();
    for weight in split.weights.iter().filter(|w| w.weight > 0) {
        let width = weight.weight as f64 * 100.0 / total;
        shares.push((weight.variant.as_str(), start, width));
        start += width;
    }
    shares
}

/// A variant name as a CSS class suffix: the common ones are coloured, the rest neutral.
fn css_name(variant: &str) -> &str {
    match variant {
        flag_core::ON | flag_core::OFF | flag_core::DARK => variant,
        _ => "other",
    }
}

/// The variants with their values, the killed flag's variant marked.
pub(crate) fn variants_markup(flag: &Flag) -> Markup {
    html! {
        ul.variants {
            @for variant in &flag.variants {
                li {
                    code { (variant.name) } " = " code { (serde_json::to_string(&variant.value).unwrap_or_default()) }
                    @if flag.off_variant.as_deref() == Some(variant.name.as_str()) { " " span.note { "(served when killed)" } }
                }
            }
        }
    }
}

/// The rules in order: `if country in ["NZ"] and … → everyone gets "on"`.
pub(crate) fn rules_markup(flag: &Flag) -> Markup {
    html! {
        @if flag.rules.is_empty() && flag.prerequisites.is_empty() { span.note { "no rules" } }
        ol.rules {
            @for prerequisite in &flag.prerequisites {
                li { "requires " code { (prerequisite.flag) } " = " code { (prerequisite.variant) } }
            }
            @for rule in &flag.rules {
                li {
                    @if !rule.description.is_empty() { strong { (rule.description) } ": " }
                    "if "
                    @for (index, clause) in rule.clauses.iter().enumerate() {
                        @if index > 0 { " and " }
                        code { (flag_core::clause_text(clause)) }
                    }
                    @if rule.clauses.is_empty() { "always" }
                    " → " (serve_markup(&rule.serve))
                }
            }
        }
    }
}

/// What differs from `from` to `to` (both `None`: nothing), field by field.
pub(crate) fn flag_diff(from: Option<&Flag>, to: Option<&Flag>) -> Vec<FieldChange> {
    let set =
        |flag: Option<&Flag>| FlagSet { flags: flag.cloned().into_iter().collect(), segments: Vec::new() };
    let diff = flag_core::diff(&set(from), &set(to), &[]);
    diff.flags
        .into_iter()
        .flat_map(|subject| match subject {
            SubjectDiff::Changed { fields, .. } => fields,
            // A whole flag added or removed: shown as its content on one side.
            SubjectDiff::Added { .. } => vec![whole("(whole flag)", None, to)],
            SubjectDiff::Removed { .. } => vec![whole("(whole flag)", from, None)],
            _ => Vec::new(),
        })
        .collect()
}

fn whole(path: &str, from: Option<&Flag>, to: Option<&Flag>) -> FieldChange {
    let json = |flag: Option<&Flag>| flag.and_then(|flag| serde_json::to_value(flag).ok());
    FieldChange { path: path.to_owned(), from: json(from), to: json(to) }
}

/// A field-by-field table of changes; `empty` is said when there are none.
pub(crate) fn changes_table(changes: &[FieldChange], empty: &str) -> Markup {
    let json = |value: &Option<serde_json::Value>| {
        value
            .as_ref()
            .map_or_else(|| "—".to_owned(), |value| serde_json::to_string(value).unwrap_or_default())
    };
    html! {
        @if changes.is_empty() { p.note.no-changes { (empty) } } @else {
            table.diff {
                thead { tr { th { "field" } th { "now" } th { "after" } } }
                tbody {
                    @for change in changes {
                        tr { td { code { (change.path) } } td.from { code { (json(&change.from)) } } td.to { code { (json(&change.to)) } } }
                    }
                }
            }
        }
    }
}

/// A flag from an Admin answer as flag-core's; `None` when absent (or, never for what the
/// store wrote, when it does not convert).
pub(crate) fn core_flag(flag: Option<&v1::Flag>) -> Option<Flag> {
    flag.cloned().and_then(|flag| Flag::try_from(flag).ok())
}

/// An apply's planned or made changes (promote, restore), each flag's fields shown.
pub(crate) fn applied_markup(applied: &v1::ApplyResponse) -> Markup {
    html! {
        @if applied.changes.is_empty() { p.note.no-changes { "nothing would change" } }
        @for change in &applied.changes {
            @let operation = v1::Operation::try_from(change.operation).map_or("change", |op| op.as_str_name());
            section.applied-change data-key=(change.key) {
                h3 { (if change.is_segment { "segment " } else { "flag " }) code { (change.key) } " — " (operation.trim_start_matches("OPERATION_").to_lowercase()) }
                @if !change.is_segment {
                    (changes_table(&flag_diff(core_flag(change.flag_before.as_ref()).as_ref(), core_flag(change.flag_after.as_ref()).as_ref()), "no field changes"))
                }
            }
        }
        @if !applied.kept_killed.is_empty() {
            p.note { "stays killed: " (applied.kept_killed.join(", ")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_is_drawn_as_consecutive_shares_of_its_served_variants() {
        let flag = Flag::dark_launch("chat", 5.0, 50.0).unwrap();
        let Serve::Split(split) = &flag.default else { unreachable!("a dark launch splits") };
        let shares = shares(split);
        assert_eq!(shares, [("on", 0.0, 5.0), ("dark", 5.0, 45.0), ("off", 50.0, 50.0)]);
        let markup = serve_markup(&flag.default).into_string();
        assert!(markup.contains("data-variant=\"dark\" x=\"5.000\" y=\"0\" width=\"45.000\""), "{markup}");
    }

    #[test]
    fn a_diff_names_each_changed_field_and_a_whole_flag_when_one_side_has_none() {
        let before = Flag::rollout("chat", 5.0).unwrap();
        let mut after = before.clone();
        after.enabled = false;
        let changes = flag_diff(Some(&before), Some(&after));
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].path, "enabled");
        assert_eq!((changes[0].from.clone(), changes[0].to.clone()), (Some(true.into()), Some(false.into())));
        let created = flag_diff(None, Some(&after));
        assert_eq!(created[0].path, "(whole flag)");
        assert!(created[0].from.is_none() && created[0].to.is_some());
        assert!(flag_diff(Some(&before), Some(&before)).is_empty());
        let table = changes_table(&[], "nothing to do").into_string();
        assert!(table.contains("nothing to do"), "{table}");
    }
}
