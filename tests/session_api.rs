//! The session and user APIs (`/qps/{vp}/session…`, `/qps/{vp}/user/…`), the personal API
//! (`/{vp}/qps/user`), and the session limit, as portals and the hub use them.

use std::time::Duration;

use bytes::Bytes;
use gateway_tests::{get, login, raw, send, RawResponse, TestGateway};
use ticket_gateway::{Gateway, Side};

const CONFIG: &str =
    "[[virtual_proxy]]\nprefix = \"ext\"\nsession_cookie_name = \"X-Qlik-Session-ext\"\n\
                      auth_module_redirect_uri = \"https://auth.example.com/login\"\n";

const XRF: &str = "xrfkey=abcdefghijklmnop";

async fn api(gw: &TestGateway, method: &str, path: &str, body: Option<&str>) -> RawResponse {
    let sep = if path.contains('?') { '&' } else { '?' };
    let body_part = body.map_or(String::new(), |b| {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )
    });
    let end = if body.is_some() { "" } else { "\r\n" };
    let req = format!(
        "{method} {path}{sep}{XRF} HTTP/1.1\r\nHost: x\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\nConnection: close\r\n{body_part}{end}"
    );
    raw(gw.api, req.as_bytes()).await
}

async fn create(gw: &TestGateway, body: &str) -> RawResponse {
    api(gw, "POST", "/qps/ext/session", Some(body)).await
}

/// What a client tested against a real proxy checks every session reply with.
fn looks_like_a_session(text: &str) -> bool {
    let keys = [
        "\"UserDirectory\":",
        "\"UserId\":",
        "\"Attributes\":",
        "\"SessionId\":",
    ];
    let mut at = 0;
    text.starts_with('{')
        && text.ends_with('}')
        && keys.iter().all(|k| match text[at..].find(k) {
            Some(i) => {
                at += i + k.len();
                true
            }
            None => false,
        })
}

