//! The typed getters, defined once: [`Evaluate`], which every holder of a snapshot
//! implements (this crate's [`Snapshot`]; the SDK's client, its `Current` and its
//! `CachedClient`), and the [`Question`] each getter asks.
//!
//! A holder provides one method, [`Evaluate::ask`]: evaluate the flag on its snapshot and
//! let the question read the answer. Everything else is provided here, so a new getter is
//! one provided method (and its question), and a new holder is one `impl`.
//!
//! Why questions: a holder that keeps its snapshot while it is borrowed (a `&Snapshot`)
//! lends borrowed answers, `&str` and `&serde_json::Value` straight from the snapshot. A
//! holder whose snapshot may be swapped out and freed as soon as the call returns (the SDK's
//! `Client`: one lock-free load per call, released at its end) cannot, so it answers with
//! [`Question::Owned`] — the same answer copied. Each question knows both forms; the
//! holder's [`Evaluate::Out`] picks one.
//!
//! Not marked as the hot path, but on it: every getter is `#[inline]` and reaches
//! [`Snapshot::evaluate`] through exactly one `ask`, without allocating. The one exception
//! is [`Question::into_owned`] of strings, JSON and details, which copies, and which only
//! holders that cannot lend their snapshot call.

use crate::answer::{Detail, Evaluation, OwnedDetail};
use crate::dark_launch::{DARK, LaunchStage};
use crate::evaluate::{FlagRef, Snapshot};
use crate::value::{Context, Value};

/// One typed reading of an evaluation, with the caller's default (borrowed for `'d`).
pub trait Question<'d>: Sized {
    /// The answer while the snapshot is lent for `'s`: it may borrow from it.
    type Answer<'s>
    where
        'd: 's;
    /// The same answer borrowing nothing, for holders that cannot lend their snapshot.
    type Owned;

    /// Reads `evaluation`.
    fn answer<'s>(self, evaluation: Evaluation<'s>) -> Self::Answer<'s>
    where
        'd: 's;

    /// `answer`, borrowing nothing.
    fn into_owned<'s>(answer: Self::Answer<'s>) -> Self::Owned
    where
        'd: 's;
}

/// Something that evaluates flags: a [`Snapshot`] or a holder of one. Implemented for
/// references (`&Snapshot`, `&mut CachedClient`, …), so that getters can borrow answers
/// for as long as the holder is borrowed, whether it is borrowed shared or mutably.
///
/// Bring it into scope (`use flag_core::Evaluate;`, or `flag_sdk::Evaluate`) to call the
/// getters. `Out<Q>` is the question's answer for every holder that lends its snapshot,
/// and for the SDK's `Client` its owned form: `bool`, `f64` and [`LaunchStage`] either way;
/// `&str` or `String`; `&serde_json::Value` or `serde_json::Value`; [`Detail`] or
/// [`OwnedDetail`].
pub trait Evaluate<'a>: Sized {
    /// What a getter asking `Q` answers: [`Question::Answer`] borrowed for `'a`, or
    /// [`Question::Owned`].
    type Out<Q: Question<'a>>;

    /// Evaluates `flag` for `ctx` and answers `question` about it. The one method a holder
    /// implements: one snapshot load, one evaluation.
    fn ask<F: FlagRef + ?Sized, Q: Question<'a>>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        question: Q,
    ) -> Self::Out<Q>;

    /// Whether the flag serves `true` for `ctx`: false for a missing or non-boolean flag
    /// and for the `dark` cohort of a dark launch.
    // `self` is a reference (`&Snapshot`, `&mut CachedClient`), as `is_*` methods take.
    #[allow(clippy::wrong_self_convention)]
    #[inline]
    fn is_enabled<F: FlagRef + ?Sized>(self, flag: &F, ctx: &Context<'_>) -> Self::Out<IsEnabled> {
        self.ask(flag, ctx, IsEnabled)
    }

    /// The dark-launch cohort of `ctx` (`Off` for a missing or killed flag).
    #[inline]
    fn launch_stage<F: FlagRef + ?Sized>(self, flag: &F, ctx: &Context<'_>) -> Self::Out<Stage> {
        self.ask(flag, ctx, Stage)
    }

    /// A boolean flag's value, or `default` (missing flag, other type, evaluation error).
    #[inline]
    fn bool_value<F: FlagRef + ?Sized>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        default: bool,
    ) -> Self::Out<BoolValue> {
        self.ask(flag, ctx, BoolValue(default))
    }

    /// A number flag's value, or `default`.
    #[inline]
    fn number_value<F: FlagRef + ?Sized>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        default: f64,
    ) -> Self::Out<NumberValue> {
        self.ask(flag, ctx, NumberValue(default))
    }

    /// A string flag's value, or `default`.
    #[inline]
    fn string_value<F: FlagRef + ?Sized>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a str,
    ) -> Self::Out<StringValue<'a>> {
        self.ask(flag, ctx, StringValue(default))
    }

    /// A JSON flag's value, or `default`.
    #[inline]
    fn json_value<F: FlagRef + ?Sized>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a serde_json::Value,
    ) -> Self::Out<JsonValue<'a>> {
        self.ask(flag, ctx, JsonValue(default))
    }

    /// A boolean flag's value with the variant and the reason, or `default`.
    #[inline]
    fn bool_detail<F: FlagRef + ?Sized>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        default: bool,
    ) -> Self::Out<BoolDetail> {
        self.ask(flag, ctx, BoolDetail(default))
    }

    /// A number flag's value with the variant and the reason, or `default`.
    #[inline]
    fn number_detail<F: FlagRef + ?Sized>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        default: f64,
    ) -> Self::Out<NumberDetail> {
        self.ask(flag, ctx, NumberDetail(default))
    }

    /// A string flag's value with the variant and the reason, or `default`.
    #[inline]
    fn string_detail<F: FlagRef + ?Sized>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a str,
    ) -> Self::Out<StringDetail<'a>> {
        self.ask(flag, ctx, StringDetail(default))
    }

    /// A JSON flag's value with the variant and the reason, or `default`.
    #[inline]
    fn json_detail<F: FlagRef + ?Sized>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a serde_json::Value,
    ) -> Self::Out<JsonDetail<'a>> {
        self.ask(flag, ctx, JsonDetail(default))
    }
}

