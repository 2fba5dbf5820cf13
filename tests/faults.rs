//! Hostile input, faults and what real clients hit: one regression test per defect, over
//! real sockets. Each would fail without its fix.

use std::time::{Duration, Instant};

use gateway_tests::upstream::{self, echoed};
use gateway_tests::{get, login, post_ticket, raw, read_response, TestGateway};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A gateway whose virtual proxy `ext` forwards to the echoing test back end.
async fn proxied(extra: &str) -> TestGateway {
    let up = upstream::start().await;
    TestGateway::start(&format!(
        "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n\
         upstream = \"http://{up}\"\n[qlikview]\nupstream = \"http://{up}\"\n{extra}"
    ))
    .await
}

/// Logs `attributes` in at `ext` and returns the session cookie.
async fn login_with(gw: &TestGateway, attributes: &str) -> String {
    let res = post_ticket(
        gw.api,
        "ext",
        &format!(r#"{{"UserDirectory":"ACME","UserId":"jdoe","Attributes":{attributes}}}"#),
    )
    .await;
    let t = res.json()["Ticket"].as_str().unwrap().to_owned();
    gateway_tests::cookie(&get(gw.frontend, &format!("/ext/hub/?qlikTicket={t}"), "").await)
}

#[tokio::test]
async fn underscore_spellings_of_identity_headers_never_reach_the_back_end() {
    let gw = proxied("").await;
    let cookie = login(&gw, "ext").await;
    let res = get(
        gw.frontend,
        "/ext/hub/",
        &format!(
            "Cookie: {cookie}\r\nX_Qlik_User: UserDirectory=EVIL; UserId=admin\r\n\
             X_Qlik_Security: Group=Admins;\r\nQV_USER: CUSTOM\\admin\r\nx_qlik_proxysession: s\r\n"
        ),
    )
    .await;
    assert_eq!(res.status, 200);
    let echo = res.json();
    for name in [
        "x_qlik_user",
        "x_qlik_security",
        "qv_user",
        "x_qlik_proxysession",
    ] {
        assert!(
            echoed(&echo, name).is_empty(),
            "{name} reached the back end"
        );
    }
    assert_eq!(
        echoed(&echo, "x-qlik-user"),
        ["UserDirectory=ACME; UserId=jdoe"]
    );
}

#[tokio::test]
async fn attribute_values_cannot_forge_security_header_parts() {
    let gw = proxied("").await;
    let cookie = login_with(&gw, r#"[{"Group":"v; Group=Admins"},{"Dept":"=x"}]"#).await;
    let res = get(gw.frontend, "/ext/hub/", &format!("Cookie: {cookie}\r\n")).await;
    let echo = res.json();
    let security = echoed(&echo, "x-qlik-security");
    assert_eq!(
        security,
        ["SecureRequest=true; Context=AppAccess; Group=v%3B Group=Admins; Dept=%3Dx;"]
    );
    let groups = security[0]
        .split(';')
        .filter(|p| p.trim().starts_with("Group="))
        .count();
    assert_eq!(groups, 1, "one Group part only");
}

#[tokio::test]
async fn connection_cannot_take_away_host() {
    let gw = proxied("").await;
    let cookie = login(&gw, "ext").await;
    let res = get(
        gw.frontend,
        "/ext/hub/",
        &format!("Cookie: {cookie}\r\nConnection: Host, X-Qlik-User\r\n"),
    )
    .await;
    assert_eq!(res.status, 200);
    let echo = res.json();
    assert_eq!(echoed(&echo, "host").len(), 1, "{echo}");
    assert_eq!(echoed(&echo, "x-qlik-user").len(), 1, "{echo}");
}

#[tokio::test]
async fn a_malformed_chunked_body_on_a_proxied_route_is_a_400() {
    let gw = proxied("").await;
    let cookie = login(&gw, "ext").await;
    let res = raw(
        gw.frontend,
        format!(
            "POST /ext/hub/count HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\
             Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nnot a chunk\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(res.status, 400, "{}", res.text());
    let metrics = get(gw.api, "/metrics", "").await.text();
    assert!(
        !metrics.contains("ticket_gateway_upstream_errors_total"),
        "counted as the back end's fault:\n{metrics}"
    );
}

#[tokio::test]
async fn http2_clients_get_x_forwarded_host_from_the_authority() {
    use http_body_util::{BodyExt, Empty};
    let gw = proxied("").await;
    let cookie = login(&gw, "ext").await;
    let stream = TcpStream::connect(gw.frontend).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2c handshake");
    tokio::spawn(conn);
    let req = http::Request::get("http://qs.example.com/ext/hub/")
        .header("cookie", &cookie)
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.expect("h2 response");
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echoed(&echo, "x-forwarded-host"), ["qs.example.com"]);
}

/// A request head whose body never comes.
async fn stalled_post(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    s
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408_and_frees_its_connection() {
    let gw = TestGateway::start(
        "[limits]\nbody_read_timeout_seconds = 1\nmax_connections = 4\nidle_timeout_seconds = 60\n",
    )
    .await;
    let started = Instant::now();
    let mut stalled = Vec::new();
    for path in [
        "/QvAJAXZfc/AccessPoint.aspx",
        "/qps/ticket?xrfkey=abcdefghijklmnop",
        "/QvAJAXZfc/GetWebTicket.aspx",
        "/demo/login",
    ] {
        let addr = if path.starts_with("/qps") {
            gw.api
        } else {
            gw.frontend
        };
        stalled.push(stalled_post(addr, path).await);
    }
    // The API one needs its Xrfkey header to get as far as the body: it was sent without,
    // so it is refused at once; the others wait for their bodies and time out.
    for mut s in stalled {
        let res = tokio::time::timeout(Duration::from_secs(5), read_response(&mut s))
            .await
            .expect("answered within the body timeout");
        assert!(matches!(res.status, 408 | 403), "{}", res.status_line);
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // The slots are free again.
    assert_eq!(get(gw.api, "/healthz", "").await.status, 200);
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_too() {
    let gw = TestGateway::start("[limits]\nbody_read_timeout_seconds = 1\n").await;
    let mut s = stalled_post(gw.frontend, "/QvAJAXZfc/AccessPoint.aspx").await;
    let trickle = async {
        for _ in 0..10 {
            if s.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let started = Instant::now();
    trickle.await;
    let res = tokio::time::timeout(Duration::from_secs(3), read_response(&mut s))
        .await
        .expect("answered");
    assert_eq!(res.status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_proxied_upload_that_stalls_gets_408_not_502() {
    let gw = proxied("[limits]\nbody_read_timeout_seconds = 1\n").await;
    let cookie = login(&gw, "ext").await;
    let mut s = TcpStream::connect(gw.frontend).await.unwrap();
    s.write_all(
        format!("POST /ext/hub/count HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Length: 100000\r\n\r\nsome")
            .as_bytes(),
    )
    .await
    .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), read_response(&mut s))
        .await
        .expect("answered");
    assert_eq!(res.status, 408, "{}", res.text());
}

#[tokio::test]
async fn a_reload_with_the_spent_ticket_keeps_the_session() {
    let gw = proxied("").await;
    let t = gateway_tests::ticket(gw.api, "ext").await;
    let first = get(gw.frontend, &format!("/ext/hub/?qlikTicket={t}"), "").await;
    let cookie = gateway_tests::cookie(&first);
    // The browser reloads: the spent ticket is still in its address bar.
    let again = get(
        gw.frontend,
        &format!("/ext/hub/?qlikTicket={t}"),
        &format!("Cookie: {cookie}\r\n"),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.status_line);
    assert!(again.header("set-cookie").is_none());
    assert_eq!(
        echoed(&again.json(), "x-qlik-user"),
        ["UserDirectory=ACME; UserId=jdoe"]
    );
    // An unknown ticket with the cookie: the same.
    let unknown = get(
        gw.frontend,
        "/ext/hub/?qlikTicket=NoSuchTicketXxYz",
        &format!("Cookie: {cookie}\r\n"),
    )
    .await;
    assert_eq!(unknown.status, 200);
    // Without the cookie the spent ticket still sends the browser to log in.
    assert_eq!(
        get(gw.frontend, &format!("/ext/hub/?qlikTicket={t}"), "")
            .await
            .status,
        302
    );
}

#[tokio::test]
async fn x_qlik_ticket_in_the_query_redeems_in_any_casing() {
    let gw = proxied("").await;
    for name in ["X-Qlik-Ticket", "x-qlik-ticket", "X-QLIK-TICKET"] {
        let t = gateway_tests::ticket(gw.api, "ext").await;
        let res = get(gw.frontend, &format!("/ext/hub/page?a=1&{name}={t}"), "").await;
        assert_eq!(res.status, 200, "{name}");
        assert!(res.header("set-cookie").is_some(), "{name}");
        let echo = res.json();
        assert!(
            !echo.to_string().contains(&t),
            "the ticket reached the back end: {echo}"
        );
        assert_eq!(echo["path"], "/ext/hub/page?a=1");
    }
}

#[tokio::test]
async fn early_replies_are_read_over_plain_http_too() {
    use tokio::io::AsyncReadExt;
    let gw = TestGateway::start("").await;
    let mut s = TcpStream::connect(gw.frontend).await.unwrap();
    // A head far over the limit: the gateway answers 431 once its 64 KiB read buffer is
    // full without a whole head.
    let big = "y".repeat(96 * 1024);
    s.write_all(format!("GET /hub/ HTTP/1.1\r\nHost: x\r\nX-Big: {big}").as_bytes())
        .await
        .unwrap();
    s.readable().await.unwrap();
    // A client that fails to send gives up before it reads: the rest must go through.
    let rest = format!("{}\r\n\r\n", "y".repeat(256 * 1024));
    s.write_all(rest.as_bytes())
        .await
        .expect("the rest is taken, not reset");
    let mut reply = Vec::new();
    let read = s.read_to_end(&mut reply).await;
    assert!(
        reply.starts_with(b"HTTP/1.1 431"),
        "{read:?} {:?}",
        String::from_utf8_lossy(&reply)
    );
}

#[tokio::test]
async fn a_target_id_of_one_virtual_proxy_is_not_honoured_by_another() {
    let gw = TestGateway::start(
        "[[virtual_proxy]]\nprefix = \"a\"\n[[virtual_proxy]]\nprefix = \"b\"\n",
    )
    .await;
    let res = get(gw.frontend, "/a/hub/", "").await;
    let location = res.header("location").unwrap().to_owned();
    let target_id = location.rsplit_once("targetId=").unwrap().1;
    let body = format!(r#"{{"UserDirectory":"A","UserId":"b","TargetId":"{target_id}"}}"#);
    let other = post_ticket(gw.api, "b", &body).await;
    assert_eq!(other.status, 201);
    assert_eq!(other.json()["TargetUri"], serde_json::Value::Null);
    let own = post_ticket(gw.api, "a", &body).await;
    assert_eq!(
        own.json()["TargetUri"],
        format!("http://{}/a/hub/", gw.frontend)
    );
}
