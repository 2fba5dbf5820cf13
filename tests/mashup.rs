//! What a mashup on another origin needs of a virtual proxy: response headers, CORS with
//! credentials, anonymous access, `reloadUri` and `forceAuthentication`.

use gateway_tests::upstream::{self, echoed};
use gateway_tests::{cookie, get, login, post_ticket, raw, ticket, TestGateway};

const MASHUP: &str = "https://mashup.example.com";

async fn gateway(extra: &str) -> TestGateway {
    let up = upstream::start().await;
    TestGateway::start(&format!(
        "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n\
         upstream = \"http://{up}\"\nmax_sessions_per_user = 1\n{extra}"
    ))
    .await
}

const HEADERS: &str = "additional_response_headers = { \"Strict-Transport-Security\" = \"max-age=31536000\", \"X-Frame-Options\" = \"SAMEORIGIN\" }\n";

fn has_added_headers(res: &gateway_tests::RawResponse) -> bool {
    res.headers_named("strict-transport-security") == ["max-age=31536000"]
        && res.headers_named("x-frame-options") == ["SAMEORIGIN"]
}

#[tokio::test]
async fn additional_headers_go_on_every_response_of_the_proxy() {
    let gw = gateway(HEADERS).await;
    // A redirect, an error page, a page of the gateway, the back end's answer.
    let redirect = get(gw.frontend, "/ext/hub/", "").await;
    assert_eq!(redirect.status, 302);
    assert!(has_added_headers(&redirect), "{:?}", redirect.headers);
    let cookie = login(&gw, "ext").await;
    let refused = get(
        gw.frontend,
        &format!("/ext/hub/?qlikTicket={}", ticket(gw.api, "ext").await),
        "",
    )
    .await;
    assert_eq!(refused.status, 403, "the session limit");
    assert!(has_added_headers(&refused));
    let personal = get(
        gw.frontend,
        "/ext/qps/user",
        &format!("Cookie: {cookie}\r\n"),
    )
    .await;
    assert!(has_added_headers(&personal));
    // The back end's own X-Frame-Options is replaced, not doubled.
    let proxied = get(gw.frontend, "/ext/hub/", &format!("Cookie: {cookie}\r\n")).await;
    assert_eq!(proxied.status, 200);
    assert!(has_added_headers(&proxied), "{:?}", proxied.headers);
    // Other proxies and the REST API are untouched.
    assert!(get(gw.frontend, "/hub/", "")
        .await
        .header("x-frame-options")
        .is_none());
    assert!(get(gw.api, "/healthz", "")
        .await
        .header("x-frame-options")
        .is_none());
}

#[tokio::test]
async fn the_qlikview_pages_get_their_own_headers() {
    let gw = TestGateway::start(
        "[qlikview]\nadditional_response_headers = { \"X-Frame-Options\" = \"DENY\" }\n",
    )
    .await;
    let page = get(gw.frontend, "/QvAJAXZfc/opendoc.htm?document=a.qvw", "").await;
    assert_eq!(page.headers_named("x-frame-options"), ["DENY"]);
    let auth = get(
        gw.frontend,
        "/QvAJAXZfc/Authenticate.aspx?webticket=x&back=",
        "",
    )
    .await;
    assert_eq!(auth.headers_named("x-frame-options"), ["DENY"]);
    assert!(get(gw.frontend, "/hub/", "")
        .await
        .header("x-frame-options")
        .is_none());
}

