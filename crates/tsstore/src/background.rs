//! `Background`: the engine's one set of worker threads, shared by every
//! open store, driven by a deadline heap.
//!
//! Why: a thread per store (an `Interval` flusher per ring, a framer per
//! compressed store) made 1 000 stores cost 1 004 threads, and the threads'
//! stacks and descriptors capped a gateway near 2 500 stores. Stores now
//! register *jobs*: a flusher is a job due every interval, a framer a job
//! due when an insert wakes it. A fixed number of workers (`workers`, at
//! most `MAX_WORKERS`) runs whatever is due, earliest deadline first, so
//! thread count does not grow with stores.
//!
//! Guarantees: a job never runs on two workers at once (a wake while it
//! runs makes it run again right after); `JobHandle::stop` returns only
//! once the job is not running and will not run again, so a store that
//! stops its jobs before closing its files is never written behind its
//! back. A job that panics is not run again until woken; the worker lives
//! on. Deadlines are "not before": when every worker is busy, due jobs
//! wait their turn (the flush interval is a floor, not a promise).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::lock::mutex_lock;

/// Most workers a process may ask for.
pub const MAX_WORKERS: usize = 16;
/// Workers when nobody says otherwise: two syncs or framings may run
/// while a third waits, which keeps a small gateway's disk busy without
/// owning its cores.
pub const DEFAULT_WORKERS: usize = 3;

/// Workers the pool starts with; read when the first job registers.
static WANTED_WORKERS: AtomicUsize = AtomicUsize::new(DEFAULT_WORKERS);

/// Sets the number of background workers (1 to `MAX_WORKERS`); takes
/// effect only before the first store opens (the pool starts then).
/// Returns the number the pool has or will have.
pub fn set_background_workers(n: usize) -> usize {
    let n = n.clamp(1, MAX_WORKERS);
    match POOL.get() {
        Some(pool) => pool.workers,
        None => {
            WANTED_WORKERS.store(n, Ordering::Relaxed);
            n
        }
    }
}

/// Background worker threads running now (0 before the first store opens).
pub fn background_threads() -> usize {
    POOL.get().map_or(0, |p| p.workers)
}

/// Something a store runs in the background.
pub(crate) trait Job: Send + Sync + 'static {
    /// Does one round of work; returns when to run again by itself
    /// (`None`: only when woken).
    fn run(&self) -> Option<Duration>;
}

/// A registered job: wake it, or stop it for good. Dropping the handle
/// stops the job.
pub(crate) struct JobHandle {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").finish_non_exhaustive()
    }
}

struct Entry {
    /// Taken out when the job stops, so what it holds (a store's files and
    /// their lock) goes then, not when a stale heap item comes up.
    job: Mutex<Option<Arc<dyn Job>>>,
    state: Mutex<EntryState>,
    /// Signalled when a round ends (for `stop`).
    idle: Condvar,
}

#[derive(Default)]
struct EntryState {
    /// The heap item that will run it, if any (deadline, sequence).
    scheduled: Option<(Instant, u64)>,
    running: bool,
    /// Woken while running: run again no later than this.
    again: Option<Instant>,
    stopped: bool,
}

struct Item {
    when: Instant,
    seq: u64,
    entry: Arc<Entry>,
}

impl PartialEq for Item {
    fn eq(&self, other: &Item) -> bool {
        (self.when, self.seq) == (other.when, other.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Item) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item {
    fn cmp(&self, other: &Item) -> std::cmp::Ordering {
        (self.when, self.seq).cmp(&(other.when, other.seq))
    }
}

struct Pool {
    /// Due items, earliest first. Items of stopped or rescheduled jobs
    /// are dropped when they come up (their `seq` no longer matches).
    heap: Mutex<BinaryHeap<Reverse<Item>>>,
    due: Condvar,
    workers: usize,
}

static POOL: OnceLock<Pool> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(0);

fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let workers = WANTED_WORKERS.load(Ordering::Relaxed).clamp(1, MAX_WORKERS);
        for i in 0..workers {
            // A worker that cannot start leaves the others to do its share;
            // with none at all, jobs run inline (`schedule`).
            let _ = std::thread::Builder::new()
                .name(format!("tsstore-bg-{i}"))
                .spawn(|| work(pool()));
        }
        Pool {
            heap: Mutex::new(BinaryHeap::new()),
            due: Condvar::new(),
            workers,
        }
    })
}

/// Registers `job`, first due after `first` (`None`: when first woken).
pub(crate) fn register(job: impl Job, first: Option<Duration>) -> JobHandle {
    let entry = Arc::new(Entry {
        job: Mutex::new(Some(Arc::new(job))),
        state: Mutex::new(EntryState::default()),
        idle: Condvar::new(),
    });
    if let Some(after) = first {
        schedule(&entry, Instant::now() + after);
    }
    JobHandle { entry }
}

/// Wakes a job without owning it (dropping it stops nothing): what a job's
/// own state keeps, so that the job can hold that state weakly.
#[derive(Clone)]
pub(crate) struct Waker {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waker").finish_non_exhaustive()
    }
}

