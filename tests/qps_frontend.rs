//! The browser side of Qlik Sense: the redirect to the authentication module, ticket
//! redemption in every spelling, the session cookie, and the demo module end to end.

use gateway_tests::{cookie, get, is_guid, post_ticket, raw, ticket, TestGateway};

const CONFIG: &str = "[[virtual_proxy]]\nprefix = \"ext\"\nsession_cookie_name = \"X-Qlik-Session-ext\"\nsession_limit_policy = \"evict-oldest\"\n\
                      auth_module_redirect_uri = \"https://auth.example.com/login\"\n\
                      [[virtual_proxy]]\nprefix = \"portal\"\nauth_module_redirect_uri = \"https://auth.example.com/login?tenant=a\"\n";

/// Splits a login redirect into `(base, proxyRestUri, targetId)`.
fn login_redirect(location: &str) -> (String, String, String) {
    let (base, query) = location.rsplit_once("proxyRestUri=").expect("proxyRestUri");
    let (rest, target) = query.split_once("&targetId=").expect("targetId");
    (base.to_owned(), rest.to_owned(), target.to_owned())
}

fn encoded(s: &str) -> String {
    s.replace(':', "%3a").replace('/', "%2f")
}

#[tokio::test]
async fn an_unauthenticated_request_goes_to_the_auth_module() {
    let gw = TestGateway::start(CONFIG).await;
    let res = get(gw.frontend, "/ext/hub/", "").await;
    assert_eq!(res.status, 302);
    let location = res.header("location").unwrap();
    let (base, rest, target) = login_redirect(location);
    assert_eq!(base, "https://auth.example.com/login?");
    assert_eq!(rest, encoded(&format!("http://{}/qps/ext/", gw.api)));
    assert!(
        rest.contains("%3a%2f%2f"),
        "lowercase percent-encoding: {rest}"
    );
    assert!(is_guid(&target), "{target}");
    assert!(location.find("proxyRestUri").unwrap() < location.find("targetId").unwrap());

    // Default virtual proxy: `/qps/`, no double slash. Non-GET first requests too.
    let res = raw(gw.frontend, b"POST /qrs/about?xrfkey=x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    assert_eq!(res.status, 302);
    let (base, rest, _) = login_redirect(res.header("location").unwrap());
    assert!(base.ends_with("/demo/login?"), "{base}");
    assert_eq!(rest, encoded(&format!("http://{}/qps/", gw.api)));

    // An auth-module URI that has a query already gets `&`.
    let res = get(gw.frontend, "/portal/hub/", "").await;
    let (base, rest, _) = login_redirect(res.header("location").unwrap());
    assert_eq!(base, "https://auth.example.com/login?tenant=a&");
    assert!(rest.ends_with("%2fqps%2fportal%2f"));
    // Fresh target id each time.
    let a = get(gw.frontend, "/ext/hub/", "").await;
    let b = get(gw.frontend, "/ext/hub/", "").await;
    assert_ne!(a.header("location"), b.header("location"));
}

#[tokio::test]
async fn the_target_id_brings_back_the_url_first_asked_for() {
    let gw = TestGateway::start(CONFIG).await;
    let res = get(gw.frontend, "/ext/hub/my/work?sheet=1&qlikTicket=stale", "").await;
    let (_, _, target) = login_redirect(res.header("location").unwrap());
    let body = format!(r#"{{"UserDirectory":"ACME","UserId":"jdoe","TargetId":"{target}"}}"#);
    let res = post_ticket(gw.api, "ext", &body).await;
    assert_eq!(res.status, 201);
    let json = res.json();
    assert_eq!(
        json["TargetUri"],
        format!("http://{}/ext/hub/my/work?sheet=1", gw.frontend).as_str(),
        "the ticket parameter is not part of the target"
    );
    // The target id can be used again (the user pressed "back").
    let res = post_ticket(gw.api, "ext", &body).await;
    assert!(res.json()["TargetUri"].is_string());
    // An unknown target id still gets a ticket, with a null TargetUri.
    let res = post_ticket(
        gw.api,
        "ext",
        r#"{"UserDirectory":"A","UserId":"b","TargetId":"11111111-2222-4333-8444-555555555555"}"#,
    )
    .await;
    assert_eq!(res.status, 201);
    assert!(res.json()["TargetUri"].is_null());
}

#[tokio::test]
async fn a_ticket_redeems_into_a_session_cookie_and_the_resource_itself() {
    let gw = TestGateway::start(CONFIG).await;
    let t = ticket(gw.api, "ext").await;
    let res = get(gw.frontend, &format!("/ext/hub/?qlikTicket={t}"), "").await;
    assert_eq!(res.status, 200, "the resource itself, not a redirect");
    let cookie = res.header("set-cookie").unwrap();
    let (name_value, attrs) = cookie.split_once("; ").unwrap();
    let (name, value) = name_value.split_once('=').unwrap();
    assert_eq!(name, "X-Qlik-Session-ext-HTTP");
    assert!(is_guid(value), "{value}");
    assert_eq!(attrs, "Path=/; HttpOnly");
    let page = res.text();
    assert!(
        page.contains("ACME") && page.contains("jdoe") && page.contains("Sales"),
        "{page}"
    );

    // The cookie is a session.
    let res = get(
        gw.frontend,
        "/ext/hub/stream",
        &format!("Cookie: {name}={value}\r\nAccept: application/json\r\n"),
    )
    .await;
    assert_eq!(res.status, 200);
    let json = res.json();
    assert_eq!(json["userDirectory"], "ACME");
    assert_eq!(json["userId"], "jdoe");
    assert_eq!(json["attributes"][0]["Group"], "Sales");
    assert_eq!(json["path"], "/ext/hub/stream");
    assert!(res.header("set-cookie").is_none());

    // So is the same value under the configured name (portals set that one themselves).
    let res = get(
        gw.frontend,
        "/ext/hub/",
        &format!("Cookie: other=1; X-Qlik-Session-ext={value}\r\n"),
    )
    .await;
    assert_eq!(res.status, 200);
    // But not on another virtual proxy.
    let res = get(
        gw.frontend,
        "/hub/",
        &format!("Cookie: X-Qlik-Session-HTTP={value}\r\n"),
    )
    .await;
    assert_eq!(res.status, 302);
    // And an unknown session id is not.
    let res = get(
        gw.frontend,
        "/ext/hub/",
        "Cookie: X-Qlik-Session-ext-HTTP=6a1f3c0e-0000-4000-8000-000000000000\r\n",
    )
    .await;
    assert_eq!(res.status, 302);
}

#[tokio::test]
async fn the_ticket_parameter_is_read_in_every_spelling_on_any_path_and_method() {
    let gw = TestGateway::start(CONFIG).await;
    for (target, method) in [
        ("/ext/hub/?qlikTicket={t}", "GET"),
        ("/ext/hub/?QlikTicket={t}", "GET"),
        ("/ext/hub/?qlikticket={t}", "GET"),
        (
            "/ext/resources/img/dark_noise_16x16.png?QLIKTICKET={t}",
            "GET",
        ),
        (
            "/ext/qrs/about?xrfkey=abcdefghijklmnop&qlikTicket={t}",
            "GET",
        ),
        ("/ext/qrs/app?qlikTicket={t}", "POST"),
        ("/ext/hub/", "GET"), // header form below
    ] {
        let t = ticket(gw.api, "ext").await;
        let extra = if target.contains("{t}") {
            String::new()
        } else {
            format!("X-Qlik-Ticket: {t}\r\n")
        };
        let req = format!(
            "{method} {} HTTP/1.1\r\nHost: h\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n",
            target.replace("{t}", &t)
        );
        let res = raw(gw.frontend, req.as_bytes()).await;
        assert_eq!(res.status, 200, "{method} {target}");
        assert!(res
            .header("set-cookie")
            .unwrap()
            .starts_with("X-Qlik-Session-ext-HTTP="));
    }
}

#[tokio::test]
async fn a_used_unknown_or_foreign_ticket_goes_back_to_login() {
    let gw = TestGateway::start(CONFIG).await;
    let t = ticket(gw.api, "ext").await;
    assert_eq!(
        get(gw.frontend, &format!("/ext/hub/?qlikTicket={t}"), "")
            .await
            .status,
        200
    );
    let again = get(gw.frontend, &format!("/ext/hub/?qlikTicket={t}"), "").await;
    assert_eq!(again.status, 302, "single use");
    assert!(again.header("set-cookie").is_none());
    let (_, _, target) = login_redirect(again.header("location").unwrap());
    assert!(is_guid(&target));

    assert_eq!(
        get(gw.frontend, "/ext/hub/?qlikTicket=NoSuchTicketXxYz", "")
            .await
            .status,
        302
    );
    assert_eq!(
        get(gw.frontend, "/ext/hub/?qlikTicket=", "").await.status,
        302
    );

    // A ticket is bound to the virtual proxy that issued it, and consumed by a wrong try.
    let t = ticket(gw.api, "ext").await;
    assert_eq!(
        get(gw.frontend, &format!("/hub/?qlikTicket={t}"), "")
            .await
            .status,
        302
    );
    assert_eq!(
        get(gw.frontend, &format!("/ext/hub/?qlikTicket={t}"), "")
            .await
            .status,
        302
    );
}

#[tokio::test]
async fn a_ticket_with_an_existing_cookie_replaces_the_session() {
    let gw = TestGateway::start(CONFIG).await;
    let t1 = ticket(gw.api, "ext").await;
    let first = get(gw.frontend, &format!("/ext/hub/?qlikTicket={t1}"), "").await;
    let cookie1 = cookie(&first);
    let t2 = ticket(gw.api, "ext").await;
    let second = get(
        gw.frontend,
        &format!("/ext/hub/?qlikTicket={t2}"),
        &format!("Cookie: {cookie1}\r\n"),
    )
    .await;
    assert_eq!(second.status, 200);
    let cookie2 = second
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert_ne!(cookie1, cookie2);
}

#[tokio::test]
async fn the_demo_module_walks_a_browser_through_the_whole_flow() {
    let gw = TestGateway::start("").await;
    // 1. The hub redirects to the demo login page.
    let res = get(gw.frontend, "/hub/", "").await;
    assert_eq!(res.status, 302);
    let location = res.header("location").unwrap().to_owned();
    let prefix = format!("http://{}/demo/login?", gw.frontend);
    assert!(location.starts_with(&prefix), "{location}");
    let (_, rest, target) = login_redirect(&location);

    // 2. The form carries proxyRestUri and targetId.
    let form = get(
        gw.frontend,
        &location[prefix.len() - "/demo/login?".len()..],
        "",
    )
    .await;
    assert_eq!(form.status, 200);
    let page = form.text();
    assert!(page.contains(&target) && page.contains("<form"), "{page}");

    // 3. Submitting it sends the browser back to the hub with a ticket.
    let body = format!("proxyRestUri={rest}&targetId={target}&userDirectory=ACME&userId=jdoe&attributes=Group%3DSales%0D%0Aemail%3D");
    let req = format!(
        "POST /demo/login HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let res = raw(gw.frontend, req.as_bytes()).await;
    assert_eq!(res.status, 302, "{}", res.text());
    let back = res.header("location").unwrap();
    let hub = format!("http://{}/hub/?qlikTicket=", gw.frontend);
    assert!(back.starts_with(&hub), "{back}");

    // 4. Following it yields the session.
    let res = get(
        gw.frontend,
        &back[format!("http://{}", gw.frontend).len()..],
        "Accept: application/json\r\n",
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(res
        .header("set-cookie")
        .unwrap()
        .starts_with("X-Qlik-Session-HTTP="));
    let json = res.json();
    assert_eq!(json["userId"], "jdoe");
    assert_eq!(json["attributes"][1]["email"], "");

    // A bad user id is shown back on the form, not turned into a ticket.
    let body = format!("proxyRestUri={rest}&targetId={target}&userDirectory=ACME&userId=a%5Cb");
    let req = format!(
        "POST /demo/login HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let res = raw(gw.frontend, req.as_bytes()).await;
    assert_eq!(res.status, 400);
    assert!(res.text().contains("backslash"));
}

#[tokio::test]
async fn the_demo_module_can_be_turned_off() {
    let gw = TestGateway::start(
        "[demo]\nenabled = false\n[[virtual_proxy]]\nprefix = \"\"\nauth_module_redirect_uri = \"https://auth.example.com/\"\n",
    )
    .await;
    let res = get(gw.frontend, "/demo/login", "").await;
    assert_eq!(
        res.status, 302,
        "with the demo off, /demo/login is just a path of the default proxy"
    );
    assert!(res
        .header("location")
        .unwrap()
        .starts_with("https://auth.example.com/?proxyRestUri="));
}

#[tokio::test]
async fn the_identity_page_has_a_sign_out_button_for_its_virtual_proxy() {
    let gw = TestGateway::start(CONFIG).await;
    let t = ticket(gw.api, "ext").await;
    let page = get(gw.frontend, &format!("/ext/hub/?qlikTicket={t}"), "").await;
    let html = page.text();
    assert!(html.contains(">Sign out</button>"), "{html}");
    assert!(
        html.contains("fetch(\"/ext/qps/user\", {method: 'DELETE'"),
        "{html}"
    );
}
