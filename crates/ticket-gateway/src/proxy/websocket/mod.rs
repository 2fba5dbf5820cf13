//! WebSockets through the gateway: bridged to a back end byte for byte ([`relay`]), with
//! the gateway's own messages in between ([`frame`]); or answered by the gateway alone,
//! when there is nobody to bridge to ([`answer`]).

pub(crate) mod frame;
pub(crate) mod relay;

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tungstenite::handshake::derive_accept_key;

pub(crate) use relay::{Liveness, Relay, Speech};

use crate::http::{empty, page, Body};

/// How long a socket the gateway answers alone waits for the client's close reply.
const REPLY_WAIT: Duration = Duration::from_secs(2);

/// Answers a WebSocket upgrade without a back end: `101`, then `message` (a text frame)
/// and a close frame with `code`, then the connection ends. A request that is not a valid
/// upgrade gets `400` (or `426` for another protocol version).
pub(crate) fn answer<B>(req: &mut Request<B>, message: String, code: u16) -> Response<Body> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "A WebSocket upgrade needs Sec-WebSocket-Key.",
        );
    };
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut res = page(
            StatusCode::UPGRADE_REQUIRED,
            "Upgrade required",
            "WebSocket version 13 only.",
        );
        res.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return res;
    }
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut out = frame::text(&message);
        out.extend(frame::close(code, ""));
        if io.write_all(&out).await.is_err() || io.flush().await.is_err() {
            return;
        }
        // Let the client answer the close before the connection goes (bounded).
        let mut reply = [0u8; 256];
        let _ = tokio::time::timeout(REPLY_WAIT, io.read(&mut reply)).await;
        let _ = io.shutdown().await;
    });
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = res.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    res
}
