//! The engine WebSocket as Qlik's proxy speaks it: the greeting before anything from the
//! engine, a fatal notification and a close frame whenever the session ends, an upgraded
//! but told-off socket without a session, the `Origin` check and the CSRF token; and the
//! limits sockets live under (connection cap, idle timeout, shutdown).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use gateway_tests::redis_server::RedisServer;
use gateway_tests::upstream::{self, ENGINE_HELLO};
use gateway_tests::{get, login, post_ticket, raw, redis_store, ticket, TestGateway};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Response;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

const HIJACKING: &str = "Cross-Site Websocket Hijacking attack prevention check failed. Possible Cross-Site Websocket Hijacking attack (CSWSH) discovered.";

fn vp(up: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n\
         upstream = \"http://{up}\"\nsession_limit_policy = \"evict-oldest\"\nmax_sessions_per_user = 2\n{extra}"
    )
}

async fn gateway(extra: &str) -> TestGateway {
    let up = upstream::start().await;
    TestGateway::start(&vp(up, extra)).await
}

/// Opens `path` on the front end with `headers`; the upgrade must succeed.
async fn open(
    gw: &TestGateway,
    path: &str,
    headers: &[(&str, &str)],
) -> (Ws, Response<Option<Vec<u8>>>) {
    try_open(gw.frontend, path, headers)
        .await
        .unwrap_or_else(|e| panic!("upgrade of {path} refused: {e}"))
}

async fn try_open(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, Response<Option<Vec<u8>>>), tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    let stream = TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(req, stream).await
}

/// The next message, which must come within 5 s.
async fn next(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a message in time")
        .expect("the socket is open")
        .expect("a good frame")
}

async fn next_json(ws: &mut Ws) -> serde_json::Value {
    match next(ws).await {
        Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
        other => panic!("not a text frame: {other:?}"),
    }
}

/// The close frame that must come next: its code.
async fn closed(ws: &mut Ws) -> u16 {
    match next(ws).await {
        Message::Close(Some(f)) => u16::from(f.code),
        other => panic!("not a close frame: {other:?}"),
    }
}

