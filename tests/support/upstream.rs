//! A test back end on `127.0.0.1:0`: echoes what reached it, counts streamed bodies,
//! streams large ones, stalls on request, and echoes WebSocket messages.
//!
//! - `POST …/count`: replies with the number of body bytes it read, without keeping them.
//! - `GET …/big?n=BYTES`: streams `BYTES` zero bytes in 64 KiB chunks.
//! - `GET …/slow`: never answers (until the test ends).
//! - a WebSocket upgrade on any path: sends `ENGINE_HELLO` at once, as a Qlik engine sends
//!   `OnConnected`, then echoes every message (pings are answered).
//! - anything else: `200` JSON `{"method","path","headers":[[name,value],…]}`, with an
//!   `X-Frame-Options: ALLOWALL` of its own.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

type Body = BoxBody<Bytes, std::io::Error>;

/// What the test back end sends first on every WebSocket, as an engine sends `OnConnected`.
pub const ENGINE_HELLO: &str =
    r#"{"jsonrpc":"2.0","method":"OnConnected","params":{"qSessionState":"SESSION_CREATED"}}"#;

/// Starts the test back end and returns its address; it lives as long as the runtime.
pub async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    });
    addr
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *res.status_mut() = status;
    res
}

async fn handle(mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req
        .headers()
        .get("upgrade")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
    {
        let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
            return Ok(full(StatusCode::BAD_REQUEST, "no key"));
        };
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(io) = upgrade.await else { return };
            let mut ws =
                WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await;
            if ws.send(ENGINE_HELLO.into()).await.is_err() {
                return;
            }
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_close() {
                    break;
                }
                // Pings are answered by the socket itself; the rest is echoed.
                let echo = msg.is_text() || msg.is_binary();
                if echo && ws.send(msg).await.is_err() {
                    break;
                }
            }
        });
        let mut res = full(StatusCode::SWITCHING_PROTOCOLS, Bytes::new());
        res.headers_mut()
            .insert("upgrade", "websocket".parse().unwrap());
        res.headers_mut()
            .insert("connection", "Upgrade".parse().unwrap());
        res.headers_mut().insert(
            "sec-websocket-accept",
            derive_accept_key(key.as_bytes()).parse().unwrap(),
        );
        return Ok(res);
    }
    let path = req.uri().path().to_owned();
    let last = path.rsplit('/').next().unwrap_or("");
    match last {
        "count" => {
            let mut body = req.into_body();
            let mut n: u64 = 0;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => n += f.data_ref().map_or(0, |d| d.len() as u64),
                    Err(_) => return Ok(full(StatusCode::BAD_REQUEST, "broken body")),
                }
            }
            Ok(full(StatusCode::OK, n.to_string()))
        }
        "big" => {
            let n: usize = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("n="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            const CHUNK: usize = 64 * 1024;
            let chunk = Bytes::from(vec![0u8; CHUNK]);
            let stream = futures_util::stream::iter((0..n.div_ceil(CHUNK)).map(move |i| {
                let len = CHUNK.min(n - i * CHUNK);
                Ok::<_, std::io::Error>(Frame::data(chunk.slice(..len)))
            }));
            Ok(Response::new(BodyExt::boxed(StreamBody::new(stream))))
        }
        "slow" => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        _ => {
            let headers: Vec<(String, String)> = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let echo = serde_json::json!({
                "method": req.method().as_str(),
                "path": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"),
                "target": req.uri().to_string(),
                "headers": headers,
            });
            let mut res = full(StatusCode::OK, echo.to_string());
            res.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            res.headers_mut()
                .insert("x-upstream", "yes".parse().unwrap());
            // A header of its own that a virtual proxy's settings may replace.
            res.headers_mut()
                .insert("x-frame-options", "ALLOWALL".parse().unwrap());
            Ok(res)
        }
    }
}

/// Every value of header `name` in an echo reply.
pub fn echoed<'a>(echo: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    echo["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h[0].as_str() == Some(name))
        .filter_map(|h| h[1].as_str())
        .collect()
}
