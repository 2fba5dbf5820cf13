//! The relay of one bridged WebSocket: bytes pass both ways unchanged, the gateway's own
//! frames go in between whole messages, and the socket ends when its session does, when it
//! stays silent too long, or when the gateway shuts down.
//!
//! Both directions are pumped concurrently in one task (a pump that waited on a write
//! while the other side waited on it would deadlock). A third party, the controller,
//! watches the session: frames in either direction count as use, and while the socket is
//! used the session is touched, at most once per [`TOUCH_EVERY`]; when it is not, the
//! session is looked at once its inactivity timeout has passed, and if it is gone the
//! socket is told it timed out.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use ticket_core::Core;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::frame::{self, Scanner};
use crate::proxy::sockets::Ending;

/// How often, at most, a used socket touches its session.
pub(crate) const TOUCH_EVERY: Duration = Duration::from_secs(5);

/// How long the gateway waits, after sending its close frame, for the two sides to
/// finish before it drops both connections.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What the gateway says on a bridged socket.
#[derive(Debug, Clone)]
pub(crate) struct Speech {
    /// The first message the client gets, before anything from the back end.
    pub(crate) greeting: Option<String>,
    /// The message sent just before the close frame when the gateway ends the socket.
    pub(crate) farewell: fn(Ending) -> Option<String>,
}

/// The session a socket keeps alive.
#[derive(Debug, Clone)]
pub(crate) struct Liveness {
    /// The core that holds it.
    pub(crate) core: Core,
    /// Its realm and id.
    pub(crate) realm: String,
    pub(crate) id: String,
    /// Its inactivity timeout.
    pub(crate) idle: Duration,
}

/// One socket's relay.
#[derive(Debug)]
pub(crate) struct Relay {
    /// What the gateway says.
    pub(crate) speech: Speech,
    /// The session, when the socket belongs to one.
    pub(crate) liveness: Option<Liveness>,
    /// Set when the socket must end.
    pub(crate) ending: watch::Receiver<Option<Ending>>,
    /// A socket with no frame either way this long is closed.
    pub(crate) idle_timeout: Duration,
}

/// Bytes for a pump to write, and whether they are its last.
#[derive(Debug)]
struct Inject {
    bytes: Vec<u8>,
    last: bool,
}

