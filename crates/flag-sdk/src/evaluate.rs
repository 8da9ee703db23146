// HOT PATH: every function here runs inside an application's request. One snapshot load
// per call (by the caller), no allocation, no lock, no shared write; nothing is logged.
//! Evaluation through a client: flag-core's evaluation plus the per-variant count, and the
//! holders that lend a snapshot to flag-core's typed getters ([`Evaluate`]): [`Current`]
//! (one moment's flags) and [`CachedClient`] (a hot loop's).

use std::sync::Arc;

use arc_swap::{ArcSwap, Cache, Guard};
use flag_core::{Context, Evaluate, Evaluation, FlagRef, Outcome, Question};

use crate::shared::Live;

impl Live {
    /// flag-core's evaluation, counted for metrics under the variant it served.
    #[inline]
    pub(crate) fn evaluate<F: FlagRef + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> Evaluation<'_> {
        let (evaluation, served) = self.snapshot.evaluate_indexed(flag, ctx);
        self.counters.record(served);
        evaluation
    }

    /// Counts an outcome and/or a latency (µs) for the variant `ctx` gets now. Re-evaluated
    /// but not counted as an evaluation: the application's own evaluation was.
    #[inline]
    pub(crate) fn record<F: FlagRef + ?Sized>(
        &self,
        flag: &F,
        ctx: &Context<'_>,
        outcome: Option<Outcome>,
        latency_us: Option<u64>,
    ) {
        let (_, served) = self.snapshot.evaluate_indexed(flag, ctx);
        if let Some(slot) = self.counters.variant_slot(served) {
            self.counters.health().record(slot, outcome, latency_us);
        }
    }

    /// [`record`](Self::record) for a variant known by name (a dark launch's cohort).
    pub(crate) fn record_variant(&self, key: &str, variant: &str, outcome: Outcome, latency_us: u64) {
        if let Some(slot) = self.counters.slot_by_name(key, variant) {
            self.counters.health().record(slot, Some(outcome), Some(latency_us));
        }
    }
}

/// A duration in whole microseconds, saturating.
#[inline]
pub(crate) fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl<'a> Evaluate<'a> for &'a Live {
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

/// The client's flags as of one moment: one snapshot load, then any number of evaluations
/// that all see the same flags. It lends the snapshot: the getters of [`Evaluate`] answer
/// strings and JSON borrowed from it, as long as it lives, without copying.
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
    pub fn evaluate<F: FlagRef + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> Evaluation<'_> {
        self.live.evaluate(flag, ctx)
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

    /// The definition of flag `key` these flags were compiled from (its rules, version and
    /// metadata), for callers that explain an answer: e.g. whether a flag that served its
    /// default has any targeting at all. A lookup by key; not for hot loops.
    pub fn definition(&self, key: &str) -> Option<&flag_core::Flag> {
        self.live.model.flags.get(key).map(|flag| &**flag)
    }
}

impl<'a> Evaluate<'a> for &'a Current {
    type Out<Q: Question<'a>> = Q::Answer<'a>;

    #[inline]
    fn ask<F: FlagRef + ?Sized, Q: Question<'a>>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        question: Q,
    ) -> Q::Answer<'a> {
        (&**self.live).ask(flag, ctx, question)
    }
}

/// A client for one thread's hot loop: arc-swap's `Cache` makes each load one pointer
/// comparison, and evaluations take `&mut self` (the getters of [`Evaluate`], whose
/// borrowed answers live as long as that borrow). Get one with
/// [`Client::cached`](crate::Client::cached), pair it with
/// [`FlagHandle`](flag_core::FlagHandle)s from [`Client::handle`](crate::Client::handle).
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

    /// [`Client::record_outcome`](crate::Client::record_outcome) for hot loops: the snapshot
    /// is this holder's (one pointer check), not loaded again.
    #[inline]
    pub fn record_outcome<F: FlagRef + ?Sized>(&mut self, flag: &F, ctx: &Context<'_>, outcome: Outcome) {
        self.cache.load().record(flag, ctx, Some(outcome), None);
    }

    /// [`Client::record_latency`](crate::Client::record_latency) for hot loops.
    #[inline]
    pub fn record_latency<F: FlagRef + ?Sized>(
        &mut self,
        flag: &F,
        ctx: &Context<'_>,
        latency: std::time::Duration,
    ) {
        self.cache.load().record(flag, ctx, None, Some(micros(latency)));
    }
}

impl<'a> Evaluate<'a> for &'a mut CachedClient {
    type Out<Q: Question<'a>> = Q::Answer<'a>;

    #[inline]
    fn ask<F: FlagRef + ?Sized, Q: Question<'a>>(
        self,
        flag: &F,
        ctx: &Context<'_>,
        question: Q,
    ) -> Q::Answer<'a> {
        let live: &'a Arc<Live> = self.cache.load();
        (&**live).ask(flag, ctx, question)
    }
}