#[tokio::test]
async fn a_portal_creates_a_session_and_the_browser_uses_it() {
    let gw = TestGateway::start(CONFIG).await;
    let res = create(
        &gw,
        r#"{"UserDirectory":"ACME","UserId":"jdoe","SessionId":"portal-chosen 42/x"}"#,
    )
    .await;
    assert_eq!(res.status, 201);
    assert_eq!(
        res.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        res.text(),
        r#"{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[],"SessionId":"portal-chosen 42/x"}"#
    );
    assert!(looks_like_a_session(&res.text()));

    let page = get(
        gw.frontend,
        "/ext/hub/",
        "Cookie: X-Qlik-Session-ext=portal-chosen 42/x\r\nAccept: application/json\r\n",
    )
    .await;
    assert_eq!(
        page.status, 200,
        "a cookie the gateway never issued, named by the session API"
    );
    assert_eq!(page.json()["userId"], "jdoe");

    let dup = create(
        &gw,
        r#"{"UserDirectory":"ACME","UserId":"other","SessionId":"portal-chosen 42/x"}"#,
    )
    .await;
    assert_eq!(dup.status, 400);
    assert!(dup.text().contains("already exists"), "{}", dup.text());

    // camelCase, single quotes, attributes, unknown fields: read as leniently as tickets.
    let res = create(&gw, "{'userDirectory':'ACME','userId':'bob','attributes':[{'Group':'A'},{'Group':''}],'NewUser':true,'sessionId':'s2',}").await;
    assert_eq!(res.status, 201);
    assert_eq!(
        res.text(),
        r#"{"UserDirectory":"ACME","UserId":"bob","Attributes":[{"Group":"A"},{"Group":""}],"SessionId":"s2"}"#
    );
    let res = create(&gw, r#"{"UserDirectory":"ACME","UserId":"no-id"}"#).await;
    assert_eq!(res.status, 201);
    assert!(
        gateway_tests::is_guid(res.json()["SessionId"].as_str().unwrap()),
        "without SessionId the proxy picks a GUID"
    );
    let res = create(
        &gw,
        r#"{"UserDirectory":"ACME","UserId":"a\\b","SessionId":"s3"}"#,
    )
    .await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn get_and_delete_by_id_with_the_texts_clients_look_for() {
    let gw = TestGateway::start(CONFIG).await;
    create(&gw, r#"{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{"Group":"Sales"}],"SessionId":"one"}"#).await;
    create(
        &gw,
        r#"{"UserDirectory":"acme","UserId":"JDOE","SessionId":"two"}"#,
    )
    .await;

    let res = api(&gw, "GET", "/qps/ext/session/one", None).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.text(),
        r#"{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{"Group":"Sales"}],"SessionId":"one"}"#
    );
    // Trailing slash, a JSON body on GET (ignored), an encoded id.
    let res = api(
        &gw,
        "GET",
        "/qps/ext/session/one/",
        Some(r#"{"ignored":true}"#),
    )
    .await;
    assert_eq!(res.status, 200);
    let res = api(&gw, "GET", "/qps/ext/session/nope", None).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.text(), "No session with id nope");

    let res = api(&gw, "DELETE", "/qps/ext/session/one", Some("{}")).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.text(),
        r#"{"Session":{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{"Group":"Sales"}],"SessionId":"one"},"LastSessionForUser":false}"#
    );
    assert_eq!(res.json()["Session"]["UserDirectory"], "ACME");
    let res = api(&gw, "DELETE", "/qps/ext/session/two", None).await;
    assert_eq!(
        res.json()["LastSessionForUser"],
        true,
        "directory and user compared without case"
    );
    let res = api(&gw, "DELETE", "/qps/ext/session/two", None).await;
    assert_eq!(res.status, 404);
    assert!(res.text().contains("No session with id"));
}

#[tokio::test]
async fn list_sessions_and_the_user_api() {
    let gw = TestGateway::start(CONFIG).await;
    assert_eq!(api(&gw, "GET", "/qps/ext/session", None).await.text(), "[]");
    create(
        &gw,
        r#"{"UserDirectory":"ACME","UserId":"j doe","SessionId":"a"}"#,
    )
    .await;
    create(
        &gw,
        r#"{"UserDirectory":"ACME","UserId":"j doe","SessionId":"b"}"#,
    )
    .await;
    create(
        &gw,
        r#"{"UserDirectory":"ACME","UserId":"other","SessionId":"c"}"#,
    )
    .await;
    let all = api(&gw, "GET", "/qps/ext/session/", None).await.json();
    assert_eq!(all.as_array().unwrap().len(), 3);

    let mine = api(&gw, "GET", "/qps/ext/user/ACME/j%20doe", None).await;
    assert_eq!(mine.status, 200);
    let json = mine.json();
    let ids: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["SessionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(
        api(&gw, "GET", "/qps/ext/user/ACME/nobody", None)
            .await
            .text(),
        "[]"
    );

    // Logout of every session of the user; the browser's cookie is dead at once.
    let page = get(gw.frontend, "/ext/hub/", "Cookie: X-Qlik-Session-ext=a\r\n").await;
    assert_eq!(page.status, 200);
    let res = api(&gw, "DELETE", "/qps/ext/user/ACME/j%20doe", Some("{}")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json().as_array().unwrap().len(), 2);
    assert_eq!(
        get(gw.frontend, "/ext/hub/", "Cookie: X-Qlik-Session-ext=a\r\n")
            .await
            .status,
        302
    );
    assert_eq!(
        api(&gw, "GET", "/qps/ext/session", None)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Empty VP segment from a CLI default: the default virtual proxy.
    assert_eq!(
        api(&gw, "GET", "/qps//user/ACME/other", None).await.text(),
        "[]"
    );
}

#[tokio::test]
async fn the_session_api_needs_the_xrfkey_and_a_known_virtual_proxy() {
    let gw = TestGateway::start(CONFIG).await;
    let res = raw(
        gw.api,
        b"GET /qps/ext/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 403);
    assert_eq!(
        api(&gw, "GET", "/qps/nope/session/x", None).await.status,
        404
    );
    assert_eq!(
        api(&gw, "PUT", "/qps/ext/session/x", None).await.status,
        405
    );
    // A bodiless DELETE with a JSON content type, and an unframed body with
    // `Connection: close`: answered, never waited on.
    let res = raw(gw.api, format!("DELETE /qps/ext/session/x?{XRF} HTTP/1.1\r\nHost: x\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{{\"a\":1}}").as_bytes()).await;
    assert_eq!(res.status, 404);
}

#[tokio::test]
async fn the_personal_api_tells_the_browser_who_it_is_and_logs_it_out() {
    let gw = TestGateway::start(CONFIG).await;
    let cookie = login(&gw, "ext").await;

    let me = get(
        gw.frontend,
        "/ext/qps/user",
        &format!("Cookie: {cookie}\r\n"),
    )
    .await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.text(),
        format!(
            r#"{{"userDirectory":"ACME","userId":"jdoe","userName":"jdoe","logoutUri":"http://{}/ext/qps/user"}}"#,
            gw.frontend
        )
    );
    assert_eq!(
        get(
            gw.frontend,
            "/EXT/QPS/USER/",
            &format!("Cookie: {cookie}\r\n")
        )
        .await
        .status,
        200
    );

    let res = raw(gw.frontend, format!("DELETE /ext/qps/user HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n").as_bytes()).await;
    assert_eq!(res.status, 204);
    assert!(res.body.is_empty());
    let cleared = res.headers_named("set-cookie");
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("X-Qlik-Session-ext-HTTP=;")
                && c.contains("Expires=Thu, 01 Jan 1970")),
        "{cleared:?}"
    );
    assert_eq!(
        get(gw.frontend, "/ext/hub/", &format!("Cookie: {cookie}\r\n"))
            .await
            .status,
        302
    );

    let me = get(
        gw.frontend,
        "/ext/qps/user",
        &format!("Cookie: {cookie}\r\n"),
    )
    .await;
    let json = me.json();
    assert_eq!(json["session"], "inactive");
    let login = json["loginUri"].as_str().unwrap();
    assert!(
        login.starts_with("https://auth.example.com/login?proxyRestUri="),
        "{login}"
    );
    // A DELETE without a session is fine too.
    assert_eq!(
        raw(
            gw.frontend,
            b"DELETE /ext/qps/user HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .await
        .status,
        204
    );
}

#[tokio::test]
async fn the_personal_api_login_uri_carries_target_uri() {
    let gw = TestGateway::start(CONFIG).await;
    let target = format!("http://{}/ext/sense/app/1", gw.frontend);
    let me = get(
        gw.frontend,
        &format!(
            "/ext/qps/user?targeturi={}",
            target.replace(':', "%3A").replace('/', "%2F")
        ),
        "",
    )
    .await;
    let login = me.json()["loginUri"].as_str().unwrap().to_owned();
    let target_id = login.rsplit_once("targetId=").unwrap().1;
    let res = gateway_tests::post_ticket(
        gw.api,
        "ext",
        &format!(r#"{{"UserDirectory":"A","UserId":"b","TargetId":"{target_id}"}}"#),
    )
    .await;
    assert_eq!(res.json()["TargetUri"], target.as_str());
    // A foreign target gets no loginUri at all, however it is disguised.
    for foreign in [
        "https%3A%2F%2Fevil.example.com%2F",
        "http%3a%2f%2flocalhost%5c%40evil.com%2f",
        "http%3A%2F%2F127.0.0.1%5C%40evil.com%2F",
        "%2F%5Cevil.example.com",
    ] {
        let me = get(
            gw.frontend,
            &format!("/ext/qps/user?targetUri={foreign}"),
            "",
        )
        .await;
        assert_eq!(
            me.json(),
            serde_json::json!({"session": "inactive"}),
            "{foreign}"
        );
    }
    // Without a targetUri, the login comes back to the hub.
    let me = get(gw.frontend, "/ext/qps/user", "").await;
    let login = me.json()["loginUri"].as_str().unwrap().to_owned();
    let target_id = login.rsplit_once("targetId=").unwrap().1;
    let res = gateway_tests::post_ticket(
        gw.api,
        "ext",
        &format!(r#"{{"UserDirectory":"A","UserId":"b","TargetId":"{target_id}"}}"#),
    )
    .await;
    assert_eq!(
        res.json()["TargetUri"],
        format!("http://{}/ext/hub/", gw.frontend).as_str()
    );
}

fn in_process(extra: &str) -> Gateway {
    gateway_tests::in_process(&format!("{CONFIG}{extra}"))
}

async fn redeem_new(gw: &Gateway) -> http::Response<Bytes> {
    let res = send(
        gw,
        Side::Api,
        "POST",
        &format!("/qps/ext/ticket?{XRF}"),
        None,
        r#"{"UserDirectory":"ACME","UserId":"jdoe"}"#,
    )
    .await;
    let t: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    send(
        gw,
        Side::Frontend,
        "GET",
        &format!("/ext/hub/?qlikTicket={}", t["Ticket"].as_str().unwrap()),
        None,
        "",
    )
    .await
}

fn cookie_of(res: &http::Response<Bytes>) -> String {
    res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(start_paused = true)]
async fn at_most_five_sessions_per_user_then_refused() {
    let gw = in_process("");
    for _ in 0..5 {
        assert_eq!(redeem_new(&gw).await.status(), 200);
    }
    let sixth = redeem_new(&gw).await;
    assert_eq!(sixth.status(), 403);
    assert!(String::from_utf8_lossy(sixth.body()).contains("Too many sessions"));
    let res = send(
        &gw,
        Side::Api,
        "POST",
        &format!("/qps/ext/session?{XRF}"),
        None,
        r#"{"UserDirectory":"acme","UserId":"JDOE","SessionId":"x"}"#,
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(String::from_utf8_lossy(res.body()).contains("UsageDenied"));
    // Another user is not affected; and when a session times out there is room again.
    let res = send(
        &gw,
        Side::Api,
        "POST",
        &format!("/qps/ext/session?{XRF}"),
        None,
        r#"{"UserDirectory":"ACME","UserId":"bob","SessionId":"y"}"#,
    )
    .await;
    assert_eq!(res.status(), 201);
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    assert_eq!(redeem_new(&gw).await.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn evict_oldest_makes_room_by_ending_the_oldest_session() {
    let gw = in_process("max_sessions_per_user = 2\nsession_limit_policy = \"evict-oldest\"\n");
    let first = cookie_of(&redeem_new(&gw).await);
    tokio::time::advance(Duration::from_secs(1)).await;
    let second = cookie_of(&redeem_new(&gw).await);
    let third = cookie_of(&redeem_new(&gw).await);
    assert_eq!(
        send(&gw, Side::Frontend, "GET", "/ext/hub/", Some(&first), "")
            .await
            .status(),
        302,
        "the oldest ended"
    );
    assert_eq!(
        send(&gw, Side::Frontend, "GET", "/ext/hub/", Some(&second), "")
            .await
            .status(),
        200
    );
    assert_eq!(
        send(&gw, Side::Frontend, "GET", "/ext/hub/", Some(&third), "")
            .await
            .status(),
        200
    );
}

#[tokio::test(start_paused = true)]
async fn api_sessions_time_out_and_slide_like_any_other() {
    let gw = in_process("session_inactivity_timeout_minutes = 10\n");
    let res = send(
        &gw,
        Side::Api,
        "POST",
        &format!("/qps/ext/session?{XRF}"),
        None,
        r#"{"UserDirectory":"ACME","UserId":"jdoe","SessionId":"s"}"#,
    )
    .await;
    assert_eq!(res.status(), 201);
    tokio::time::advance(Duration::from_secs(9 * 60)).await;
    assert_eq!(
        send(
            &gw,
            Side::Frontend,
            "GET",
            "/ext/qps/user",
            Some("X-Qlik-Session-ext=s"),
            ""
        )
        .await
        .status(),
        200
    );
    tokio::time::advance(Duration::from_secs(9 * 60)).await;
    assert_eq!(
        send(
            &gw,
            Side::Frontend,
            "GET",
            "/ext/hub/",
            Some("X-Qlik-Session-ext=s"),
            ""
        )
        .await
        .status(),
        200,
        "the personal API call slid it"
    );
    tokio::time::advance(Duration::from_secs(10 * 60)).await;
    let res = send(
        &gw,
        Side::Api,
        "GET",
        &format!("/qps/ext/session/s?{XRF}"),
        None,
        "",
    )
    .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn a_target_uri_on_an_allowed_host_is_honoured() {
    let gw = TestGateway::start(&format!(
        "[frontend]\nallowed_redirect_hosts = [\"portal.example.com\"]\n{CONFIG}"
    ))
    .await;
    let me = get(
        gw.frontend,
        "/ext/qps/user?targetUri=https%3A%2F%2Fportal.example.com%2Fmashup",
        "",
    )
    .await;
    let login = me.json()["loginUri"].as_str().unwrap().to_owned();
    let target_id = login.rsplit_once("targetId=").unwrap().1;
    let res = gateway_tests::post_ticket(
        gw.api,
        "ext",
        &format!(r#"{{"UserDirectory":"A","UserId":"b","TargetId":"{target_id}"}}"#),
    )
    .await;
    assert_eq!(res.json()["TargetUri"], "https://portal.example.com/mashup");
}