impl Waker {
    /// Runs the job as soon as a worker is free (again right after the
    /// round under way, if one is).
    pub(crate) fn wake(&self) {
        schedule(&self.entry, Instant::now());
    }
}

impl JobHandle {
    pub(crate) fn waker(&self) -> Waker {
        Waker {
            entry: Arc::clone(&self.entry),
        }
    }

    /// Stops the job: returns once no round is running and none will.
    /// Must not be called from the job itself.
    pub(crate) fn stop(&self) {
        let mut state = mutex_lock(&self.entry.state);
        state.stopped = true;
        state.scheduled = None;
        state.again = None;
        while state.running {
            state = self
                .entry
                .idle
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(state);
        let job = mutex_lock(&self.entry.job).take();
        drop(job);
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes `entry` due at `when` (or earlier, if it already is).
fn schedule(entry: &Arc<Entry>, when: Instant) {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    {
        let mut state = mutex_lock(&entry.state);
        if state.stopped {
            return;
        }
        if state.running {
            state.again = Some(state.again.map_or(when, |a| a.min(when)));
            return;
        }
        if state.scheduled.is_some_and(|(at, _)| at <= when) {
            return;
        }
        state.scheduled = Some((when, seq));
    }
    // Pushed without the entry's lock: workers take the heap's lock first.
    let pool = pool();
    mutex_lock(&pool.heap).push(Reverse(Item {
        when,
        seq,
        entry: Arc::clone(entry),
    }));
    pool.due.notify_one();
}

/// A worker: runs due jobs, earliest first, for the life of the process.
fn work(pool: &'static Pool) {
    loop {
        let item = {
            let mut heap = mutex_lock(&pool.heap);
            loop {
                let now = Instant::now();
                match heap.peek() {
                    Some(Reverse(top)) if top.when <= now => break heap.pop(),
                    Some(Reverse(top)) => {
                        let wait = top.when - now;
                        heap = pool
                            .due
                            .wait_timeout(heap, wait)
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .0;
                    }
                    None => {
                        heap = pool
                            .due
                            .wait(heap)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                    }
                }
            }
        };
        let Some(Reverse(item)) = item else { continue };
        run_item(item);
    }
}

fn run_item(item: Item) {
    let entry = item.entry;
    {
        let mut state = mutex_lock(&entry.state);
        if state.stopped || state.running || state.scheduled != Some((item.when, item.seq)) {
            return; // stale: stopped, or due again at another time
        }
        state.scheduled = None;
        state.running = true;
    }
    let job = mutex_lock(&entry.job).clone();
    let next = job.and_then(|job| {
        // Dropped before the round is marked over: `stop` then finds no
        // one holding the job.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run())).unwrap_or(None)
    });
    let again = {
        let mut state = mutex_lock(&entry.state);
        state.running = false;
        let own = next.map(|d| Instant::now() + d);
        let again = match (own, state.again.take()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        entry.idle.notify_all();
        again.filter(|_| !state.stopped)
    };
    if let Some(when) = again {
        schedule(&entry, when);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    struct Count(Arc<AtomicU32>, Option<Duration>);
    impl Job for Count {
        fn run(&self) -> Option<Duration> {
            self.0.fetch_add(1, Ordering::SeqCst);
            self.1
        }
    }

    fn wait_for(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_woken_job_runs_and_a_stopped_one_never_again() {
        let n = Arc::new(AtomicU32::new(0));
        let job = register(Count(Arc::clone(&n), None), None);
        job.waker().wake();
        wait_for(|| n.load(Ordering::SeqCst) >= 1);
        job.stop();
        let at_stop = n.load(Ordering::SeqCst);
        job.waker().wake();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(n.load(Ordering::SeqCst), at_stop);
    }

    #[test]
    fn a_periodic_job_repeats_and_threads_do_not_grow_with_jobs() {
        let counts: Vec<_> = (0..200).map(|_| Arc::new(AtomicU32::new(0))).collect();
        let jobs: Vec<_> = counts
            .iter()
            .map(|c| {
                register(
                    Count(Arc::clone(c), Some(Duration::from_millis(5))),
                    Some(Duration::ZERO),
                )
            })
            .collect();
        wait_for(|| counts.iter().all(|c| c.load(Ordering::SeqCst) >= 3));
        assert!(background_threads() <= MAX_WORKERS);
        drop(jobs);
    }

    /// Stop waits for a running round: nothing runs after it returns.
    #[test]
    fn stop_waits_for_the_round_under_way() {
        struct Slow(Arc<AtomicU32>);
        impl Job for Slow {
            fn run(&self) -> Option<Duration> {
                self.0.store(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
                self.0.store(2, Ordering::SeqCst);
                None
            }
        }
        let state = Arc::new(AtomicU32::new(0));
        let job = register(Slow(Arc::clone(&state)), Some(Duration::ZERO));
        wait_for(|| state.load(Ordering::SeqCst) == 1);
        job.stop();
        assert_eq!(state.load(Ordering::SeqCst), 2);
    }
}
