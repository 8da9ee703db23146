//! Flags as a person reads them: `5% on, 45% dark, 50% off`, `country in ["NZ", "AU"]`.
//! One wording for every place that shows a flag (the CLI, the console), so an operator
//! reads the same sentence wherever they look.

use crate::model::{Clause, Flag, Serve, Split};

/// `5000` of 100 000 → `5%`, `12500` → `12.5%`, `1` of 4 → `25%`.
pub fn percent_text(weight: i64, total: i64) -> String {
    let percent = weight as f64 * 100.0 / total.max(1) as f64;
    let text = format!("{percent:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// What a serve gives: `5% on, 45% dark, 50% off`, `everyone gets "blue"`.
pub fn serve_text(serve: &Serve) -> String {
    match serve {
        Serve::Variant(variant) => format!("everyone gets {variant:?}"),
        Serve::Split(split) => split_text(split),
        Serve::CallerDefault => "everyone gets the caller's default".to_owned(),
    }
}

/// What a flag serves while killed: `"off"`, or the caller's default.
pub fn off_variant_text(flag: &Flag) -> String {
    flag.off_variant.as_ref().map_or_else(|| "the caller's default".to_owned(), |off| format!("{off:?}"))
}

fn split_text(split: &Split) -> String {
    let parts: Vec<String> = split
        .weights
        .iter()
        .filter(|w| w.weight > 0)
        .map(|w| format!("{} {}", percent_text(w.weight, split.total_weight()), w.variant))
        .collect();
    let mut text = if parts.is_empty() { "nobody (all weights 0)".to_owned() } else { parts.join(", ") };
    if let Some(by) = &split.by {
        text.push_str(&format!(" (bucketed by {by})"));
    }
    text
}

/// The on and dark shares (`5%`, `45%`) of a live dark launch with a dark cohort.
pub fn dark_cohort_text(flag: &Flag) -> Option<(String, String)> {
    let Serve::Split(split) = &flag.default else { return None };
    let weight = |name: &str| split.weights.iter().find(|w| w.variant == name).map_or(0, |w| w.weight);
    let dark = weight(crate::DARK);
    let total = split.total_weight();
    (flag.enabled && dark > 0).then(|| (percent_text(weight(crate::ON), total), percent_text(dark, total)))
}

/// One line for a flag's state: what it serves, or that it is killed.
pub fn state_text(flag: &Flag) -> String {
    if flag.enabled {
        serve_text(&flag.default)
    } else {
        format!("KILLED: everyone gets {}", off_variant_text(flag))
    }
}

/// `country in ["NZ", "AU"]`, `not plan starts_with ["trial"]`.
pub fn clause_text(clause: &Clause) -> String {
    let op =
        serde_json::to_value(clause.op).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let values: Vec<String> = clause.values.iter().map(|v| format!("{:?}", v.0)).collect();
    let negate = if clause.negate { "not " } else { "" };
    format!("{negate}{} {op} [{}]", clause.attribute, values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TOTAL_WEIGHT;

    #[test]
    fn percentages_print_without_trailing_zeros() {
        let total = i64::from(TOTAL_WEIGHT);
        assert_eq!(percent_text(5_000, total), "5%");
        assert_eq!(percent_text(12_500, total), "12.5%");
        assert_eq!(percent_text(1, total), "0.001%");
        assert_eq!(percent_text(100_000, total), "100%");
        assert_eq!(percent_text(1, 4), "25%");
        assert_eq!(percent_text(1, 3), "33.333%");
    }

    #[test]
    fn a_dark_launch_split_reads_as_its_three_cohorts() {
        let flag = Flag::dark_launch("chat", 5.0, 50.0).unwrap();
        assert_eq!(state_text(&flag), "5% on, 45% dark, 50% off");
        assert_eq!(dark_cohort_text(&flag), Some(("5%".to_owned(), "45%".to_owned())));
        let mut killed = flag;
        killed.enabled = false;
        assert_eq!(state_text(&killed), "KILLED: everyone gets \"off\"");
        assert_eq!(dark_cohort_text(&killed), None);
        killed.off_variant = None;
        assert_eq!(state_text(&killed), "KILLED: everyone gets the caller's default");
    }
}
