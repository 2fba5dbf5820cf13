//! `hello [ADDR]`: the ceiling the gateway is measured against.
//!
//! The cheapest HTTP/1.1 server hyper allows, built from the same hyper, hyper-util and
//! tokio as the gateway and run the same way (a multi-thread `Runtime::new()`): every
//! request gets `{"hello":"world"}` with `Content-Length`. Whatever the gateway costs above
//! this is the gateway's own work; the benchmark also uses it as the upstream for the
//! `proxied` workload.
//!
//! Binds `ADDR` (default `127.0.0.1:0`) and prints the bound address on stdout.

use std::convert::Infallible;
use std::io::Write;
use std::process::ExitCode;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The fixed reply body.
const BODY: &[u8] = br#"{"hello":"world"}"#;

fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hello: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(&addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", listener.local_addr()?)?;
    stdout.flush()?;
    loop {
        let (stream, _) = listener.accept().await?;
        // As the gateway does: small replies must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

/// `Full` has an exact size, so hyper writes `Content-Length` itself.
async fn answer(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(BODY)));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(res)
}
