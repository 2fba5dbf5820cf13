//! `hello [--backend] [ADDR]`: the ceiling the gateway is measured against, and the back end
//! behind the proxies.
//!
//! The cheapest HTTP/1.1 server hyper allows, built from the same hyper, hyper-util and
//! tokio as the gateway and run the same way (`gateway_bench::runtime`): every
//! request gets `{"hello":"world"}` with `Content-Length`. Whatever the gateway costs above
//! this is the gateway's own work.
//!
//! With `--backend` it is the back end of the proxied workloads (behind the gateway, nginx
//! and HAProxy alike), and answers a little more than hello: a path ending in `/download`
//! gets a 1 MiB body (`Content-Length`), a `POST` has its body read and dropped before the
//! hello reply, and a WebSocket upgrade is accepted and every text or binary message echoed
//! (tokio-tungstenite). The plain mode keeps the ceiling free of those checks.
//!
//! Binds `ADDR` (default `127.0.0.1:0`) and prints the bound address on stdout.

use std::convert::Infallible;
use std::io::Write;
use std::process::ExitCode;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderMap, HeaderValue, CONTENT_TYPE};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// The fixed reply body.
const BODY: &[u8] = br#"{"hello":"world"}"#;
/// The body of a `/download` path: `gateway_bench::workload::STREAM_BYTES`.
const DOWNLOAD_BYTES: usize = 1 << 20;

fn main() -> ExitCode {
    let mut backend = false;
    let mut addr = "127.0.0.1:0".to_owned();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--backend" => backend = true,
            _ => addr = arg,
        }
    }
    let runtime = match gateway_bench::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hello: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(&addr, backend)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: &str, backend: bool) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", listener.local_addr()?)?;
    stdout.flush()?;
    let download = Bytes::from(vec![b'x'; DOWNLOAD_BYTES]);
    loop {
        let (stream, _) = listener.accept().await?;
        // As the gateway does: small replies must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        if backend {
            let download = download.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| back_end(req, download.clone()));
                let _ = http1::Builder::new()
                    .serve_connection(io, service)
                    .with_upgrades()
                    .await;
            });
        } else {
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(io, service_fn(answer))
                    .await;
            });
        }
    }
}

/// `Full` has an exact size, so hyper writes `Content-Length` itself.
async fn answer(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(hello())
}

fn hello() -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(BODY)));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The back end of the proxied workloads.
async fn back_end(
    mut req: Request<Incoming>,
    download: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(key) = websocket_key(req.headers()) {
        let accept = derive_accept_key(key.as_bytes());
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                echo(TokioIo::new(upgraded)).await;
            }
        });
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = res.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::try_from(accept) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        return Ok(res);
    }
    if req.method() == Method::POST {
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
        return Ok(hello());
    }
    if req.uri().path().ends_with("/download") {
        let mut res = Response::new(Full::new(download));
        res.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        return Ok(res);
    }
    Ok(hello())
}

/// The client's `Sec-WebSocket-Key` if the request asks for a WebSocket upgrade.
fn websocket_key(headers: &HeaderMap) -> Option<String> {
    let upgrade = headers.get(header::UPGRADE)?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return None;
    }
    Some(
        headers
            .get(header::SEC_WEBSOCKET_KEY)?
            .to_str()
            .ok()?
            .to_owned(),
    )
}

/// Echoes every text and binary message until the socket closes.
async fn echo(io: TokioIo<hyper::upgrade::Upgraded>) {
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            break;
        }
    }
}
