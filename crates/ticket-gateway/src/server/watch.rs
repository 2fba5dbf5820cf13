//! Each connection's watch: closes it when it is idle too long, or when a client takes too
//! long to send a request head (slowloris), without a timer per request.
//!
//! Reads and writes only bump counts on the connection's own task; the clock is read by
//! [`IdleWatch`] a few times per timeout.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How often, per timeout, a connection's activity is looked at: a connection is closed
/// between one and one and a quarter timeouts after it went quiet.
const TICKS_PER_TIMEOUT: u32 = 4;

/// The two limits a connection's watch keeps.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadlines {
    /// No request in flight and no bytes moving this long: idle.
    idle: Duration,
    /// No request in flight and nothing written this long: the client has had that long
    /// since the last response (or since it connected) to send a whole request head, as
    /// hyper's own header timeout counts it. Trickling header bytes (slowloris) does not
    /// restart it; a response still streaming out does.
    head: Duration,
}

impl From<&crate::config::Limits> for Deadlines {
    fn from(limits: &crate::config::Limits) -> Self {
        Deadlines {
            idle: limits.idle_timeout,
            head: limits.header_read_timeout,
        }
    }
}

impl Deadlines {
    pub(super) fn tick(self) -> Duration {
        (self.idle.min(self.head) / TICKS_PER_TIMEOUT).max(Duration::from_millis(10))
    }
}

/// What a connection has done: counts of events (any bytes moving, requests ending) and of
/// writes, and the requests in flight. Reads and writes only bump counts, on the
/// connection's own task; the clock is read by [`IdleWatch`] a few times per timeout, not
/// on every read and write.
#[derive(Debug, Default)]
pub(super) struct Activity {
    events: AtomicU64,
    writes: AtomicU64,
    in_flight: AtomicUsize,
}

/// Only the connection's own task bumps a count: a load and a store, no atomic
/// read-modify-write. (A lost bump would only delay closing by a tick.)
fn bump(count: &AtomicU64) {
    let n = count.load(Ordering::Relaxed);
    count.store(n.wrapping_add(1), Ordering::Relaxed);
}

impl Activity {
    pub(super) fn new() -> Self {
        Activity::default()
    }

    pub(super) fn touch(&self) {
        bump(&self.events);
    }

    pub(super) fn wrote(&self) {
        bump(&self.events);
        bump(&self.writes);
    }

    pub(super) fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }
}

/// What a look at a connection decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Open,
    Idle,
    SlowHead,
}

/// Decides from [`Activity`] snapshots taken at each tick.
#[derive(Debug)]
pub(super) struct IdleWatch {
    events: (u64, Instant),
    writes: (u64, Instant),
}

impl IdleWatch {
    pub(super) fn new(activity: &Activity) -> Self {
        let now = Instant::now();
        IdleWatch {
            events: (activity.events.load(Ordering::Relaxed), now),
            writes: (activity.writes.load(Ordering::Relaxed), now),
        }
    }

    pub(super) fn check(
        &mut self,
        activity: &Activity,
        now: Instant,
        limits: Deadlines,
    ) -> Verdict {
        let busy = activity.in_flight.load(Ordering::Relaxed) > 0;
        let quiet_for = |seen: &mut (u64, Instant), count: &AtomicU64| {
            let n = count.load(Ordering::Relaxed);
            if busy || n != seen.0 {
                *seen = (n, now);
            }
            now.duration_since(seen.1)
        };
        let idle = quiet_for(&mut self.events, &activity.events);
        let unanswered = quiet_for(&mut self.writes, &activity.writes);
        if idle >= limits.idle {
            Verdict::Idle
        } else if unanswered >= limits.head {
            Verdict::SlowHead
        } else {
            Verdict::Open
        }
    }
}

