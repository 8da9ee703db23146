//! Where shadow candidates run: for closures, a few dedicated threads behind a short queue;
//! for futures, [`CatchUnwind`] keeps a candidate's panic out of the task polling it.
//!
//! Submitting never blocks: a full queue refuses the job and the caller counts the shadow
//! run as skipped. A job is a plain closure that decides itself, when a thread picks it up,
//! whether it is still wanted (see `dark_launch`): the pool knows nothing of flags.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

/// Threads running shadow candidates. Few on purpose: a dark launch must not take the
/// application's CPU; when they are busy, shadow runs are skipped, not queued without end.
const SHADOW_THREADS: usize = 2;
/// Jobs waiting for a shadow thread before new ones are refused: four per thread. Short on
/// purpose: every queued job is work for a request already answered, and one that waits
/// long is past its budget by the time a thread is free, so it would be dropped anyway.
const SHADOW_QUEUE: usize = 8;

/// Work for a shadow thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The job was not queued (the queue is full, or no shadow thread could be started) and has
/// been dropped unrun.
#[derive(Debug)]
pub(crate) struct Refused;

/// Threads taking jobs from one bounded queue; they stop when the pool is dropped.
struct Pool {
    jobs: SyncSender<Job>,
}

impl Pool {
    /// `None` when not one thread could be started.
    fn start(name: &str, threads: usize, queue: usize) -> Option<Pool> {
        let (sender, jobs) = sync_channel::<Job>(queue);
        // A `Mutex` around the receiver: each job goes to exactly one idle thread.
        let jobs = Arc::new(Mutex::new(jobs));
        let mut started = 0;
        for n in 0..threads {
            let jobs = Arc::clone(&jobs);
            let spawned = std::thread::Builder::new().name(format!("{name}-{n}")).spawn(move || {
                loop {
                    let job = match jobs.lock() {
                        Ok(jobs) => jobs.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    // Jobs catch their candidate's panic themselves; this catches the rest (a
                    // comparator's, a result's `Drop`) so one bad job never costs a thread.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            });
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then_some(Pool { jobs: sender })
    }

    fn submit(&self, job: Job) -> Result<(), Refused> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Refused),
        }
    }
}

/// Queues `job` on the process's shadow threads (started on first use), or refuses it at once.
pub(crate) fn submit(job: Job) -> Result<(), Refused> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| Pool::start("flag-sdk-shadow", SHADOW_THREADS, SHADOW_QUEUE));
    pool.as_ref().ok_or(Refused)?.submit(job)
}

/// A future whose panic becomes `Err` instead of unwinding into the task polling it.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::mpsc::channel;
    use std::time::Duration;

    use super::*;

    /// Far beyond any healthy wait, so a failure is a hang made visible, not a slow machine.
    const PATIENT: Duration = Duration::from_secs(10);

    #[test]
    fn a_full_queue_refuses_the_job_at_once_instead_of_blocking() {
        let pool = Pool::start("shadow-test-full", 1, 1).unwrap();
        let (started, has_started) = channel();
        let (release, released) = channel::<()>();
        pool.submit(Box::new(move || {
            started.send(()).unwrap();
            // Until the test releases it (or drops `release`, failing).
            let _ = released.recv_timeout(PATIENT);
        }))
        .unwrap();
        has_started.recv_timeout(PATIENT).unwrap();

        let (ran, has_run) = channel();
        let queued = ran.clone();
        pool.submit(Box::new(move || queued.send("queued").unwrap())).unwrap();
        // The thread is busy and the one queue slot taken: refused, not waited for.
        assert!(pool.submit(Box::new(move || ran.send("refused").unwrap())).is_err());

        drop(release);
        assert_eq!(has_run.recv_timeout(PATIENT).unwrap(), "queued");
        // The refused job was dropped with its sender: nothing else ever arrives.
        assert!(has_run.recv_timeout(PATIENT).is_err());
    }

    #[test]
    fn a_panicking_job_does_not_take_its_thread_down() {
        let pool = Pool::start("shadow-test-panic", 1, 2).unwrap();
        pool.submit(Box::new(|| panic!("a comparator went wrong"))).unwrap();
        let (ran, has_run) = channel();
        pool.submit(Box::new(move || ran.send(()).unwrap())).unwrap();
        has_run.recv_timeout(PATIENT).unwrap();
    }
}
