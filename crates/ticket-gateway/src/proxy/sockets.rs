//! The proxied WebSocket connections of each session, so that the end of a session (by
//! any route, on any node) closes them at once, as Qlik Sense does, and tells them why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ticket_core::{EndReason, SessionEnded};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// Why the gateway ends a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The session ended: logged out, closed by the session API, or evicted.
    Session(EndReason),
    /// The session timed out for want of use.
    TimedOut,
    /// The socket carried nothing either way for the WebSocket idle timeout.
    Idle,
    /// The gateway is shutting down.
    Shutdown,
}

/// Session `(realm, id)` → the signal its open sockets watch, and how many there are.
type Open = HashMap<(String, String), (watch::Sender<Option<Ending>>, usize)>;

/// The open sockets of every session.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    open: Mutex<Open>,
}

/// An open socket's registration; dropping it (when the socket ends) unregisters it.
#[derive(Debug)]
pub(crate) struct Registration {
    sockets: Arc<Sockets>,
    key: (String, String),
    /// Set when the socket must end, and why.
    pub(crate) ending: watch::Receiver<Option<Ending>>,
}

impl Sockets {
    /// Registers a socket of session `(realm, id)`.
    pub(crate) fn register(self: &Arc<Self>, realm: &str, id: &str) -> Registration {
        let key = (realm.to_owned(), id.to_owned());
        let mut open = self.lock();
        let entry = open
            .entry(key.clone())
            .or_insert_with(|| (watch::channel(None).0, 0));
        entry.1 += 1;
        Registration {
            sockets: self.clone(),
            ending: entry.0.subscribe(),
            key,
        }
    }

    /// Ends every socket of session `(realm, id)`, for `why`.
    pub(crate) fn close(&self, realm: &str, id: &str, why: Ending) {
        if let Some((signal, _)) = self.lock().remove(&(realm.to_owned(), id.to_owned())) {
            signal.send_replace(Some(why));
        }
    }

    /// Ends every socket (shutdown).
    pub(crate) fn close_all(&self, why: Ending) {
        for (_, (signal, _)) in self.lock().drain() {
            signal.send_replace(Some(why));
        }
    }

    /// How many sockets are open, for tests and metrics.
    pub(crate) fn open_count(&self) -> usize {
        self.lock().values().map(|(_, n)| n).sum()
    }

    /// Closes the sockets of every session the core announces the end of, until the core
    /// goes away. The task stops when the returned guard drops.
    pub(crate) fn follow(
        self: &Arc<Self>,
        mut events: broadcast::Receiver<SessionEnded>,
    ) -> Follow {
        let sockets = self.clone();
        Follow(tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => sockets.close(&e.realm, &e.id, Ending::Session(e.reason)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "session-end events missed: some WebSockets may outlive their session"
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The task that follows session-end events; aborted when dropped.
#[derive(Debug)]
pub(crate) struct Follow(JoinHandle<()>);

impl Drop for Follow {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut open = self.sockets.lock();
        if let Some(entry) = open.get_mut(&self.key) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                open.remove(&self.key);
            }
        }
    }
}