#[tokio::test]
async fn a_listed_origin_gets_cors_headers_with_credentials_and_its_preflights_answered() {
    let gw = gateway(&format!("cors_allowed_origins = [\"{MASHUP}\"]\n")).await;
    let cookie = login(&gw, "ext").await;
    let from = |origin: &str| format!("Cookie: {cookie}\r\nOrigin: {origin}\r\n");
    let res = get(gw.frontend, "/ext/qps/user", &from(MASHUP)).await;
    assert_eq!(res.header("access-control-allow-origin"), Some(MASHUP));
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        res.header("access-control-expose-headers"),
        Some("qlik-csrf-token")
    );
    assert!(res.headers_named("vary").contains(&"Origin"));
    // On redirects too: a fetch that is sent to log in still reads where.
    let redirect = get(gw.frontend, "/ext/hub/", &format!("Origin: {MASHUP}\r\n")).await;
    assert_eq!(redirect.status, 302);
    assert_eq!(redirect.header("access-control-allow-origin"), Some(MASHUP));
    // Another origin gets none.
    let other = get(
        gw.frontend,
        "/ext/qps/user",
        &from("https://evil.example.com"),
    )
    .await;
    assert!(other.header("access-control-allow-origin").is_none());

    // A preflight, answered by the gateway without a session and never forwarded.
    let pre = |origin: &str| {
        format!("OPTIONS /ext/qps/user HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: DELETE\r\nAccess-Control-Request-Headers: content-type, x-custom\r\nConnection: close\r\n\r\n")
    };
    let res = raw(gw.frontend, pre(MASHUP).as_bytes()).await;
    assert_eq!(res.status, 204);
    assert_eq!(res.header("access-control-allow-methods"), Some("DELETE"));
    assert_eq!(
        res.header("access-control-allow-headers"),
        Some("content-type, x-custom")
    );
    assert_eq!(res.header("access-control-max-age"), Some("600"));
    assert_eq!(res.header("access-control-allow-origin"), Some(MASHUP));
    let res = raw(gw.frontend, pre("https://evil.example.com").as_bytes()).await;
    assert_eq!(res.status, 403);
    assert!(res.header("access-control-allow-origin").is_none());
    // On a proxied path too: the back end never sees it.
    let res = raw(
        gw.frontend,
        format!("OPTIONS /ext/hub/data HTTP/1.1\r\nHost: x\r\nOrigin: {MASHUP}\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(res.status, 204);
}

#[test]
fn a_wildcard_origin_is_a_configuration_error() {
    let e = ticket_gateway::Settings::from_toml(
        "[[virtual_proxy]]\nprefix = \"ext\"\ncors_allowed_origins = [\"*\"]\n",
    )
    .unwrap_err();
    assert_eq!(e.key, "virtual_proxy[0].cors_allowed_origins[0]");
}

#[tokio::test]
async fn anonymous_access_allow_serves_anonymously_until_a_login_is_asked_for() {
    let gw = gateway("anonymous_access = \"allow\"\n").await;
    let res = get(gw.frontend, "/ext/hub/", "").await;
    assert_eq!(res.status, 200);
    let anonymous = cookie(&res);
    let user = echoed(&res.json(), "x-qlik-user")[0].to_owned();
    assert!(
        user.starts_with("UserDirectory=NONE; UserId=anonymous"),
        "{user}"
    );
    // Each visitor is a user of their own: the limit of one session never applies.
    for _ in 0..3 {
        assert_eq!(get(gw.frontend, "/ext/hub/", "").await.status, 200);
    }
    // forceAuthentication sends even an anonymous session to the module.
    let forced = get(
        gw.frontend,
        "/ext/hub/?ForceAuthentication=yes",
        &format!("Cookie: {anonymous}\r\n"),
    )
    .await;
    assert_eq!(forced.status, 302);
    assert!(forced
        .header("location")
        .unwrap()
        .starts_with("https://auth.example.com/login"));
    // A ticket then replaces the anonymous session.
    let t = ticket(gw.api, "ext").await;
    let res = get(
        gw.frontend,
        &format!("/ext/hub/?qlikTicket={t}"),
        &format!("Cookie: {anonymous}\r\n"),
    )
    .await;
    assert_eq!(
        echoed(&res.json(), "x-qlik-user"),
        ["UserDirectory=ACME; UserId=jdoe"]
    );
    assert_ne!(cookie(&res), anonymous);
}

#[tokio::test]
async fn anonymous_access_always_never_sends_anyone_to_the_module() {
    let gw = gateway("anonymous_access = \"always\"\n").await;
    let res = get(gw.frontend, "/ext/hub/?forceauthentication=yes", "").await;
    assert_eq!(res.status, 200);
}

#[tokio::test]
async fn reload_uri_names_the_page_remembered_behind_the_login() {
    let gw = gateway("host_allow_list = [\"mashup.example.com\"]\n").await;
    let target_of = |res: gateway_tests::RawResponse| {
        let location = res.header("location").unwrap().to_owned();
        location.rsplit_once("targetId=").unwrap().1.to_owned()
    };
    for (query, remembered) in [
        (
            "reloadUri=https%3A%2F%2Fmashup.example.com%2Fapp",
            "https://mashup.example.com/app".to_owned(),
        ),
        (
            "reloadUri=https%3A%2F%2Fevil.example.com%2F",
            format!(
                "http://{}/ext/hub/?reloadUri=https%3A%2F%2Fevil.example.com%2F",
                gw.frontend
            ),
        ),
    ] {
        let res = get(gw.frontend, &format!("/ext/hub/?{query}"), "").await;
        let target_id = target_of(res);
        let t = post_ticket(
            gw.api,
            "ext",
            &format!(r#"{{"UserDirectory":"A","UserId":"b","TargetId":"{target_id}"}}"#),
        )
        .await;
        assert_eq!(t.json()["TargetUri"], remembered.as_str(), "{query}");
    }
}
