//! Limits against hostile input: bodies, heads, slow and idle connections, connection
//! count; each answered in the dialect's own format, never a hang.

use std::time::{Duration, Instant};

use gateway_tests::{raw, TestGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes; returns what arrived and how long it took.
async fn until_closed(s: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut buf = Vec::new();
    let result = tokio::time::timeout(within, s.read_to_end(&mut buf)).await;
    assert!(
        result.is_ok(),
        "the connection was not closed within {within:?}"
    );
    (buf, started.elapsed())
}

#[tokio::test]
async fn every_body_limit_answers_413_in_its_dialect() {
    let gw = TestGateway::start("[limits]\nmax_body_bytes = 1000\n").await;
    let big = "x".repeat(2000);
    let post = |path: &str, headers: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{big}", big.len())
    };
    let xrf = "X-Qlik-Xrfkey: abcdefghijklmnop\r\n";
    let res = raw(
        gw.api,
        post("/qps/session?xrfkey=abcdefghijklmnop", xrf).as_bytes(),
    )
    .await;
    assert_eq!(res.status, 413);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let res = raw(
        gw.frontend,
        post("/QvAJAXZfc/GetWebTicket.aspx", "").as_bytes(),
    )
    .await;
    assert_eq!(res.status, 413);
    assert!(
        res.text()
            .starts_with("<Global><_retval_>Invalid call</_retval_>"),
        "{}",
        res.text()
    );
    let res = raw(
        gw.frontend,
        post("/QvAJAXZfc/AccessPoint.aspx", "").as_bytes(),
    )
    .await;
    assert_eq!(res.status, 413);
    assert!(res.text().starts_with("<result>"));
}

#[tokio::test]
async fn oversized_heads_and_header_floods_get_431() {
    let gw = TestGateway::start("[limits]\nmax_header_bytes = 8192\nmax_headers = 20\n").await;
    let long = format!(
        "GET /hub/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(10_000)
    );
    assert_eq!(raw(gw.frontend, long.as_bytes()).await.status, 431);
    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let flood = format!("GET /hub/ HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n");
    assert_eq!(raw(gw.frontend, flood.as_bytes()).await.status, 431);
    let fine: String = (0..10).map(|i| format!("X-H{i}: v\r\n")).collect();
    let ok = format!("GET /hub/ HTTP/1.1\r\nHost: x\r\n{fine}Connection: close\r\n\r\n");
    assert_eq!(raw(gw.frontend, ok.as_bytes()).await.status, 302);
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_after_the_header_timeout() {
    let gw = TestGateway::start("[limits]\nheader_read_timeout_seconds = 1\n").await;
    let mut s = TcpStream::connect(gw.api).await.unwrap();
    s.write_all(b"POST /qps/ticket HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, took) = until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let gw = TestGateway::start("[limits]\nidle_timeout_seconds = 1\n").await;
    let mut s = TcpStream::connect(gw.frontend).await.unwrap();
    s.write_all(b"GET /hub/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (buf, took) = until_closed(&mut s, Duration::from_secs(15)).await;
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 302"));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(12),
        "{took:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let gw = TestGateway::start("[limits]\nmax_connections = 2\n").await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(gw.frontend).await.unwrap();
        s.write_all(b"GET /hub/ HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 302");
        held.push(s);
    }
    let mut third = TcpStream::connect(gw.frontend).await.unwrap();
    let _ = third
        .write_all(b"GET /hub/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (buf, _) = until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(buf.is_empty(), "served beyond the cap");
    drop(held);
    // Capacity comes back once the held connections close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = tokio::time::timeout(
            Duration::from_secs(2),
            raw(
                gw.frontend,
                b"GET /hub/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ),
        )
        .await;
        if matches!(res, Ok(ref r) if r.status == 302) {
            break;
        }
        assert!(Instant::now() < deadline, "capacity did not come back");
        tokio::task::yield_now().await;
    }
}