/// A fatal notification named `method`, then a close frame with status 1000.
async fn told_and_closed(ws: &mut Ws, method: &str, message: &str) {
    let n = next_json(ws).await;
    assert_eq!(n["jsonrpc"], "2.0");
    assert_eq!(n["method"], method, "{n}");
    assert_eq!(n["params"]["severity"], "fatal");
    assert_eq!(n["params"]["message"], message);
    assert!(n["params"]["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(closed(ws).await, 1000);
}

fn cookie_of(res: &Response<Option<Vec<u8>>>) -> String {
    let c = res.headers()["set-cookie"].to_str().unwrap();
    c.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_greeting_comes_first_and_frames_sent_early_arrive_in_order() {
    let gw = gateway("").await;
    let t = ticket(gw.api, "ext").await;
    let (mut ws, res) = open(&gw, &format!("/ext/app/engineData?QlikTicket={t}"), &[]).await;
    assert!(cookie_of(&res).starts_with("X-Qlik-Session-ext-HTTP="));
    // Sent at once, before reading anything.
    for i in 0..5 {
        ws.send(Message::Text(format!("m{i}").into()))
            .await
            .unwrap();
    }
    let greeting = next_json(&mut ws).await;
    assert_eq!(
        greeting,
        serde_json::json!({"jsonrpc": "2.0", "method": "OnAuthenticationInformation", "params": {
            "userId": "jdoe", "userDirectory": "ACME",
            "logoutUri": format!("http://{}/ext/qps/user", gw.frontend), "mustAuthenticate": false}})
    );
    assert_eq!(next(&mut ws).await, Message::Text(ENGINE_HELLO.into()));
    for i in 0..5 {
        assert_eq!(next(&mut ws).await, Message::Text(format!("m{i}").into()));
    }
    // Pings reach the engine and its pong comes back.
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(
        next(&mut ws).await,
        Message::Pong(b"are you there".to_vec().into())
    );
}

/// A signed-in socket on `ext`, its greeting and the engine's hello read; and its cookie.
async fn signed_in_socket(gw: &TestGateway) -> (Ws, String) {
    let cookie = login(gw, "ext").await;
    let (mut ws, _) = open(gw, "/ext/app/x", &[("cookie", &cookie)]).await;
    assert_eq!(
        next_json(&mut ws).await["method"],
        "OnAuthenticationInformation"
    );
    assert_eq!(next(&mut ws).await, Message::Text(ENGINE_HELLO.into()));
    (ws, cookie)
}

fn session_id(cookie: &str) -> &str {
    cookie.split_once('=').unwrap().1
}

const XRF: &str = "xrfkey=abcdefghijklmnop";

#[tokio::test]
async fn every_way_a_session_ends_is_told_then_closed_with_1000() {
    let gw = gateway("").await;
    // The personal API.
    let (mut ws, cookie) = signed_in_socket(&gw).await;
    let res = raw(gw.frontend, format!("DELETE /ext/qps/user HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n").as_bytes()).await;
    assert!(res.status < 300);
    told_and_closed(&mut ws, "OnSessionLoggedOut", "User logged out manually").await;

    // The user API.
    let (mut ws, _) = signed_in_socket(&gw).await;
    let res = raw(gw.api, format!("DELETE /qps/ext/user/ACME/jdoe?{XRF} HTTP/1.1\r\nHost: x\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\nConnection: close\r\n\r\n").as_bytes()).await;
    assert_eq!(res.status, 200);
    told_and_closed(&mut ws, "OnSessionLoggedOut", "User logged out manually").await;

    // The session API.
    let (mut ws, cookie) = signed_in_socket(&gw).await;
    let id = session_id(&cookie);
    let res = raw(gw.api, format!("DELETE /qps/ext/session/{id}?{XRF} HTTP/1.1\r\nHost: x\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\nConnection: close\r\n\r\n").as_bytes()).await;
    assert_eq!(res.status, 200);
    told_and_closed(&mut ws, "OnSessionClosed", "Session closed by server").await;

    // Evicted by newer sessions of the same user (two allowed here).
    let (mut ws, _) = signed_in_socket(&gw).await;
    login(&gw, "ext").await;
    login(&gw, "ext").await;
    told_and_closed(&mut ws, "OnSessionClosed", "Session closed by server").await;
    assert_eq!(gw.gateway.open_websockets(), 0);
}

#[tokio::test]
async fn without_a_session_the_socket_is_told_where_to_log_in_and_closed() {
    let gw = gateway("[frontend]\nallowed_redirect_hosts = [\"mashup.example.com\"]\n").await;
    let (mut ws, res) = open(
        &gw,
        "/ext/app/x?reloadUri=https%3A%2F%2Fmashup.example.com%2Fpage",
        &[],
    )
    .await;
    assert_eq!(res.status(), 101);
    let n = next_json(&mut ws).await;
    assert_eq!(n["method"], "OnAuthenticationInformation");
    assert_eq!(n["params"]["mustAuthenticate"], true);
    let login = n["params"]["loginUri"].as_str().unwrap();
    assert!(
        login.starts_with("https://auth.example.com/login?proxyRestUri="),
        "{login}"
    );
    assert_eq!(closed(&mut ws).await, 1000);
    // The page remembered behind the login is the reloadUri.
    let target_id = login.rsplit_once("targetId=").unwrap().1;
    let t = post_ticket(
        gw.api,
        "ext",
        &format!(r#"{{"UserDirectory":"A","UserId":"b","TargetId":"{target_id}"}}"#),
    )
    .await;
    assert_eq!(t.json()["TargetUri"], "https://mashup.example.com/page");
}

#[tokio::test]
async fn a_ticket_the_session_limit_refuses_is_told_so() {
    let up = upstream::start().await;
    let gw = TestGateway::start(&format!(
        "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n\
         upstream = \"http://{up}\"\nmax_sessions_per_user = 1\n"
    ))
    .await;
    login(&gw, "ext").await;
    let t = ticket(gw.api, "ext").await;
    let (mut ws, _) = open(&gw, &format!("/ext/app/x?qlikTicket={t}"), &[]).await;
    let n = next_json(&mut ws).await;
    assert_eq!(n["method"], "OnMaxParallelSessionsExceeded");
    assert_eq!(n["params"]["severity"], "fatal");
    assert_eq!(closed(&mut ws).await, 1000);
}

/// The status and body of a refused upgrade.
async fn refusal(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    match try_open(gw.frontend, path, headers).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => (
            res.status().as_u16(),
            String::from_utf8(res.body().clone().unwrap_or_default()).unwrap(),
        ),
        Ok(_) => panic!("{path} {headers:?} was upgraded"),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn an_upgrade_from_a_foreign_origin_is_refused_before_the_back_end() {
    let gw = gateway("host_allow_list = [\"mashup.example.com\", \"localhost:3000\"]\n").await;
    let cookie = login(&gw, "ext").await;
    let own = format!("http://{}", gw.frontend);
    for origin in [
        own.as_str(),
        "https://mashup.example.com",
        "http://localhost:3000",
    ] {
        let (mut ws, _) = open(
            &gw,
            "/ext/app/x",
            &[("cookie", &cookie), ("origin", origin)],
        )
        .await;
        assert_eq!(
            next_json(&mut ws).await["method"],
            "OnAuthenticationInformation",
            "{origin}"
        );
    }
    // A script without Origin is not refused for that.
    open(&gw, "/ext/app/x", &[("cookie", &cookie)]).await;
    for origin in [
        "https://evil.example.com",
        "http://localhost:3001",
        "https://mashup.example.com.evil.com",
        "null",
    ] {
        let (status, body) = refusal(
            &gw,
            "/ext/app/x",
            &[("cookie", &cookie), ("origin", origin)],
        )
        .await;
        assert_eq!((status, body.as_str()), (403, HIJACKING), "{origin}");
    }
}

#[tokio::test]
async fn with_csrf_protection_an_upgrade_shows_the_sessions_token() {
    let gw = gateway("websocket_csrf_protection = true\n").await;
    let cookie = login(&gw, "ext").await;
    // The token endpoint, with and without a session.
    let res = get(
        gw.frontend,
        "/ext/qps/csrftoken",
        &format!("Cookie: {cookie}\r\n"),
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(res.body.is_empty());
    let token = res.header("qlik-csrf-token").unwrap().to_owned();
    assert!(token.len() >= 16 && !cookie.contains(&token), "{token}");
    let again = get(
        gw.frontend,
        "/ext/qps/csrftoken",
        &format!("Cookie: {cookie}\r\n"),
    )
    .await;
    assert_eq!(
        again.header("qlik-csrf-token"),
        Some(token.as_str()),
        "stable"
    );
    let none = get(gw.frontend, "/ext/qps/csrftoken", "").await;
    assert_eq!(none.status, 302, "like any request without a session");
    assert!(none.header("qlik-csrf-token").is_none());

    let with_query = format!("/ext/app/x?qlik-csrf-token={token}");
    open(&gw, &with_query, &[("cookie", &cookie)]).await;
    open(
        &gw,
        "/ext/app/x",
        &[("cookie", &cookie), ("qlik-csrf-token", &token)],
    )
    .await;
    let t = ticket(gw.api, "ext").await;
    for (path, headers) in [
        ("/ext/app/x".to_owned(), vec![("cookie", cookie.as_str())]),
        (
            "/ext/app/x?qlik-csrf-token=wrong".to_owned(),
            vec![("cookie", cookie.as_str())],
        ),
        (
            with_query.clone(),
            vec![("cookie", cookie.as_str()), ("authorization", "Bearer x")],
        ),
        (format!("{with_query}&qlikTicket={t}"), vec![]),
    ] {
        let (status, body) = refusal(&gw, &path, &headers).await;
        assert_eq!(
            (status, body.as_str()),
            (403, HIJACKING),
            "{path} {headers:?}"
        );
    }
}

#[tokio::test]
async fn sockets_count_under_max_connections() {
    let gw = gateway("[limits]\nmax_connections = 3\n").await;
    let cookie = login(&gw, "ext").await;
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let (mut ws, _) = open(&gw, "/ext/app/x", &[("cookie", &cookie)]).await;
        next(&mut ws).await;
        sockets.push(ws);
    }
    assert!(
        try_open(gw.frontend, "/ext/app/x", &[("cookie", &cookie)])
            .await
            .is_err(),
        "a fourth connection is refused"
    );
    drop(sockets.pop());
    let mut opened = None;
    for _ in 0..50 {
        if let Ok(ws) = try_open(gw.frontend, "/ext/app/x", &[("cookie", &cookie)]).await {
            opened = Some(ws);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(opened.is_some(), "a place frees when a socket ends");
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_websocket_idle_timeout() {
    let gw = gateway("[limits]\nwebsocket_idle_timeout_seconds = 1\n").await;
    let (mut ws, _) = signed_in_socket(&gw).await;
    let started = Instant::now();
    assert_eq!(closed(&mut ws).await, 1001);
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let gw = gateway("").await;
    let (mut ws, _) = signed_in_socket(&gw).await;
    let stopping = tokio::spawn(gw.stop());
    assert_eq!(closed(&mut ws).await, 1001);
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("stopped in time")
        .unwrap();
}

#[tokio::test]
async fn a_logout_on_one_node_closes_the_socket_on_another() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let up = upstream::start().await;
    let store = |p| redis_store(&server, p, Duration::from_secs(2));
    let a = TestGateway::start_with_store(&vp(up, ""), store("site:").await).await;
    let b = TestGateway::start_with_store(&vp(up, ""), store("site:").await).await;
    let (mut ws, cookie) = signed_in_socket(&b).await;
    let started = Instant::now();
    let res = raw(a.frontend, format!("DELETE /ext/qps/user HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n").as_bytes()).await;
    assert!(res.status < 300);
    told_and_closed(&mut ws, "OnSessionLoggedOut", "User logged out manually").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