/// A request in flight; dropping it marks the request done.
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// An IO that counts when bytes move.
///
/// When hyper is done with the connection and drops it, the IO goes to `linger` (if set),
/// for a lingering close: the connection's owner reads what the client is still sending
/// before it closes, so that an early reply (a `413`, a `431`) is not lost to a reset.
pub(super) struct Tracked<I> {
    inner: Option<I>,
    activity: Arc<Activity>,
    linger: Option<oneshot::Sender<I>>,
}

impl<I> Tracked<I> {
    /// `inner`, counted in `activity`, handed to `linger` when dropped.
    pub(super) fn new(inner: I, activity: Arc<Activity>, linger: oneshot::Sender<I>) -> Self {
        Tracked {
            inner: Some(inner),
            activity,
            linger: Some(linger),
        }
    }

    fn io(&mut self) -> io::Result<Pin<&mut I>>
    where
        I: Unpin,
    {
        match self.inner.as_mut() {
            Some(io) => Ok(Pin::new(io)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl<I> Drop for Tracked<I> {
    fn drop(&mut self) {
        if let (Some(io), Some(linger)) = (self.inner.take(), self.linger.take()) {
            let _ = linger.send(io);
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let result = match self.io() {
            Ok(io) => io.poll_read(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if matches!(result, Poll::Ready(Ok(()))) {
            self.activity.touch();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = match self.io() {
            Ok(io) => io.poll_write(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if matches!(result, Poll::Ready(Ok(_))) {
            self.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = match self.io() {
            Ok(io) => io.poll_write_vectored(cx, bufs),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if matches!(result, Poll::Ready(Ok(_))) {
            self.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(I::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Deadlines = Deadlines {
        idle: Duration::from_secs(10),
        head: Duration::from_secs(30),
    };

    fn at(watch: &mut IdleWatch, a: &Activity) -> Verdict {
        watch.check(a, Instant::now(), LIMITS)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_without_requests_or_traffic() {
        let a = Arc::new(Activity::new());
        let (idle, tick) = (LIMITS.idle, LIMITS.tick());
        let mut watch = IdleWatch::new(&a);
        assert_eq!(at(&mut watch, &a), Verdict::Open);
        tokio::time::advance(idle).await;
        assert_eq!(
            at(&mut watch, &a),
            Verdict::Idle,
            "quiet for the whole timeout"
        );

        // Traffic restarts the count.
        a.touch();
        assert_eq!(at(&mut watch, &a), Verdict::Open);
        tokio::time::advance(idle - tick).await;
        assert_eq!(at(&mut watch, &a), Verdict::Open);
        tokio::time::advance(tick).await;
        assert_eq!(at(&mut watch, &a), Verdict::Idle);

        // A slow request in flight is not idleness, however long it takes.
        let busy = a.busy();
        tokio::time::advance(idle * 6).await;
        assert_eq!(
            at(&mut watch, &a),
            Verdict::Open,
            "a slow request in flight"
        );
        drop(busy);
        assert_eq!(at(&mut watch, &a), Verdict::Open, "the request just ended");
        tokio::time::advance(idle).await;
        assert_eq!(at(&mut watch, &a), Verdict::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_head_must_follow_the_last_response_in_time() {
        let a = Arc::new(Activity::new());
        let mut watch = IdleWatch::new(&a);
        let step = LIMITS.idle / 2;
        // A client trickling header bytes is never idle, but writes nothing back.
        let mut waited = Duration::ZERO;
        while waited < LIMITS.head {
            a.touch();
            assert_eq!(at(&mut watch, &a), Verdict::Open, "after {waited:?}");
            tokio::time::advance(step).await;
            waited += step;
        }
        a.touch();
        assert_eq!(at(&mut watch, &a), Verdict::SlowHead);

        // A response streaming out keeps the clock from running, request over or not.
        let mut watch = IdleWatch::new(&a);
        for _ in 0..10 {
            a.wrote();
            tokio::time::advance(step).await;
            assert_eq!(at(&mut watch, &a), Verdict::Open);
        }
    }
}