impl Relay {
    /// Relays between `client` and `upstream` until either side closes or the gateway
    /// ends the socket.
    pub(crate) async fn run<C, U>(mut self, client: C, upstream: U)
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
        U: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (client_r, client_w) = tokio::io::split(client);
        let (upstream_r, upstream_w) = tokio::io::split(upstream);
        let (to_client, to_client_rx) = mpsc::channel(2);
        let (to_upstream, to_upstream_rx) = mpsc::channel(2);
        if let Some(greeting) = &self.speech.greeting {
            let _ = to_client.try_send(Inject {
                bytes: frame::text(greeting),
                last: false,
            });
        }
        let activity = AtomicU64::new(0);
        let pumps = async {
            let down = pump(upstream_r, client_w, to_client_rx, &activity);
            let up = pump(client_r, upstream_w, to_upstream_rx, &activity);
            let (down, up) = tokio::join!(down, up);
            if let Err(e) = down.and(up) {
                tracing::debug!(error = %e, "websocket relay ended with an error");
            }
        };
        tokio::pin!(pumps);
        let why = tokio::select! {
            () = &mut pumps => return,
            why = self.watch(&activity) => why,
        };
        let mut farewell = (self.speech.farewell)(why).map_or_else(Vec::new, |m| frame::text(&m));
        let (code, reason) = match why {
            Ending::Shutdown => (1001, "the gateway is shutting down"),
            Ending::Idle => (1001, "idle timeout"),
            Ending::Session(_) | Ending::TimedOut => (1000, ""),
        };
        farewell.extend(frame::close(code, reason));
        let _ = to_client.try_send(Inject {
            bytes: farewell,
            last: true,
        });
        let _ = to_upstream.try_send(Inject {
            bytes: frame::masked_close(1001),
            last: true,
        });
        let _ = tokio::time::timeout(CLOSE_GRACE, pumps).await;
    }

    /// Resolves when the gateway must end the socket, and says why.
    async fn watch(&mut self, activity: &AtomicU64) -> Ending {
        let start = Instant::now();
        let period = self
            .liveness
            .as_ref()
            .map_or(TOUCH_EVERY, |l| {
                (l.idle / 4).clamp(Duration::from_millis(100), TOUCH_EVERY)
            })
            .min(self.idle_timeout);
        let mut tick = tokio::time::interval_at(start + period, period);
        let (mut seen, mut used_at, mut touched_at) = (0, start, start);
        let mut ending = self.ending.clone();
        loop {
            tokio::select! {
                why = async { ending.wait_for(Option::is_some).await.ok().and_then(|w| *w) } => {
                    // No reason: the registry is gone, and with it the gateway.
                    return why.unwrap_or(Ending::Shutdown);
                }
                now = tick.tick() => {
                    let count = activity.load(Ordering::Relaxed);
                    if count != seen {
                        (seen, used_at) = (count, now);
                    }
                    if now.duration_since(used_at) >= self.idle_timeout {
                        return Ending::Idle;
                    }
                    let Some(l) = &self.liveness else { continue };
                    let alive = if used_at > touched_at && now.duration_since(touched_at) >= period {
                        touched_at = now;
                        l.core.touch_session(&l.realm, &l.id).await
                    } else if now.duration_since(touched_at) >= l.idle {
                        // Silent as long as the session lasts: has anyone else kept it?
                        l.core.session(&l.realm, &l.id).await
                    } else {
                        continue;
                    };
                    // A store that does not answer ends nothing.
                    if let Ok(None) = alive {
                        let ended: Option<Ending> = *self.ending.borrow();
                        return ended.unwrap_or(Ending::TimedOut);
                    }
                }
            }
        }
    }
}

