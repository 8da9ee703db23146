//! Where shadow candidates run: a few dedicated threads with a bounded queue (closures), or
//! beside the control in the caller's task (futures), with panics caught either way.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Threads running shadow candidates. Few on purpose: a dark launch must not take the
/// application's CPU; when they are busy, shadow runs are skipped, not queued without end.
const SHADOW_THREADS: usize = 2;
/// Candidates waiting for a shadow thread before new ones are skipped.
const SHADOW_QUEUE: usize = 256;

type Job = Box<dyn FnOnce() + Send>;

/// How a shadow candidate ended, as far as the caller waited.
pub(crate) enum Outcome<T> {
    /// Returned (or panicked), after this long.
    Finished(std::thread::Result<T>, Duration),
    /// Still running when the budget ran out.
    OverBudget,
}

/// A candidate queued on the shadow threads.
pub(crate) struct Shadow<T> {
    result: Receiver<(std::thread::Result<T>, Duration)>,
}

impl<T> Shadow<T> {
    /// Waits for the candidate at most `budget`.
    pub(crate) fn wait(self, budget: Duration) -> Outcome<T> {
        match self.result.recv_timeout(budget) {
            Ok((result, took)) => Outcome::Finished(result, took),
            Err(RecvTimeoutError::Timeout) => Outcome::OverBudget,
            // The job was dropped unrun (the pool is gone): nothing to compare.
            Err(RecvTimeoutError::Disconnected) => Outcome::OverBudget,
        }
    }
}

/// Queues `candidate` on a shadow thread; `None` when the queue is full.
pub(crate) fn spawn_shadow<T: Send + 'static>(
    candidate: impl FnOnce() -> T + Send + 'static,
) -> Option<Shadow<T>> {
    let (sender, result) = sync_channel(1);
    let job: Job = Box::new(move || {
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(candidate));
        // The caller may have stopped waiting (over budget): then the result is dropped.
        let _ = sender.send((outcome, started.elapsed()));
    });
    match pool()?.try_send(job) {
        Ok(()) => Some(Shadow { result }),
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => None,
    }
}

/// The process's shadow threads, started on first use.
fn pool() -> Option<&'static SyncSender<Job>> {
    static POOL: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (sender, jobs) = sync_channel::<Job>(SHADOW_QUEUE);
        // A `Mutex` around the receiver: each job goes to exactly one idle thread.
        let jobs = Arc::new(Mutex::new(jobs));
        let mut started = 0;
        for n in 0..SHADOW_THREADS {
            let jobs = Arc::clone(&jobs);
            let spawned = std::thread::Builder::new().name(format!("flag-sdk-shadow-{n}")).spawn(move || {
                loop {
                    let job = match jobs.lock() {
                        Ok(jobs) => jobs.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then_some(sender)
    })
    .as_ref()
}

/// A future whose panic becomes `Err` instead of unwinding into the caller's task.
pub(crate) struct CatchUnwind<F> {
    /// Boxed to poll it through `Pin` without unsafe pin projection; one allocation per
    /// shadow run, next to a whole code path's work.
    inner: Pin<Box<F>>,
    done: bool,
}

impl<F> CatchUnwind<F> {
    pub(crate) fn new(inner: F) -> Self {
        CatchUnwind { inner: Box::pin(inner), done: false }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            // Polled again after finishing (a select loop): stay pending rather than poll a
            // finished future.
            return Poll::Pending;
        }
        let inner = self.inner.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                self.done = true;
                Poll::Ready(Ok(value))
            }
            Err(panic) => {
                self.done = true;
                Poll::Ready(Err(panic))
            }
        }
    }
}
