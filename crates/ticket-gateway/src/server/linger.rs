//! A lingering close: when the gateway ends a connection while the client is still
//! sending (a `413` for a body over the limit, a `431` for a head too large), closing at
//! once would make the kernel answer the unread bytes with a reset, and a client that has
//! not yet read the reply loses it (seen over TLS as `SSLEOFError`, curl's exit 55). So the
//! gateway first shuts down its side, then reads and discards what still comes, for a
//! bounded time and size, as nginx's `lingering_close` does.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The longest a connection lingers.
const LINGER_TIME: Duration = Duration::from_secs(5);
/// The longest a connection lingers with nothing arriving.
const LINGER_SILENCE: Duration = Duration::from_secs(1);
/// The most it reads while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

/// Shuts down `io`'s sending side, reads and discards until the client closes or a bound
/// is reached, and drops it.
pub(super) async fn close<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    let drain = async {
        if io.shutdown().await.is_err() {
            return;
        }
        let mut scratch = vec![0u8; 16 * 1024];
        let mut read = 0;
        while read < LINGER_BYTES {
            match tokio::time::timeout(LINGER_SILENCE, io.read(&mut scratch)).await {
                Ok(Ok(n)) if n > 0 => read += n,
                // Closed by the client, failed, or silent: done.
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}