impl<'a> Evaluate<'a> for &'a Snapshot {
    type Out<Q: Question<'a>> = Q::Answer<'a>;

    #[inline]
    fn ask<F: FlagRef + ?Sized, Q: Question<'a>>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        question: Q,
    ) -> Q::Answer<'a> {
        question.answer(self.evaluate(flag, ctx))
    }
}

/// Defines a question whose answer borrows nothing, so both forms are the same.
macro_rules! copy_question {
    ($(#[$doc:meta])* $name:ident $(($default:ty))? => $answer:ty, |$this:ident, $evaluation:ident| $read:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name $((pub $default))?;

        impl<'d> Question<'d> for $name {
            type Answer<'s> = $answer where 'd: 's;
            type Owned = $answer;

            #[inline]
            fn answer<'s>(self, $evaluation: Evaluation<'s>) -> $answer
            where
                'd: 's,
            {
                let $this = self;
                $read
            }

            #[inline]
            fn into_owned<'s>(answer: $answer) -> $answer
            where
                'd: 's,
            {
                answer
            }
        }
    };
}

copy_question!(
    /// [`Evaluate::is_enabled`].
    IsEnabled => bool,
    |_this, evaluation| matches!(evaluation.value, Some(Value::Bool(true)))
);
copy_question!(
    /// [`Evaluate::launch_stage`].
    Stage => LaunchStage,
    |_this, evaluation| match (evaluation.value, evaluation.variant) {
        (Some(Value::Bool(true)), _) => LaunchStage::On,
        (_, Some(DARK)) => LaunchStage::Dark,
        _ => LaunchStage::Off,
    }
);
copy_question!(
    /// [`Evaluate::bool_value`], with its default.
    BoolValue(bool) => bool,
    |this, evaluation| evaluation.into_bool(this.0).value
);
copy_question!(
    /// [`Evaluate::number_value`], with its default.
    NumberValue(f64) => f64,
    |this, evaluation| evaluation.into_number(this.0).value
);

/// [`Evaluate::string_value`], with its default.
#[derive(Clone, Copy, Debug)]
pub struct StringValue<'d>(pub &'d str);

impl<'d> Question<'d> for StringValue<'d> {
    type Answer<'s>
        = &'s str
    where
        'd: 's;
    type Owned = String;

    #[inline]
    fn answer<'s>(self, evaluation: Evaluation<'s>) -> &'s str
    where
        'd: 's,
    {
        evaluation.into_string(self.0).value
    }

    #[inline]
    fn into_owned<'s>(answer: &'s str) -> String
    where
        'd: 's,
    {
        answer.to_owned()
    }
}

/// [`Evaluate::json_value`], with its default.
#[derive(Clone, Copy, Debug)]
pub struct JsonValue<'d>(pub &'d serde_json::Value);

impl<'d> Question<'d> for JsonValue<'d> {
    type Answer<'s>
        = &'s serde_json::Value
    where
        'd: 's;
    type Owned = serde_json::Value;

    #[inline]
    fn answer<'s>(self, evaluation: Evaluation<'s>) -> &'s serde_json::Value
    where
        'd: 's,
    {
        evaluation.into_json(self.0).value
    }

    #[inline]
    fn into_owned<'s>(answer: &'s serde_json::Value) -> serde_json::Value
    where
        'd: 's,
    {
        answer.clone()
    }
}

/// Defines a question answering a [`Detail`], owned as an [`OwnedDetail`].
macro_rules! detail_question {
    ($(#[$doc:meta])* $name:ident $(<$d:lifetime>)? ($default:ty) => $value:ty, $owned:ty, $read:ident, $to_owned:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name $(<$d>)? (pub $default);

        impl<'d> Question<'d> for $name $(<$d>)? {
            type Answer<'s> = Detail<'s, $value> where 'd: 's;
            type Owned = OwnedDetail<$owned>;

            #[inline]
            fn answer<'s>(self, evaluation: Evaluation<'s>) -> Detail<'s, $value>
            where
                'd: 's,
            {
                evaluation.$read(self.0)
            }

            #[inline]
            fn into_owned<'s>(answer: Detail<'s, $value>) -> OwnedDetail<$owned>
            where
                'd: 's,
            {
                answer.into_owned($to_owned)
            }
        }
    };
}

detail_question!(
    /// [`Evaluate::bool_detail`], with its default.
    BoolDetail(bool) => bool, bool, into_bool, |value| value
);
detail_question!(
    /// [`Evaluate::number_detail`], with its default.
    NumberDetail(f64) => f64, f64, into_number, |value| value
);
detail_question!(
    /// [`Evaluate::string_detail`], with its default.
    StringDetail<'d>(&'d str) => &'s str, String, into_string, str::to_owned
);
detail_question!(
    /// [`Evaluate::json_detail`], with its default.
    JsonDetail<'d>(&'d serde_json::Value) => &'s serde_json::Value, serde_json::Value, into_json, Clone::clone
);
