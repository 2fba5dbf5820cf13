//! Upstream proxying: the back end sees exactly the gateway's identity headers and never a
//! client's, never the ticket; bodies stream both ways in bounded memory; WebSockets pass
//! through (see `websocket.rs`); a dead or slow back end gets `502`/`504` quickly.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway_tests::upstream::{self, echoed};
use gateway_tests::{cookie, get, login, raw, ticket, TestGateway};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

async fn gateway_with_upstream(extra: &str) -> (TestGateway, std::net::SocketAddr) {
    let up = upstream::start().await;
    let gw = TestGateway::start(&format!(
        "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n\
         upstream = \"http://{up}\"\n[qlikview]\nupstream = \"http://{up}\"\n{extra}"
    ))
    .await;
    (gw, up)
}

async fn ticket_with_attributes(api: std::net::SocketAddr) -> String {
    let res = gateway_tests::post_ticket(
        api,
        "ext",
        r#"{"UserDirectory":"ACME","UserId":"j doe","Attributes":[{"Group":"Sales"},{"Group":"EU"},{"email":""}]}"#,
    )
    .await;
    res.json()["Ticket"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_back_end_sees_the_gateway_identity_and_not_the_ticket() {
    let (gw, _) = gateway_with_upstream("").await;
    let t = ticket_with_attributes(gw.api).await;
    let res = get(
        gw.frontend,
        &format!("/ext/hub/stream?a=1&qlikTicket={t}&b=2"),
        "Host: qs.example.com\r\n",
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("x-upstream"),
        Some("yes"),
        "the resource itself, from the back end"
    );
    let cookie = res.header("set-cookie").unwrap().to_owned();
    assert!(cookie.starts_with("X-Qlik-Session-ext-HTTP="));
    let session_id = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    let echo = res.json();
    assert_eq!(
        echo["path"], "/ext/hub/stream?a=1&b=2",
        "qlikTicket removed, the rest kept"
    );
    assert_eq!(
        echo["target"], "/ext/hub/stream?a=1&b=2",
        "origin form, as to an origin server"
    );
    assert_eq!(
        echoed(&echo, "x-qlik-user"),
        ["UserDirectory=ACME; UserId=j%20doe"]
    );
    assert_eq!(
        echoed(&echo, "x-qlik-security"),
        ["SecureRequest=true; Context=AppAccess; Group=Sales; Group=EU; email=;"]
    );
    assert_eq!(echoed(&echo, "x-qlik-proxysession"), [session_id]);
    assert_eq!(echoed(&echo, "x-qlik-virtual-proxy-prefix"), ["ext"]);
    assert_eq!(echoed(&echo, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(echoed(&echo, "x-forwarded-proto"), ["http"]);
    assert_eq!(echoed(&echo, "x-forwarded-host"), ["qs.example.com"]);
    assert!(
        !echo.to_string().contains(&t),
        "the ticket never reaches the back end"
    );

    // Nor does a ticket sent as a header.
    let t = ticket(gw.api, "ext").await;
    let res = get(gw.frontend, "/ext/hub/", &format!("X-Qlik-Ticket: {t}\r\n")).await;
    assert_eq!(res.status, 200);
    let echo = res.json();
    assert!(echoed(&echo, "x-qlik-ticket").is_empty());
    assert!(!echo.to_string().contains(&t));
}

#[tokio::test]
async fn client_supplied_identity_headers_never_pass() {
    let (gw, _) = gateway_with_upstream("").await;
    let cookie = login(&gw, "ext").await;
    for (name, spoof) in [
        ("x-qlik-user", "UserDirectory=EVIL; UserId=admin"),
        (
            "x-qlik-security",
            "SecureRequest=true; Context=ManagementAccess; Group=Admins;",
        ),
        ("x-qlik-proxysession", "stolen-session"),
        ("x-qlik-proxyid", "ProxyId=evil; Prefix=ext"),
        ("x-qlik-virtual-proxy-prefix", "admin"),
        ("qvuser", "CUSTOM\\admin"),
    ] {
        let mixed = name.to_uppercase();
        let res = get(
            gw.frontend,
            "/ext/hub/",
            &format!("Cookie: {cookie}\r\n{mixed}: {spoof}\r\n{name}: {spoof}\r\n"),
        )
        .await;
        assert_eq!(res.status, 200, "{name}");
        let echo = res.json();
        let seen = echoed(&echo, name);
        assert!(!seen.contains(&spoof), "{name} leaked: {seen:?}");
        match name {
            "x-qlik-user" => assert_eq!(seen, ["UserDirectory=ACME; UserId=jdoe"]),
            "x-qlik-security" => assert_eq!(
                seen,
                ["SecureRequest=true; Context=AppAccess; Group=Sales;"]
            ),
            "x-qlik-virtual-proxy-prefix" => assert_eq!(seen, ["ext"]),
            "x-qlik-proxysession" => assert_eq!(seen.len(), 1),
            _ => assert!(seen.is_empty(), "{name}: {seen:?}"),
        }
    }
}

#[tokio::test]
async fn hop_by_hop_headers_stop_at_the_gateway() {
    let (gw, _) = gateway_with_upstream("").await;
    let cookie = login(&gw, "ext").await;
    let res = get(
        gw.frontend,
        "/ext/hub/",
        &format!("Cookie: {cookie}\r\nKeep-Alive: timeout=5\r\nX-Private-Hop: secret\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\nConnection: X-Private-Hop\r\nX-Kept: yes\r\n"),
    )
    .await;
    let echo = res.json();
    for name in ["keep-alive", "x-private-hop", "te", "proxy-authorization"] {
        assert!(echoed(&echo, name).is_empty(), "{name} forwarded");
    }
    assert_eq!(echoed(&echo, "x-kept"), ["yes"]);
}

#[tokio::test]
async fn qlikview_sessions_reach_the_back_end_as_header_authentication() {
    let (gw, _) = gateway_with_upstream(
        "upstream_user_header = \"X-QV-User\"\nupstream_user_prefix = \"ACME\\\\\"\n",
    )
    .await;
    let xml = "<Global method=\"GetWebTicket\"><UserId>jdoe</UserId></Global>";
    let req = format!("POST /QvAJAXZfc/GetWebTicket.aspx HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}", xml.len());
    let text = raw(gw.frontend, req.as_bytes()).await.text();
    let t = &text[18..58];
    let res = get(
        gw.frontend,
        &format!(
            "/QvAJAXZfc/Authenticate.aspx?try=/QvAJAXZfc/opendoc.htm?document=a.qvw&webticket={t}"
        ),
        "",
    )
    .await;
    let cookie = cookie(&res);
    let res = get(gw.frontend, "/QvAJAXZfc/opendoc.htm?document=a.qvw", &format!("Cookie: {cookie}\r\nX-QV-User: CUSTOM\\admin\r\nX-Qlik-User: UserDirectory=X; UserId=Y\r\n")).await;
    let echo = res.json();
    assert_eq!(echoed(&echo, "x-qv-user"), ["ACME\\jdoe"]);
    assert!(echoed(&echo, "x-qlik-user").is_empty());
    assert_eq!(echo["path"], "/QvAJAXZfc/opendoc.htm?document=a.qvw");
}

#[tokio::test]
async fn the_default_qlikview_header_is_qvuser_with_custom_prefix() {
    let (gw, _) = gateway_with_upstream("").await;
    let xml = "<Global method=\"GetWebTicket\"><UserId>bob</UserId></Global>";
    let req = format!("POST /QvAJAXZfc/GetWebTicket.aspx HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}", xml.len());
    let text = raw(gw.frontend, req.as_bytes()).await.text();
    let t = &text[18..58];
    let res = get(
        gw.frontend,
        &format!("/QvAJAXZfc/Authenticate.aspx?try=/QlikView/&webticket={t}"),
        "",
    )
    .await;
    let cookie = cookie(&res);
    let echo = get(
        gw.frontend,
        "/QlikView/",
        &format!("Cookie: {cookie}\r\nQVUSER: CUSTOM\\admin\r\n"),
    )
    .await
    .json();
    assert_eq!(echoed(&echo, "qvuser"), ["CUSTOM\\bob"]);
}

#[tokio::test]
async fn a_dead_back_end_is_a_quick_502_and_the_session_survives() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gw = TestGateway::start(&format!(
        "[[virtual_proxy]]\nprefix = \"ext\"\nupstream = \"http://{closed}\"\n"
    ))
    .await;
    let t = ticket(gw.api, "ext").await;
    let started = Instant::now();
    let res = get(gw.frontend, &format!("/ext/hub/?qlikTicket={t}"), "").await;
    assert_eq!(res.status, 502);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(res.text().contains("Bad gateway"));
    let cookie = res
        .header("set-cookie")
        .expect("the session is created all the same")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let me = get(
        gw.frontend,
        "/ext/qps/user",
        &format!("Cookie: {cookie}\r\n"),
    )
    .await;
    assert_eq!(me.json()["userId"], "jdoe", "the session survives");
}

#[tokio::test]
async fn a_slow_back_end_is_a_504_within_the_timeout() {
    let (gw, _) = gateway_with_upstream("[proxy]\ntimeout_seconds = 1\n").await;
    let cookie = login(&gw, "ext").await;
    let started = Instant::now();
    let res = get(gw.frontend, "/ext/slow", &format!("Cookie: {cookie}\r\n")).await;
    assert_eq!(res.status, 504);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        get(gw.frontend, "/ext/hub/", &format!("Cookie: {cookie}\r\n"))
            .await
            .status,
        200
    );
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_mebibytes_stream_through_both_ways_in_bounded_memory() {
    const SIZE: usize = 100 * 1024 * 1024;
    let (gw, _) = gateway_with_upstream("").await;
    let cookie = login(&gw, "ext").await;
    let before = resident_bytes();

    // Upload: 1,600 chunks of 64 KiB, generated as they are sent.
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let frames = futures_util::stream::iter(
        (0..SIZE / chunk.len()).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone()))),
    );
    let client: Client<_, StreamBody<_>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::post(format!("http://{}/ext/count", gw.frontend))
        .header("cookie", &cookie)
        .body(StreamBody::new(frames))
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let counted = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(counted, SIZE.to_string().as_bytes());

    // Download: counted as it arrives, never held whole.
    let client: Client<_, http_body_util::Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::get(format!("http://{}/ext/big?n={SIZE}", gw.frontend))
        .header("cookie", &cookie)
        .body(http_body_util::Empty::new())
        .unwrap();
    let mut body = client.request(req).await.unwrap().into_body();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        received += frame.unwrap().data_ref().map_or(0, |d| d.len());
    }
    assert_eq!(received, SIZE);

    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 48 * 1024 * 1024,
        "resident memory grew by {grown} bytes moving 2 x 100 MiB"
    );
}
