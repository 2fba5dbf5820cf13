//! A request body must keep pace: a client that sends a head and then nothing (or a byte a
//! second) would otherwise hold its connection, and a slot under `max_connections`, for as
//! long as it likes.
//!
//! A body gets `timeout` to arrive, plus one second for every `min_rate` bytes it has
//! delivered so far: a stalled body fails after `timeout`, a trickle soon after, and a large
//! upload at any honest speed has all the time it needs. The deadline is only armed when
//! the body is not already there: a small body that came with the head costs no timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::BoxError;

/// How a body must keep pace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Time for a body to arrive, beyond what its size earns.
    pub(crate) timeout: Duration,
    /// Bytes per second that earn a body one more second.
    pub(crate) min_rate: u64,
}

impl Pace {
    /// The pace the configured limits set.
    pub(crate) fn of(limits: &crate::config::Limits) -> Pace {
        Pace {
            timeout: limits.body_read_timeout,
            min_rate: limits.body_min_rate,
        }
    }
}

/// What went wrong with a client's body, recorded for whoever sent it on (the proxy) to
/// tell a client's fault from a back end's.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fault(Arc<AtomicU8>);

/// A fault of the client's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClientFault {
    /// It did not arrive in time.
    #[error("the request body did not arrive in time")]
    TimedOut,
    /// Its framing was broken (a malformed chunk) or the connection failed.
    #[error("the request body could not be read")]
    Broken,
}

impl Fault {
    fn set(&self, fault: ClientFault) {
        let code = match fault {
            ClientFault::TimedOut => 1,
            ClientFault::Broken => 2,
        };
        self.0.store(code, Ordering::Relaxed);
    }

    /// The fault recorded, if any.
    pub(crate) fn get(&self) -> Option<ClientFault> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(ClientFault::TimedOut),
            2 => Some(ClientFault::Broken),
            _ => None,
        }
    }
}

pin_project_lite::pin_project! {
    /// `inner`, failing with [`ClientFault::TimedOut`] when it falls behind its [`Pace`].
    pub(crate) struct Paced<B> {
        #[pin]
        inner: B,
        pace: Pace,
        started: Instant,
        received: u64,
        deadline: Option<Pin<Box<Sleep>>>,
        fault: Fault,
    }
}

impl<B> Paced<B> {
    /// `inner` held to `pace`; its fault, if it has one, is recorded in `fault`.
    pub(crate) fn new(inner: B, pace: Pace, fault: Fault) -> Self {
        Paced {
            inner,
            pace,
            started: Instant::now(),
            received: 0,
            deadline: None,
            fault,
        }
    }
}

impl<B> Paced<B> {
    fn deadline(pace: Pace, started: Instant, received: u64) -> Instant {
        let earned = Duration::from_secs(received / pace.min_rate.max(1));
        started + pace.timeout + earned
    }
}

impl<B> http_body::Body for Paced<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.received += data.remaining() as u64;
                    if let Some(sleep) = this.deadline {
                        sleep.as_mut().reset(Self::deadline(
                            *this.pace,
                            *this.started,
                            *this.received,
                        ));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.fault.set(ClientFault::Broken);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let at = Self::deadline(*this.pace, *this.started, *this.received);
                let sleep = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.fault.set(ClientFault::TimedOut);
                        Poll::Ready(Some(Err(Box::new(ClientFault::TimedOut))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};

    const PACE: Pace = Pace {
        timeout: Duration::from_secs(10),
        min_rate: 1024,
    };

    fn trickle(
        every: Duration,
        n: usize,
        size: usize,
    ) -> impl http_body::Body<Data = Bytes, Error = BoxError> {
        let stream = futures_util::stream::unfold(0, move |i| async move {
            if i == n {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((
                Ok::<_, BoxError>(Frame::data(Bytes::from(vec![b'x'; size]))),
                i + 1,
            ))
        });
        StreamBody::new(stream)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_or_trickling_body_fails_and_says_why() {
        let fault = Fault::default();
        let body = Paced::new(
            trickle(Duration::from_secs(1), 1000, 1),
            PACE,
            fault.clone(),
        );
        let started = Instant::now();
        assert!(body.collect().await.is_err());
        assert_eq!(fault.get(), Some(ClientFault::TimedOut));
        assert!(
            started.elapsed() <= Duration::from_secs(11),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_honest_large_upload_has_the_time_it_needs() {
        // 1 MiB at 32 KiB a second: 32 seconds, far past the plain timeout.
        let fault = Fault::default();
        let body = Paced::new(
            trickle(Duration::from_secs(1), 32, 32 * 1024),
            PACE,
            fault.clone(),
        );
        let got = body.collect().await.expect("the whole body").to_bytes();
        assert_eq!(got.len(), 1024 * 1024);
        assert_eq!(fault.get(), None);
    }
}
