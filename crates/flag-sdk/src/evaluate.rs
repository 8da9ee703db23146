// HOT PATH: every function here runs inside an application's request. One snapshot load
// per call (by the caller), no allocation, no lock, no shared write; nothing is logged.
//! Evaluation through a client: flag-core's evaluation plus the per-variant count, and the
//! typed helpers over it.

use std::sync::Arc;

use arc_swap::{ArcSwap, Cache, Guard};
use flag_core::{Context, Detail, Evaluation, FlagHandle, FlagRef, LaunchStage, Value};

use crate::shared::Live;

mod sealed {
    pub trait Sealed {}
    impl Sealed for str {}
    impl Sealed for String {}
    impl Sealed for flag_core::FlagHandle {}
}

/// What names a flag for a client's evaluation: its key (`&str`, `&String`) or a
/// [`FlagHandle`] from [`Client::handle`](crate::Client::handle).
pub trait FlagKey: FlagRef + sealed::Sealed {
    /// The flag's key (labels the evaluation count).
    fn flag_key(&self) -> &str;
}

impl FlagKey for str {
    #[inline]
    fn flag_key(&self) -> &str {
        self
    }
}

impl FlagKey for String {
    #[inline]
    fn flag_key(&self) -> &str {
        self
    }
}

impl FlagKey for FlagHandle {
    #[inline]
    fn flag_key(&self) -> &str {
        self.key()
    }
}

impl Live {
    #[inline]
    pub(crate) fn evaluate<F: FlagKey + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> Evaluation<'_> {
        let evaluation = self.snapshot.evaluate(flag, ctx);
        self.counters.record(flag.flag_key(), &evaluation);
        evaluation
    }

    #[inline]
    pub(crate) fn is_enabled<F: FlagKey + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> bool {
        matches!(self.evaluate(flag, ctx).value, Some(Value::Bool(true)))
    }

    #[inline]
    pub(crate) fn launch_stage<F: FlagKey + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> LaunchStage {
        let evaluation = self.evaluate(flag, ctx);
        match (evaluation.value, evaluation.variant) {
            (Some(Value::Bool(true)), _) => LaunchStage::On,
            (_, Some(flag_core::DARK)) => LaunchStage::Dark,
            _ => LaunchStage::Off,
        }
    }

    #[inline]
    pub(crate) fn bool_detail<F: FlagKey + ?Sized>(
        &self,
        flag: &F,
        ctx: &Context<'_>,
        default: bool,
    ) -> Detail<'_, bool> {
        self.evaluate(flag, ctx).into_bool(default)
    }

    #[inline]
    pub(crate) fn number_detail<F: FlagKey + ?Sized>(
        &self,
        flag: &F,
        ctx: &Context<'_>,
        default: f64,
    ) -> Detail<'_, f64> {
        self.evaluate(flag, ctx).into_number(default)
    }
}

/// The client's flags as of one moment: one snapshot load, then any number of evaluations
/// that all see the same flags. Borrowed answers (strings, JSON) live as long as it does.
///
/// Holds the snapshot alive: keep it for the length of a request, not across `.await`s or
/// for long, so that an old snapshot is freed promptly after a change.
#[derive(Debug)]
pub struct Current {
    live: Guard<Arc<Live>>,
}

impl Current {
    pub(crate) fn new(live: Guard<Arc<Live>>) -> Current {
        Current { live }
    }

