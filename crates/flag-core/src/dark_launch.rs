//! The dark-launch convention: a boolean flag split over `on`, `dark` and `off`.
//!
//! `on` users see the new path; `dark` users exercise it invisibly (their value is `false`,
//! so [`Evaluate::is_enabled`](crate::Evaluate::is_enabled) is false for them) while an SDK helper shadow-runs it; `off`
//! users are untouched. The split lists `on` first, then `dark`, so raising the percentage
//! moves exactly the users whose new path has already been exercised from `dark` to `on`.

use crate::model::{Bucketing, Flag, Metadata, Serve, Split, Variant, Weight};
use crate::murmur::TOTAL_WEIGHT;
use crate::value::Value;

/// Variant name of the cohort that sees the new path.
pub const ON: &str = "on";
/// Variant name of the cohort that runs the new path in the shadow.
pub const DARK: &str = "dark";
/// Variant name of everyone else.
pub const OFF: &str = "off";

/// Which cohort of a dark launch a context is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaunchStage {
    /// Sees the new path.
    On,
    /// Runs the new path in the shadow; sees the old one.
    Dark,
    /// Runs and sees the old path only (also: a missing flag, a killed one, and one that
    /// answers the caller's default).
    Off,
}

/// A percentage that cannot become a split.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RolloutError {
    /// Not a number from 0 to 100.
    #[error("expected a percentage from 0 to 100, found {0}")]
    OutOfRange(f64),
    /// Above 0 but below a split's smallest step (0.001 %): it would round to nobody.
    #[error(
        "{0} % is below a split's smallest step of 0.001 % and would round to 0 %; give 0, or at least 0.001"
    )]
    RoundsToZero(f64),
    /// Below 100 but within 0.001 % of it: it would round to everyone.
    #[error(
        "{0} % is within a split's smallest step (0.001 %) of 100 % and would round to 100 %; give 100, or at most 99.999"
    )]
    RoundsToAll(f64),
    /// A dark percentage above the rollout percentage by less than one step: the dark
    /// cohort asked for would round to nobody.
    #[error(
        "the dark percentage ({dark}) is less than 0.001 % above the rollout percentage ({percent}), so nobody would be dark; give --dark equal to --percent for no dark cohort"
    )]
    DarkRoundsToZero {
        /// The rollout percentage.
        percent: f64,
        /// The dark percentage.
        dark: f64,
    },
    /// The dark percentage counts the `on` users too, so it cannot be smaller.
    #[error(
        "expected the dark percentage ({dark}) to be at least the rollout percentage ({percent}): it includes the users who see the new path"
    )]
    DarkBelowPercent {
        /// The rollout percentage.
        percent: f64,
        /// The dark percentage.
        dark: f64,
    },
}

/// A percentage in split weight units (1/1000 %), rounded to the nearest unit.
///
/// A percentage that is not 0 but below one unit, or not 100 but within one unit of it, is
/// refused rather than rounded: `--percent 0.0001` meaning "nobody" (or `99.9999` meaning
/// "everyone") is never what was asked.
pub fn percent_to_weight(percent: f64) -> Result<u32, RolloutError> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(RolloutError::OutOfRange(percent));
    }
    if percent > 0.0 && percent < 0.001 {
        return Err(RolloutError::RoundsToZero(percent));
    }
    if percent < 100.0 && percent > 99.999 {
        return Err(RolloutError::RoundsToAll(percent));
    }
    Ok((percent * 1000.0).round() as u32)
}

impl Split {
    /// `percent` % get `on`, the users up to `dark_percent` % get `dark`, the rest `off`.
    /// `Split::dark_launch(5.0, 50.0)`: 5 % on, the next 45 % dark, 50 % off.
    pub fn dark_launch(percent: f64, dark_percent: f64) -> Result<Split, RolloutError> {
        let on = percent_to_weight(percent)?;
        let reach = percent_to_weight(dark_percent)?;
        if reach < on || dark_percent < percent {
            return Err(RolloutError::DarkBelowPercent { percent, dark: dark_percent });
        }
        if reach == on && dark_percent > percent {
            return Err(RolloutError::DarkRoundsToZero { percent, dark: dark_percent });
        }
        let weight = |variant: &str, weight: u32| Weight { variant: variant.into(), weight: weight.into() };
        Ok(Split {
            by: None,
            salt: None,
            weights: vec![weight(ON, on), weight(DARK, reach - on), weight(OFF, TOTAL_WEIGHT - reach)],
            bucketing: Bucketing::default(),
        })
    }

