//! The log writer: producers append finished lines to one shared buffer, and one thread
//! writes what has accumulated with a single `write_all` per batch. A request pays for a
//! lock and a copy, not for a `write(2)` or for waking a thread per line.
//!
//! One buffer under a `std::sync::Mutex`, not one buffer per thread: the lock is held for a
//! `memcpy` of a line (uncontended, two atomic operations; contended, a few hundred
//! nanoseconds), and in exchange lines come out in the order they were logged across all
//! threads, which the audit trail is read in; per-thread buffers would have to be merged
//! (by time, with ties) and would strand the lines of a thread that goes quiet until
//! something flushed it.
//!
//! The writer thread sleeps without a timeout while the buffer is empty, so an idle
//! gateway never wakes up for logging. The first line of a batch wakes it; it then lingers
//! for [`BATCH_WINDOW`] to collect more, unless a WARN or ERROR line, a buffer past
//! [`HIGH_WATER`], a `flush` or shutdown calls it sooner. Producers signal the condition
//! variable only on those transitions (at most twice per batch), never per line: each
//! `notify` is a futex system call.
//!
//! Why not `tracing-appender`'s non-blocking writer: it sends every line through a channel
//! as its own message, and a line costs the request thread that much more. Measured with
//! the same formatter in front of both (`cargo bench -p ticket-gateway --bench readers --
//! "access log event"`, three alternated runs on a 2-core VM): 150 to 225 ns per event
//! through this sink, 320 to 570 ns through the crate's writer over a `BufWriter`.
//!
//! Nothing is dropped: past [`CAP`] pending bytes (the output is stuck or slow) producers
//! wait for room. Lines that cannot be written (the output returned an error) are lost,
//! as they would be with a direct write.

use std::cell::Cell;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the writer collects lines after the first of a batch before writing them.
pub const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Pending bytes past which the writer writes at once instead of lingering.
pub const HIGH_WATER: usize = 256 * 1024;
/// Pending bytes (buffered and being written) past which producers wait for room.
pub const CAP: usize = 8 * 1024 * 1024;
/// At shutdown, how long the guard waits for a writer that makes no progress at all (the
/// output is stuck) before it gives up rather than hang the exit.
const STUCK: Duration = Duration::from_secs(5);
/// A batch buffer that grew past this (a burst) is let go after the write.
const RETAIN: usize = 1024 * 1024;
/// The capacity a buffer starts with.
const INITIAL: usize = 64 * 1024;

/// The thresholds of a sink; [`Limits::default`] is what the gateway uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`BATCH_WINDOW`].
    pub batch_window: Duration,
    /// See [`HIGH_WATER`].
    pub high_water: usize,
    /// See [`CAP`]. A single line longer than this is still written, alone.
    pub cap: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            batch_window: BATCH_WINDOW,
            high_water: HIGH_WATER,
            cap: CAP,
        }
    }
}

/// Where producers put finished lines; cheap to clone.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink")
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

/// Owns the writer thread. Dropping it writes every line appended so far and joins the
/// thread; lines logged afterwards are written directly, by the thread that logs them.
#[must_use = "dropping the guard ends the writer thread"]
#[derive(Debug)]
pub struct LogGuard {
    sink: LogSink,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// The writer waits here: for a first line (parked) or for its batch window to end.
    wake: Condvar,
    /// Producers waiting for room, `flush` and the guard wait here for written bytes.
    progress: Condvar,
    /// Locked by the writer thread per batch; by producers only once it is gone.
    out: Mutex<Box<dyn Write + Send>>,
    limits: Limits,
}

struct State {
    /// Lines appended and not yet taken by the writer.
    buf: Vec<u8>,
    /// Bytes appended since the start.
    appended: u64,
    /// Bytes written (or failed to write) since the start.
    done: u64,
    writer: Writer,
    /// Write the current batch without waiting out the batch window.
    urgent: bool,
    /// The guard was dropped: write what is left and stop.
    closing: bool,
    /// Threads waiting on `progress`; the writer signals it only if there are some.
    waiters: usize,
    /// How many times a producer waited for room.
    stalls: u64,
}