    /// The full answer: variant, value and reason.
    pub fn evaluate<F: FlagKey + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> Evaluation<'_> {
        self.live.evaluate(flag, ctx)
    }

    /// Whether the flag serves `true` (false for a missing, non-boolean or `dark` flag).
    pub fn is_enabled<F: FlagKey + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> bool {
        self.live.is_enabled(flag, ctx)
    }

    /// The dark-launch cohort of `ctx`.
    pub fn launch_stage<F: FlagKey + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> LaunchStage {
        self.live.launch_stage(flag, ctx)
    }

    /// A boolean flag's value with the reason, or `default`.
    pub fn bool_detail<F: FlagKey + ?Sized>(
        &self,
        flag: &F,
        ctx: &Context<'_>,
        default: bool,
    ) -> Detail<'_, bool> {
        self.live.bool_detail(flag, ctx, default)
    }

    /// A boolean flag's value, or `default`.
    pub fn bool_value<F: FlagKey + ?Sized>(&self, flag: &F, ctx: &Context<'_>, default: bool) -> bool {
        self.live.bool_detail(flag, ctx, default).value
    }

    /// A number flag's value with the reason, or `default`.
    pub fn number_detail<F: FlagKey + ?Sized>(
        &self,
        flag: &F,
        ctx: &Context<'_>,
        default: f64,
    ) -> Detail<'_, f64> {
        self.live.number_detail(flag, ctx, default)
    }

    /// A number flag's value, or `default`.
    pub fn number_value<F: FlagKey + ?Sized>(&self, flag: &F, ctx: &Context<'_>, default: f64) -> f64 {
        self.live.number_detail(flag, ctx, default).value
    }

    /// A string flag's value with the reason, or `default`.
    pub fn string_detail<'a, F: FlagKey + ?Sized>(
        &'a self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a str,
    ) -> Detail<'a, &'a str> {
        self.live.evaluate(flag, ctx).into_string(default)
    }

    /// A string flag's value, or `default`.
    pub fn string_value<'a, F: FlagKey + ?Sized>(
        &'a self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a str,
    ) -> &'a str {
        self.string_detail(flag, ctx, default).value
    }

    /// A JSON flag's value with the reason, or `default`.
    pub fn json_detail<'a, F: FlagKey + ?Sized>(
        &'a self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a serde_json::Value,
    ) -> Detail<'a, &'a serde_json::Value> {
        self.live.evaluate(flag, ctx).into_json(default)
    }

    /// A JSON flag's value, or `default`.
    pub fn json_value<'a, F: FlagKey + ?Sized>(
        &'a self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a serde_json::Value,
    ) -> &'a serde_json::Value {
        self.json_detail(flag, ctx, default).value
    }

    /// The revision these flags are at; see [`Client::revision`](crate::Client::revision).
    pub fn revision(&self) -> u64 {
        self.live.revision
    }

    /// The compiled snapshot, e.g. to list its keys. Evaluations made on it directly are
    /// not counted in the client's metrics.
    pub fn snapshot(&self) -> &flag_core::Snapshot {
        &self.live.snapshot
    }
}

/// A client for one thread's hot loop: arc-swap's `Cache` makes each load one pointer
/// comparison, and evaluations take `&mut self`. Get one with
/// [`Client::cached`](crate::Client::cached), pair it with [`FlagHandle`]s from
/// [`Client::handle`](crate::Client::handle).
///
/// It keeps the last snapshot it saw alive until its next call.
#[derive(Debug)]
pub struct CachedClient {
    cache: Cache<Arc<ArcSwap<Live>>, Arc<Live>>,
}

impl CachedClient {
    pub(crate) fn new(live: Arc<ArcSwap<Live>>) -> CachedClient {
        CachedClient { cache: Cache::new(live) }
    }

    /// See [`Client::is_enabled`](crate::Client::is_enabled).
    #[inline]
    pub fn is_enabled<F: FlagKey + ?Sized>(&mut self, flag: &F, ctx: &Context<'_>) -> bool {
        self.cache.load().is_enabled(flag, ctx)
    }

    /// See [`Client::bool_value`](crate::Client::bool_value).
    #[inline]
    pub fn bool_value<F: FlagKey + ?Sized>(&mut self, flag: &F, ctx: &Context<'_>, default: bool) -> bool {
        self.cache.load().bool_detail(flag, ctx, default).value
    }

    /// See [`Client::number_value`](crate::Client::number_value).
    #[inline]
    pub fn number_value<F: FlagKey + ?Sized>(&mut self, flag: &F, ctx: &Context<'_>, default: f64) -> f64 {
        self.cache.load().number_detail(flag, ctx, default).value
    }

    /// See [`Client::launch_stage`](crate::Client::launch_stage).
    #[inline]
    pub fn launch_stage<F: FlagKey + ?Sized>(&mut self, flag: &F, ctx: &Context<'_>) -> LaunchStage {
        self.cache.load().launch_stage(flag, ctx)
    }
}