    /// If this split has the dark-launch shape, its (percent, dark percent) of the split's
    /// own total (100 000 for the splits rollouts write, but a file may use any).
    ///
    /// A dark share above 0 is always one an operator asked for: only an explicit dark
    /// percentage (or a flag written whole) makes one, so a rollout change keeps it, and a
    /// split without one has nobody dark.
    pub fn dark_launch_percentages(&self) -> Option<(f64, f64)> {
        let [on, dark, off] = self.weights.as_slice() else {
            return None;
        };
        let shaped = on.variant == ON && dark.variant == DARK && off.variant == OFF;
        let total = self.total_weight();
        // Multiplied before dividing, so a total of 100 000 gives exactly `weight / 1000`.
        let percent = |weight: i64| weight.saturating_mul(100) as f64 / total as f64;
        (shaped && total > 0).then(|| (percent(on.weight), percent(on.weight.saturating_add(dark.weight))))
    }
}

impl Flag {
    /// A dark-launch flag: see [`Split::dark_launch`].
    pub fn dark_launch(key: &str, percent: f64, dark_percent: f64) -> Result<Flag, RolloutError> {
        let variant = |name: &str, on: bool| Variant { name: name.into(), value: Value::Bool(on) };
        Ok(Flag {
            key: key.into(),
            description: String::new(),
            variants: vec![variant(ON, true), variant(DARK, false), variant(OFF, false)],
            enabled: true,
            off_variant: Some(OFF.into()),
            rules: Vec::new(),
            default: Serve::Split(Split::dark_launch(percent, dark_percent)?),
            prerequisites: Vec::new(),
            version: 0,
            metadata: Metadata::default(),
        })
    }

    /// A plain percentage rollout: the dark-launch shape with no dark cohort, so a dark
    /// launch can be added later without moving anyone.
    pub fn rollout(key: &str, percent: f64) -> Result<Flag, RolloutError> {
        Flag::dark_launch(key, percent, percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentage_below_one_step_is_refused_not_rounded_to_nobody() {
        assert_eq!(percent_to_weight(0.0), Ok(0));
        assert_eq!(percent_to_weight(0.001), Ok(1));
        assert_eq!(percent_to_weight(12.5), Ok(12_500));
        assert_eq!(percent_to_weight(100.0), Ok(100_000));
        assert_eq!(percent_to_weight(0.0001), Err(RolloutError::RoundsToZero(0.0001)));
        assert_eq!(percent_to_weight(0.0009), Err(RolloutError::RoundsToZero(0.0009)));
        assert_eq!(percent_to_weight(99.9999), Err(RolloutError::RoundsToAll(99.9999)));
        assert!(matches!(percent_to_weight(f64::NAN), Err(RolloutError::OutOfRange(_))));
        let message = RolloutError::RoundsToZero(0.0001).to_string();
        assert!(message.contains("0.0001 %") && message.contains("at least 0.001"), "{message}");
    }

    #[test]
    fn a_dark_cohort_that_would_round_to_nobody_is_refused() {
        let error = Split::dark_launch(5.0, 5.0004).unwrap_err();
        assert_eq!(error, RolloutError::DarkRoundsToZero { percent: 5.0, dark: 5.0004 });
        assert!(Split::dark_launch(5.0, 4.9999).is_err(), "dark counts the on users");
        assert_eq!(Split::dark_launch(5.0, 5.0).unwrap().dark_launch_percentages(), Some((5.0, 5.0)));
    }

    #[test]
    fn percentages_are_of_the_split_s_own_total() {
        let mut split = Split::dark_launch(5.0, 50.0).unwrap();
        for (weight, share) in split.weights.iter_mut().zip([1, 9, 10]) {
            weight.weight = share;
        }
        assert_eq!(split.dark_launch_percentages(), Some((5.0, 50.0)));
        for weight in &mut split.weights {
            weight.weight = 0;
        }
        assert_eq!(split.dark_launch_percentages(), None, "no total, no percentages");
    }

    #[test]
    fn percentages_of_100_000_are_the_weights_in_thousandths() {
        for on in (0..=100_000).step_by(7) {
            let split = Split::dark_launch(f64::from(on) / 1000.0, 100.0).unwrap();
            assert_eq!(split.dark_launch_percentages(), Some((f64::from(on) / 1000.0, 100.0)));
        }
    }
}