/// What the writer thread is doing, so producers know whether to signal it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Waiting, without a timeout, for the buffer to become non-empty.
    Parked,
    /// Signalled, or waiting out the batch window.
    Lingering,
    /// Writing a batch; it looks at the buffer again when done.
    Writing,
    /// The thread has ended (or never started): producers write themselves.
    Gone,
}

thread_local! {
    /// Set on the writer thread: it must never wait for room it alone can make.
    static IS_WRITER: Cell<bool> = const { Cell::new(false) };
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the state consistent: every
        // update is a few field assignments.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, cv: &Condvar, st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        cv.wait(st).unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks a lingering writer to write the pending lines now.
    fn hurry(&self, st: &mut State) {
        if !st.urgent && !st.buf.is_empty() {
            st.urgent = true;
            if st.writer == Writer::Lingering {
                self.wake.notify_one();
            }
        }
    }

    /// With the writer gone: writes the buffer from the calling thread.
    fn write_direct(&self, st: &mut State) {
        if st.buf.is_empty() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = out.write_all(&st.buf).and_then(|()| out.flush());
        st.done += st.buf.len() as u64;
        st.buf.clear();
    }
}

impl LogSink {
    /// A sink writing to `out` from a thread of its own. If the thread cannot be started,
    /// lines are written directly by the threads that log them.
    pub fn spawn<W: Write + Send + 'static>(out: W, limits: Limits) -> (LogSink, LogGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(INITIAL),
                appended: 0,
                done: 0,
                writer: Writer::Parked,
                urgent: false,
                closing: false,
                waiters: 0,
                stalls: 0,
            }),
            wake: Condvar::new(),
            progress: Condvar::new(),
            out: Mutex::new(Box::new(out)),
            limits,
        });
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn({
                let shared = shared.clone();
                move || write_batches(&shared)
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(_) => {
                shared.lock().writer = Writer::Gone;
                None
            }
        };
        let sink = LogSink { shared };
        let guard = LogGuard {
            sink: sink.clone(),
            thread,
        };
        (sink, guard)
    }

    /// Appends one finished line (or several). `urgent` lines (WARN, ERROR) are written
    /// without waiting out the batch window. Waits only when the pending bytes are past the
    /// cap.
    pub fn write(&self, line: &[u8], urgent: bool) {
        let shared = &*self.shared;
        let mut st = shared.lock();
        let len = line.len() as u64;
        let cap = shared.limits.cap as u64;
        if st.appended - st.done + len > cap && st.appended > st.done {
            st = self.wait_for_room(st, len);
        }
        st.buf.extend_from_slice(line);
        st.appended += len;
        let urgent = urgent || st.buf.len() >= shared.limits.high_water;
        let notify = match st.writer {
            Writer::Parked => {
                st.writer = Writer::Lingering;
                true
            }
            Writer::Lingering => urgent && !st.urgent,
            Writer::Writing => false,
            Writer::Gone => {
                shared.write_direct(&mut st);
                return;
            }
        };
        st.urgent |= urgent;
        drop(st);
        if notify {
            shared.wake.notify_one();
        }
    }

    fn wait_for_room<'a>(&self, mut st: MutexGuard<'a, State>, len: u64) -> MutexGuard<'a, State> {
        let shared = &*self.shared;
        let cap = shared.limits.cap as u64;
        if IS_WRITER.get() {
            return st;
        }
        st.stalls += 1;
        // Wakes `wait_for_stall` in tests; a stalled producer is the slow path anyway.
        shared.progress.notify_all();
        while st.writer != Writer::Gone
            && st.appended > st.done
            && st.appended - st.done + len > cap
        {
            shared.hurry(&mut st);
            st.waiters += 1;
            st = shared.wait(&shared.progress, st);
            st.waiters -= 1;
        }
        st
    }

    /// Returns once every line appended before the call has been written (or the write
    /// failed).
    pub fn flush(&self) {
        let shared = &*self.shared;
        let mut st = shared.lock();
        let target = st.appended;
        while st.done < target && st.writer != Writer::Gone {
            shared.hurry(&mut st);
            st.waiters += 1;
            st = shared.wait(&shared.progress, st);
            st.waiters -= 1;
        }
        if st.writer == Writer::Gone {
            shared.write_direct(&mut st);
        }
    }

    /// How many times a producer has waited for room: a sign that the output cannot keep
    /// up with the logging.
    pub fn stalls(&self) -> u64 {
        self.shared.lock().stalls
    }
}

