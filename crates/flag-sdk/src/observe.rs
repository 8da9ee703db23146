// HOT PATH: `Observation`'s creation and drop run inside an application's request: one
// clock read each, one snapshot load, no allocation, no lock, no shared write.
//! [`Observation`]: a unit of work's outcome and latency, recorded when it ends.

use std::time::Instant;

use arc_swap::ArcSwap;
use flag_core::{Context, FlagRef, Outcome};

use crate::evaluate::micros;
use crate::shared::Live;

/// A unit of work watched for a flag, from [`Client::observe`](crate::Client::observe).
/// When it is dropped it records, for the variant the context gets at that moment, its
/// latency since creation and an outcome: an error if [`fail`](Self::fail) was called or
/// the thread is panicking, a success otherwise.
#[derive(Debug)]
#[must_use = "dropped at once, it records a unit of work that took no time"]
pub struct Observation<'a, F: FlagRef + ?Sized> {
    live: &'a ArcSwap<Live>,
    flag: &'a F,
    ctx: &'a Context<'a>,
    started: Instant,
    failed: bool,
}

impl<'a, F: FlagRef + ?Sized> Observation<'a, F> {
    pub(crate) fn new(live: &'a ArcSwap<Live>, flag: &'a F, ctx: &'a Context<'a>) -> Self {
        Observation { live, flag, ctx, started: Instant::now(), failed: false }
    }

    /// The unit of work failed: records it as an error now.
    pub fn fail(mut self) {
        self.failed = true;
    }
}

impl<F: FlagRef + ?Sized> Drop for Observation<'_, F> {
    fn drop(&mut self) {
        let outcome = if self.failed || std::thread::panicking() { Outcome::Error } else { Outcome::Success };
        let took = micros(self.started.elapsed());
        self.live.load().record(self.flag, self.ctx, Some(outcome), Some(took));
    }
}