/// Copies `from` to `to` as it comes, counting reads in `activity`, and writes what
/// `inject` brings between whole messages; stops after writing an injection marked last,
/// or when `from` ends.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    mut inject: mpsc::Receiver<Inject>,
    activity: &AtomicU64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut scanner = Scanner::default();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut queued: Option<Inject> = None;
    let mut open = true;
    loop {
        tokio::select! {
            // An injection first: the greeting must precede every back-end byte.
            biased;
            next = inject.recv(), if open && queued.is_none() => match next {
                Some(i) if scanner.at_boundary() => {
                    to.write_all(&i.bytes).await?;
                    to.flush().await?;
                    if i.last {
                        return Ok(());
                    }
                }
                Some(i) => queued = Some(i),
                None => open = false,
            },
            read = from.read_buf(&mut buf) => {
                if read? == 0 {
                    let _ = to.shutdown().await;
                    return Ok(());
                }
                activity.fetch_add(1, Ordering::Relaxed);
                let scan = scanner.scan(&buf).map_err(io::Error::other)?;
                match (queued.take(), scan.boundary) {
                    (Some(i), Some(at)) => {
                        to.write_all(&buf[..at]).await?;
                        to.write_all(&i.bytes).await?;
                        if i.last {
                            to.flush().await?;
                            return Ok(());
                        }
                        to.write_all(&buf[at..]).await?;
                    }
                    (waiting, _) => {
                        queued = waiting;
                        to.write_all(&buf).await?;
                    }
                }
                to.flush().await?;
                buf.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ticket_core::{Identity, Lifetimes, MemoryStore};
    use tokio::io::{duplex, DuplexStream};

    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    fn masked_text(s: &str) -> Vec<u8> {
        let mask = [9, 8, 7, 6];
        let mut out = vec![0x81, 0x80 | s.len() as u8];
        out.extend_from_slice(&mask);
        out.extend(s.bytes().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    /// Reads whole server frames (unmasked, short) off `io`: `(opcode, payload)`.
    async fn frame(io: &mut DuplexStream) -> (u8, Vec<u8>) {
        let mut head = [0u8; 2];
        io.read_exact(&mut head).await.unwrap();
        let len = match head[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                io.read_exact(&mut l).await.unwrap();
                usize::from(u16::from_be_bytes(l))
            }
            n => usize::from(n),
        };
        let mut payload = vec![0; len];
        io.read_exact(&mut payload).await.unwrap();
        (head[0] & 0x0f, payload)
    }

    fn farewell(why: Ending) -> Option<String> {
        Some(format!("bye: {why:?}"))
    }

    async fn relay() -> (
        DuplexStream,
        DuplexStream,
        Core,
        String,
        watch::Sender<Option<Ending>>,
    ) {
        let core = Core::new(Arc::new(MemoryStore::new()), Lifetimes::default());
        let identity = Identity::Qps {
            user_directory: "ACME".into(),
            user_id: "jdoe".into(),
            attributes: Vec::new(),
        };
        let (session, _) = core
            .start_session("qps/", identity, IDLE, None)
            .await
            .unwrap();
        let (signal, ending) = watch::channel(None);
        let (client, client_side) = duplex(64 * 1024);
        let (upstream, upstream_side) = duplex(64 * 1024);
        let relay = Relay {
            speech: Speech {
                greeting: Some("hello".into()),
                farewell,
            },
            liveness: Some(Liveness {
                core: core.clone(),
                realm: "qps/".into(),
                id: session.id.clone(),
                idle: IDLE,
            }),
            ending,
            idle_timeout: Duration::from_secs(3600),
        };
        tokio::spawn(relay.run(client_side, upstream_side));
        (client, upstream, core, session.id, signal)
    }

    #[tokio::test(start_paused = true)]
    async fn use_keeps_the_session_alive_and_silence_ends_it_with_a_notification() {
        let (mut client, mut upstream, core, id, _signal) = relay().await;
        assert_eq!(
            frame(&mut client).await,
            (0x1, b"hello".to_vec()),
            "the greeting first"
        );
        // Ten minutes of use, a frame every 30 s: far past the 60 s inactivity timeout.
        for i in 0..20 {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let msg = masked_text(&format!("m{i}"));
            client.write_all(&msg).await.unwrap();
            let mut got = vec![0; msg.len()];
            upstream.read_exact(&mut got).await.unwrap();
            assert_eq!(got, msg, "passed through unchanged");
        }
        assert!(
            core.session("qps/", &id).await.unwrap().is_some(),
            "kept alive by use"
        );
        // Then silence: the session times out, and the socket is told.
        let (op, text) = frame(&mut client).await;
        assert_eq!(
            (op, String::from_utf8(text).unwrap()),
            (0x1, "bye: TimedOut".to_owned())
        );
        let (op, close) = frame(&mut client).await;
        assert_eq!((op, &close[..2]), (0x8, &1000u16.to_be_bytes()[..]));
        assert!(core.session("qps/", &id).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_ending_waits_for_the_back_ends_message_to_end() {
        let (mut client, mut upstream, _core, _id, signal) = relay().await;
        assert_eq!(frame(&mut client).await.0, 0x1);
        // The back end starts a fragmented message...
        upstream
            .write_all(&[0x01, 0x03, b'a', b'b', b'c'])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        signal.send_replace(Some(Ending::Session(ticket_core::EndReason::LoggedOut)));
        tokio::time::sleep(Duration::from_millis(10)).await;
        // ...and ends it: only then come the notification and the close.
        upstream.write_all(&[0x80, 0x02, b'd', b'e']).await.unwrap();
        assert_eq!(frame(&mut client).await, (0x1, b"abc".to_vec()));
        assert_eq!(frame(&mut client).await, (0x0, b"de".to_vec()));
        let (op, text) = frame(&mut client).await;
        assert_eq!(op, 0x1);
        assert!(String::from_utf8(text).unwrap().contains("LoggedOut"));
        assert_eq!(frame(&mut client).await.0, 0x8);
        // The back end is told too (a masked close).
        let mut head = [0u8; 2];
        upstream.read_exact(&mut head).await.unwrap();
        assert_eq!(head[0], 0x88);
        assert_ne!(head[1] & 0x80, 0, "masked");
    }
}