/// The writer thread: parked while there is nothing to write, else one batch after another.
fn write_batches(shared: &Shared) {
    /// Marks the writer gone however the thread ends, a panicking `Write` included, so that
    /// no producer waits for it.
    struct Gone<'a>(&'a Shared);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            let mut st = self.0.lock();
            st.writer = Writer::Gone;
            drop(st);
            self.0.progress.notify_all();
        }
    }
    let _gone = Gone(shared);
    IS_WRITER.set(true);
    let window = shared.limits.batch_window;
    let mut batch = Vec::with_capacity(INITIAL);
    let mut st = shared.lock();
    loop {
        while st.buf.is_empty() {
            if st.closing {
                st.writer = Writer::Gone;
                return;
            }
            st.writer = Writer::Parked;
            st = shared.wait(&shared.wake, st);
        }
        st.writer = Writer::Lingering;
        if !st.urgent && !st.closing {
            let deadline = Instant::now() + window;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = match shared.wake.wait_timeout(st, left) {
                    Ok((st, _)) => st,
                    Err(poisoned) => poisoned.into_inner().0,
                };
                if st.urgent || st.closing {
                    break;
                }
            }
        }
        std::mem::swap(&mut st.buf, &mut batch);
        st.urgent = false;
        st.writer = Writer::Writing;
        drop(st);

        {
            let mut out = shared.out.lock().unwrap_or_else(PoisonError::into_inner);
            // Nowhere to report a failed write to: the batch is lost, the next is tried.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
        }
        let written = batch.len() as u64;
        batch.clear();
        if batch.capacity() > RETAIN {
            batch = Vec::with_capacity(INITIAL);
        }

        st = shared.lock();
        st.done += written;
        if st.waiters > 0 {
            shared.progress.notify_all();
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let shared = &*self.sink.shared;
        let mut st = shared.lock();
        st.closing = true;
        if matches!(st.writer, Writer::Parked | Writer::Lingering) {
            shared.wake.notify_one();
        }
        let mut last = st.done;
        let mut since = Instant::now();
        while st.writer != Writer::Gone {
            st.waiters += 1;
            st = match shared.progress.wait_timeout(st, STUCK) {
                Ok((st, _)) => st,
                Err(poisoned) => poisoned.into_inner().0,
            };
            st.waiters -= 1;
            if st.done != last {
                last = st.done;
                since = Instant::now();
            } else if since.elapsed() >= STUCK {
                // The output has taken nothing for a while: leave the thread to it rather
                // than hang the exit.
                return;
            }
        }
        // Lines a panicking writer left behind.
        shared.write_direct(&mut st);
        drop(st);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Helpers for the tests of the log modules.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::{Limits, LogSink};
    use crate::telemetry::{LogFormat, LogLayer};

    /// An `io::Write` that keeps what it is given, and each batch apart.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<Vec<u8>>>>);

    impl Captured {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().concat()).unwrap()
        }

        pub(crate) fn writes(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The text `f` logs, in `format`, through the layer and a sink.
    pub(crate) fn capture(format: LogFormat, f: impl FnOnce()) -> String {
        let out = Captured::default();
        let (sink, guard) = LogSink::spawn(out.clone(), Limits::default());
        let subscriber = tracing_subscriber::registry().with(LogLayer::new(format, sink));
        tracing::subscriber::with_default(subscriber, f);
        drop(guard);
        out.text()
    }

    impl LogSink {
        /// Returns once `bytes` bytes have been written, without hurrying the writer.
        pub(crate) fn wait_until_written(&self, bytes: u64) {
            let shared = &*self.shared;
            let mut st = shared.lock();
            while st.done < bytes {
                st.waiters += 1;
                st = shared.wait(&shared.progress, st);
                st.waiters -= 1;
            }
        }

        /// Returns once some producer has waited for room.
        pub(crate) fn wait_for_stall(&self) {
            let shared = &*self.shared;
            let mut st = shared.lock();
            while st.stalls == 0 {
                st.waiters += 1;
                st = shared.wait(&shared.progress, st);
                st.waiters -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Condvar, Mutex};

    use super::testing::Captured;
    use super::*;

    /// Several threads; a global sequence number taken with the line appended under one
    /// lock, so the output must follow it exactly.
    #[test]
    fn lines_keep_their_order_across_threads() {
        let out = Captured::default();
        let (sink, guard) = LogSink::spawn(out.clone(), Limits::default());
        let seq = Arc::new(Mutex::new(0u32));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (sink, seq) = (sink.clone(), seq.clone());
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let mut seq = seq.lock().unwrap();
                        *seq += 1;
                        sink.write(format!("{} t{t} {i}\n", *seq).as_bytes(), i % 1000 == 0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = out.text();
        let seqs: Vec<u32> = text
            .lines()
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(seqs, (1..=20_000).collect::<Vec<_>>());
        assert!(out.writes() < 20_000, "batched: {} writes", out.writes());
    }

    /// An output that takes nothing until it is opened.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        out: Captured,
    }

    impl Gate {
        fn open(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }
    }

    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut open = self.open.0.lock().unwrap();
            while !*open {
                open = self.open.1.wait(open).unwrap();
            }
            self.out.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_output_makes_producers_wait_and_nothing_is_lost() {
        let gate = Gate::default();
        let limits = Limits {
            batch_window: Duration::from_millis(1),
            high_water: 32,
            cap: 100,
        };
        let (sink, guard) = LogSink::spawn(gate.clone(), limits);
        let threads: Vec<_> = (0..3)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..300 {
                        sink.write(format!("t{t} {i:03}\n").as_bytes(), false);
                    }
                })
            })
            .collect();
        sink.wait_for_stall();
        gate.open();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        assert!(sink.stalls() > 0);
        for batch in gate.out.0.lock().unwrap().iter() {
            assert!(batch.len() <= 100, "a batch of {} bytes", batch.len());
        }
        let text = gate.out.text();
        assert_eq!(text.lines().count(), 900);
        for t in 0..3 {
            let mine: Vec<String> = text
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .map(str::to_owned)
                .collect();
            let expected: Vec<String> = (0..300).map(|i| format!("t{t} {i:03}")).collect();
            assert_eq!(mine, expected);
        }
    }

    #[test]
    fn dropping_the_guard_writes_everything_at_once() {
        let out = Captured::default();
        let limits = Limits {
            batch_window: Duration::from_secs(3600),
            ..Limits::default()
        };
        let (sink, guard) = LogSink::spawn(out.clone(), limits);
        sink.write(b"one\n", false);
        sink.write(b"two\n", false);
        let started = Instant::now();
        drop(guard);
        assert!(started.elapsed() < Duration::from_secs(60));
        assert_eq!(out.text(), "one\ntwo\n");
        // After the guard, lines are written by the caller.
        sink.write(b"late\n", false);
        assert_eq!(out.text(), "one\ntwo\nlate\n");
    }

    #[test]
    fn flush_and_urgent_lines_do_not_wait_out_the_window() {
        let out = Captured::default();
        let limits = Limits {
            batch_window: Duration::from_secs(3600),
            ..Limits::default()
        };
        let (sink, guard) = LogSink::spawn(out.clone(), limits);
        sink.write(b"info\n", false);
        sink.flush();
        assert_eq!(out.text(), "info\n");
        sink.write(b"warn\n", true);
        sink.wait_until_written(10);
        assert_eq!(out.text(), "info\nwarn\n");
        sink.write(b"big\n", false);
        sink.write(&[b'.'; HIGH_WATER], false);
        sink.wait_until_written(14 + HIGH_WATER as u64);
        assert_eq!(out.writes(), 3);
        drop(guard);
    }

    #[test]
    fn an_idle_sink_writes_nothing() {
        let out = Captured::default();
        let (sink, guard) = LogSink::spawn(out.clone(), Limits::default());
        sink.flush();
        drop(guard);
        assert_eq!(out.writes(), 0);
        sink.write(b"x\n", false);
        sink.flush();
        assert_eq!(out.writes(), 1);
    }
}
