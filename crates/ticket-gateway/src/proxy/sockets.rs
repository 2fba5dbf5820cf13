//! The proxied WebSocket connections of each session, so that a logout (by any route)
//! closes them at once, as Qlik Sense does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Session → one token shared by all its open sockets, and how many there are.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    open: Mutex<HashMap<(String, String), (CancellationToken, usize)>>,
}

/// An open socket's registration; dropping it (when the socket ends) unregisters it.
#[derive(Debug)]
pub(crate) struct Registration {
    sockets: Arc<Sockets>,
    key: (String, String),
    /// Cancelled when the session logs out.
    pub closed: CancellationToken,
}

impl Sockets {
    /// Registers a socket of session `(realm, id)`.
    pub(crate) fn register(self: &Arc<Self>, realm: &str, id: &str) -> Registration {
        let key = (realm.to_owned(), id.to_owned());
        let mut open = self.lock();
        let entry = open
            .entry(key.clone())
            .or_insert_with(|| (CancellationToken::new(), 0));
        entry.1 += 1;
        Registration {
            sockets: self.clone(),
            closed: entry.0.clone(),
            key,
        }
    }

    /// Closes every socket of session `(realm, id)`.
    pub(crate) fn close(&self, realm: &str, id: &str) {
        if let Some((token, _)) = self.lock().remove(&(realm.to_owned(), id.to_owned())) {
            token.cancel();
        }
    }

    /// How many sockets are open, for tests and metrics.
    pub(crate) fn open_count(&self) -> usize {
        self.lock().values().map(|(_, n)| n).sum()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), (CancellationToken, usize)>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
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
