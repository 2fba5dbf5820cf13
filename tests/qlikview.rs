//! The QlikView dialect: GetWebTicket replayed from fixtures, trust, group lookup,
//! Authenticate.aspx in every form portals use, AccessPoint logout, and the pages behind
//! the session.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use gateway_tests::{call, get, raw, replay_fixtures, RawResponse, TestGateway};
use http::Request;
use http_body_util::Full;
use ticket_gateway::{Gateway, Side};

const SAFE: &str = "[qlikview]\nsafe_forward_hosts = [\"portal.example.com\"]\n";

fn post(path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: qv\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn request_xml(user: &str, groups: Option<&[&str]>) -> String {
    let groups = groups.map_or(String::new(), |g| {
        let list: String = g.iter().map(|g| format!("<string>{g}</string>")).collect();
        format!("<GroupList>{list}</GroupList><GroupsIsNames>true</GroupsIsNames>")
    });
    format!("<Global method=\"GetWebTicket\"><UserId>{user}</UserId>{groups}</Global>")
}

async fn web_ticket(gw: &TestGateway, user: &str, groups: Option<&[&str]>) -> String {
    let res = raw(
        gw.frontend,
        &post(
            "/QvAJAXZfc/GetWebTicket.aspx",
            "Content-Type: text/xml\r\n",
            &request_xml(user, groups),
        ),
    )
    .await;
    assert_eq!(res.status, 200);
    let text = res.text();
    let ticket = text
        .strip_prefix("<Global><_retval_>")
        .and_then(|t| t.strip_suffix("</_retval_></Global>"))
        .unwrap_or_else(|| panic!("not a ticket: {text}"));
    assert_eq!(ticket.len(), 40, "{ticket}");
    ticket.to_owned()
}

fn session_cookie(res: &RawResponse) -> String {
    gateway_tests::cookie(res)
}

async fn opendoc_json(gw: &TestGateway, cookie: &str) -> RawResponse {
    get(
        gw.frontend,
        "/QvAJAXZfc/opendoc.htm?document=Sales.qvw",
        &format!("Cookie: {cookie}\r\nAccept: application/json\r\n"),
    )
    .await
}

#[tokio::test]
async fn every_getwebticket_fixture_gets_the_reply_beside_it() {
    let gw = TestGateway::start("").await;
    let failures = replay_fixtures(gw.frontend, "qlikview/getwebticket", 25).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn web_tickets_are_forty_uppercase_hex_and_single_use() {
    let gw = TestGateway::start("").await;
    let a = web_ticket(&gw, "jdoe", None).await;
    let b = web_ticket(&gw, "jdoe", None).await;
    assert_ne!(a, b);
    assert!(a
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)));
    let target = format!(
        "/QvAJAXZfc/Authenticate.aspx?type=html&try=/QlikView/&back=/login.htm&webticket={a}"
    );
    assert_eq!(
        get(gw.frontend, &target, "").await.header("location"),
        Some("/QlikView/")
    );
    assert_eq!(
        get(gw.frontend, &target, "").await.header("location"),
        Some("/login.htm"),
        "used"
    );
}

#[tokio::test]
async fn untrusted_callers_get_invalid_call_as_configured() {
    let gw = TestGateway::start("[qlikview]\ntrusted_ips = [\"10.0.0.0/8\", \"::1\"]\n").await;
    let res = raw(
        gw.frontend,
        &post(
            "/QvAJAXZfc/GetWebTicket.aspx",
            "",
            &request_xml("jdoe", None),
        ),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.text(),
        "<Global><_retval_>Invalid call</_retval_></Global>"
    );

    let gw = TestGateway::start(
        "[qlikview]\ntrusted_ips = []\ninvalid_call_status = 403\ninvalid_call_body = \"Invalid call: not trusted\"\n",
    )
    .await;
    let res = raw(
        gw.frontend,
        &post(
            "/QvAJAXZfc/GetWebTicket.aspx",
            "",
            &request_xml("jdoe", None),
        ),
    )
    .await;
    assert_eq!(res.status, 403);
    assert_eq!(res.text(), "Invalid call: not trusted");
}

#[tokio::test]
async fn trusted_accounts_authenticate_with_basic_credentials() {
    let real = sha2_digest::digest("s3cret");
    let gw = TestGateway::start(&format!(
        "[qlikview]\ntrusted_ips = []\ntrusted_accounts = [{{ user = 'ACME\\portal', password_sha256 = \"{real}\" }}]\n"
    ))
    .await;
    let basic = |cred: &str| {
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(cred)
        )
    };
    let ok = raw(
        gw.frontend,
        &post(
            "/QvAJAXZfc/GetWebTicket.aspx",
            &basic("ACME\\portal:s3cret"),
            &request_xml("jdoe", None),
        ),
    )
    .await;
    assert_eq!(
        ok.text().len(),
        "<Global><_retval_></_retval_></Global>".len() + 40,
        "{}",
        ok.text()
    );
    for cred in ["ACME\\portal:wrong", "other:s3cret", "garbage"] {
        let res = raw(
            gw.frontend,
            &post(
                "/QvAJAXZfc/GetWebTicket.aspx",
                &basic(cred),
                &request_xml("jdoe", None),
            ),
        )
        .await;
        assert!(res.text().contains("Invalid call"), "{cred}");
    }
    let res = raw(
        gw.frontend,
        &post(
            "/QvAJAXZfc/GetWebTicket.aspx",
            "",
            &request_xml("jdoe", None),
        ),
    )
    .await;
    assert!(res.text().contains("Invalid call"));
}

/// A tiny SHA-256 helper so the test states the password, not a precomputed hash.
mod sha2_digest {
    pub(super) fn digest(s: &str) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[tokio::test]
async fn authenticate_redeems_into_a_session_and_opendoc_shows_it() {
    let gw = TestGateway::start("").await;
    let t = web_ticket(&gw, "ACME\\jdoe", Some(&[" Sales", "EU"])).await;
    let res = get(
        gw.frontend,
        &format!("/QvAJAXZfc/Authenticate.aspx?type=html&try=/qvajaxzfc/opendoc.htm?document=Sales.qvw&back=/LoginPage.htm&webticket={t}"),
        "",
    )
    .await;
    assert_eq!(res.status, 302);
    assert_eq!(
        res.header("location"),
        Some("/qvajaxzfc/opendoc.htm?document=Sales.qvw")
    );
    let set = res.header("set-cookie").unwrap();
    assert!(set.starts_with("AccessPointSession="), "{set}");
    assert!(set.ends_with("; Path=/; HttpOnly"), "{set}");
    let cookie = session_cookie(&res);

    let page = opendoc_json(&gw, &cookie).await;
    assert_eq!(page.status, 200);
    let json = page.json();
    assert_eq!(json["userId"], "ACME\\jdoe");
    assert_eq!(json["groups"], serde_json::json!(["Sales", "EU"]));
    assert_eq!(json["groupsIsNames"], true);
    assert_eq!(json["document"], "Sales.qvw");
    for page in [
        "/QvAJAXZfc/opendocnotoolbar.htm?document=x",
        "/QvAJAXZfc/singleobject.htm?document=x&object=CH05",
        "/QlikView/",
        "/qlikview/index.htm",
    ] {
        assert_eq!(
            get(gw.frontend, page, &format!("Cookie: {cookie}\r\n"))
                .await
                .status,
            200,
            "{page}"
        );
    }
}

#[tokio::test]
async fn authenticate_accepts_every_parameter_form_portals_send() {
    let gw = TestGateway::start(SAFE).await;
    let cases: Vec<(String, &str)> = vec![
        ("webticket={t}&back=&try=%2FQlikView%2F&type=html".into(), "/QlikView/"),
        (
            "type=html&webticket={t}&try=%2FQvAJAXZfc%2FAccessPoint.aspx%3Fopen%3D%26id%3DQVS%40host%257Cdoc.qvw&select=LB39%2CBanana%2CLime&client=Ajax&back=".into(),
            "/QvAJAXZfc/AccessPoint.aspx?open=&id=QVS@host%7Cdoc.qvw&select=LB39%2CBanana%2CLime&client=Ajax",
        ),
        ("type=html&try=/qvajaxzfc/opendoc.htm?document=My%20Doc.qvw&back=&webticket={t}&originsystem=portal".into(), "/qvajaxzfc/opendoc.htm?document=My%20Doc.qvw"),
        ("try=https://portal.example.com/qlikview/&webticket={t}".into(), "https://portal.example.com/qlikview/"),
        (format!("try=http://{}/QlikView/&webticket={{t}}", gw.frontend), "own host"),
        ("TYPE=html&WebTicket={t}&Try=/QvAJAXZfc/opendocnotoolbar.htm?document=accesspoint/Sales.qvw".into(), "/QvAJAXZfc/opendocnotoolbar.htm?document=accesspoint/Sales.qvw"),
        ("webticket={t}".into(), "/QlikView/"),
    ];
    for (query, expected) in cases {
        let t = web_ticket(&gw, "jdoe", None).await;
        let target = format!("/qvajaxzfc/authenticate.aspx?{}", query.replace("{t}", &t));
        let res = get(gw.frontend, &target, "").await;
        assert_eq!(res.status, 302, "{target}");
        let location = res.header("location").unwrap();
        if expected == "own host" {
            assert!(
                location.starts_with(&format!("http://{}/", gw.frontend)),
                "{location}"
            );
        } else {
            assert_eq!(location, expected, "{target}");
        }
        assert!(res.header("set-cookie").is_some(), "{target}");
    }
}

#[tokio::test]
async fn failures_go_to_back_or_a_401_page() {
    let gw = TestGateway::start(SAFE).await;
    let res = get(gw.frontend, "/QvAJAXZfc/Authenticate.aspx?type=html&try=/QlikView/&back=/LoginPage.htm&webticket=0000000000000000000000000000000000000000", "").await;
    assert_eq!(res.status, 302);
    assert_eq!(res.header("location"), Some("/LoginPage.htm"));
    assert!(res.header("set-cookie").is_none());
    let res = get(
        gw.frontend,
        "/QvAJAXZfc/Authenticate.aspx?type=html&try=/QlikView/&back=&webticket=nope",
        "",
    )
    .await;
    assert_eq!(res.status, 401);
    assert!(res.header("content-type").unwrap().starts_with("text/html"));
    let res = get(gw.frontend, "/QvAJAXZfc/Authenticate.aspx?type=html&try=/QlikView/&back=https%3A%2F%2Fportal.example.com%2Flogin", "").await;
    assert_eq!(
        res.header("location"),
        Some("https://portal.example.com/login")
    );
}

#[tokio::test]
async fn keep_reuses_a_live_session_without_a_ticket() {
    let gw = TestGateway::start("").await;
    let t = web_ticket(&gw, "jdoe", None).await;
    let res = get(
        gw.frontend,
        &format!("/QvAJAXZfc/Authenticate.aspx?type=html&try=/QlikView/&webticket={t}"),
        "",
    )
    .await;
    let cookie = session_cookie(&res);
    let res = get(gw.frontend, "/QvAJAXZfc/Authenticate.aspx?keep=&try=/QvAJAXZfc/opendoc.htm?document=a.qvw&back=/login.htm", &format!("Cookie: {cookie}\r\n")).await;
    assert_eq!(
        res.header("location"),
        Some("/QvAJAXZfc/opendoc.htm?document=a.qvw")
    );
    assert!(res.header("set-cookie").is_none());
    let res = get(
        gw.frontend,
        "/QvAJAXZfc/Authenticate.aspx?keep=&try=/QlikView/&back=/login.htm",
        "",
    )
    .await;
    assert_eq!(res.header("location"), Some("/login.htm"));
}

#[tokio::test]
async fn open_redirects_are_refused() {
    let gw = TestGateway::start(SAFE).await;
    for query in [
        "try=https://evil.example.com/&back=",
        "try=//evil.example.com/&back=",
        "try=/QlikView/&back=https%3A%2F%2Fevil.example.com%2F",
        "try=javascript:alert(1)",
        "try=%2F%5Cevil.example.com",
        // A backslash before `@`: the host a browser resolves is evil.com.
        "try=/QlikView/&back=http%3a%2f%2flocalhost%5c%40evil.com%2f",
        "try=http%3a%2f%2flocalhost%5c%40evil.com%2f",
        "try=http%3a%2f%2fportal.example.com%5c%40evil.com%2f",
        "try=http://portal.example.com\\@evil.com/",
        "try=http://portal.example.com%5C@evil.com/",
        "try=http://user:pw@portal.example.com/",
    ] {
        let t = web_ticket(&gw, "jdoe", None).await;
        let res = get(
            gw.frontend,
            &format!("/QvAJAXZfc/Authenticate.aspx?{query}&webticket={t}"),
            "",
        )
        .await;
        assert_eq!(res.status, 400, "{query}");
        assert!(res.header("location").is_none());
        assert!(res.header("set-cookie").is_none());
    }
}

#[tokio::test]
async fn accesspoint_logout_ends_the_session_on_both_paths() {
    let gw = TestGateway::start("").await;
    let body = r#"<update mark="" stamp="" cookie="true" scope="Document" ident="AccessPoint" kind="AccessPoint"><set name="AccessPoint.Logout" action="" clientsizeWH="1280:939" /></update>"#;
    for path in [
        "/QvAJAXZfc/AccessPoint.aspx?mark=&platform=browser.chrome&dpi=96",
        "/Accesspoint.aspx",
        "/qvajaxzfc/accesspoint.aspx?mark=&platform=browser.gecko.52&dpi=96",
    ] {
        let t = web_ticket(&gw, "jdoe", None).await;
        let res = get(
            gw.frontend,
            &format!("/QvAJAXZfc/Authenticate.aspx?try=/QlikView/&webticket={t}"),
            "",
        )
        .await;
        let cookie = session_cookie(&res);
        assert_eq!(opendoc_json(&gw, &cookie).await.status, 200);

        let res = raw(
            gw.frontend,
            &post(
                path,
                &format!("Content-Type: text/plain\r\nCookie: {cookie}\r\n"),
                body,
            ),
        )
        .await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(
            res.text(),
            r#"<result><object><value name="User" text="" mode="anonymous"/></object></result>"#
        );
        let expired = res.header("set-cookie").unwrap();
        assert!(
            expired.starts_with("AccessPointSession=;")
                && expired.contains("Expires=Thu, 01 Jan 1970"),
            "{expired}"
        );
        assert_eq!(
            opendoc_json(&gw, &cookie).await.status,
            302,
            "the session is gone"
        );
    }
    // Without a session, and with no Content-Type at all: still a 200.
    let res = raw(gw.frontend, &post("/QvAJAXZfc/AccessPoint.aspx", "", body)).await;
    assert_eq!(res.status, 200);
}

#[tokio::test]
async fn other_accesspoint_commands_get_a_harmless_reply() {
    let gw = TestGateway::start("").await;
    let t = web_ticket(&gw, "jdoe", None).await;
    let cookie = session_cookie(
        &get(
            gw.frontend,
            &format!("/QvAJAXZfc/Authenticate.aspx?try=/QlikView/&webticket={t}"),
            "",
        )
        .await,
    );
    let update = r#"<update mark="" stamp="" cookie="true" scope="Document" ident="AccessPoint" kind="AccessPoint"><set name="AccessPoint.Pagesize" value="25" /></update>"#;
    let res = raw(
        gw.frontend,
        &post(
            "/QvAJAXZfc/AccessPoint.aspx?mark=",
            &format!("Cookie: {cookie}\r\n"),
            update,
        ),
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(
        res.text().contains(r#"text="jdoe" mode="authenticated""#),
        "{}",
        res.text()
    );
    assert_eq!(
        opendoc_json(&gw, &cookie).await.status,
        200,
        "still logged in"
    );
    let res = raw(
        gw.frontend,
        &post("/QvAJAXZfc/AccessPoint.aspx", "", "<update><set"),
    )
    .await;
    assert_eq!(res.status, 400);
    assert!(res.text().starts_with("<result>"));
}

#[tokio::test]
async fn pages_without_a_session_go_to_the_login_url() {
    let gw = TestGateway::start("").await;
    let res = get(gw.frontend, "/QvAJAXZfc/opendoc.htm?document=Sales.qvw", "").await;
    assert_eq!(res.status, 302);
    assert_eq!(
        res.header("location"),
        Some("/demo/qlikview/?try=%2fQvAJAXZfc%2fopendoc.htm%3fdocument%3dSales.qvw")
    );
    let gw =
        TestGateway::start("[qlikview]\nlogin_url = \"https://portal.example.com/login\"\n").await;
    for page in [
        "/QvAJAXZfc/opendoc.htm",
        "/QvAJAXZfc/singleobject.htm",
        "/QlikView/",
        "/QvAJAXZfc/AccessPoint.aspx?open=&id=x",
    ] {
        let res = get(gw.frontend, page, "").await;
        assert_eq!(
            res.header("location"),
            Some("https://portal.example.com/login"),
            "{page}"
        );
    }
}

#[tokio::test]
async fn groups_are_looked_up_when_the_portal_sends_none_and_reloaded() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("groups-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("groups.toml");
    std::fs::write(
        &file,
        "[users]\n'ACME\\jdoe' = [\"Sales\", \"EU\"]\nbob = [\"Finance\"]\n",
    )
    .unwrap();
    let gw = TestGateway::start(&format!(
        "[qlikview]\ngroup_directory = {:?}\n",
        file.display().to_string()
    ))
    .await;

    let groups_of = |user: &'static str, sent: Option<&'static [&'static str]>| {
        let gw = &gw;
        async move {
            let t = web_ticket(gw, user, sent).await;
            let res = get(
                gw.frontend,
                &format!("/QvAJAXZfc/Authenticate.aspx?try=/QlikView/&webticket={t}"),
                "",
            )
            .await;
            let page = opendoc_json(gw, &session_cookie(&res)).await.json();
            page["groups"].clone()
        }
    };
    assert_eq!(
        groups_of("acme\\JDOE", None).await,
        serde_json::json!(["Sales", "EU"])
    );
    assert_eq!(groups_of("carol", None).await, serde_json::json!([]));
    assert_eq!(
        groups_of("bob", Some(&["Mine"])).await,
        serde_json::json!(["Mine"]),
        "the caller's groups win"
    );

    std::fs::write(&file, "[users]\nbob = [\"Finance\", \"Audit\"]\n").unwrap();
    gw.gateway.reload_groups().unwrap();
    assert_eq!(
        groups_of("bob", None).await,
        serde_json::json!(["Finance", "Audit"])
    );
    std::fs::write(&file, "[users]\nbob = [\"Finance\"\n").unwrap();
    let err = gw.gateway.reload_groups().unwrap_err();
    assert!(err.contains("line"), "{err}");
    assert_eq!(
        groups_of("bob", None).await,
        serde_json::json!(["Finance", "Audit"]),
        "last good kept"
    );
}

#[tokio::test]
async fn the_demo_portal_walks_a_browser_through_the_whole_flow() {
    let gw = TestGateway::start("").await;
    let res = get(gw.frontend, "/QvAJAXZfc/opendoc.htm?document=Sales.qvw", "").await;
    let login = res.header("location").unwrap().to_owned();
    let form = get(gw.frontend, &login, "").await;
    assert_eq!(form.status, 200);
    assert!(form
        .text()
        .contains("/QvAJAXZfc/opendoc.htm?document=Sales.qvw"));
    let body = "try=%2FQvAJAXZfc%2Fopendoc.htm%3Fdocument%3DSales.qvw&userId=ACME%5Cjdoe&groups=Sales%2C+EU";
    let res = raw(
        gw.frontend,
        &post(
            "/demo/qlikview/",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            body,
        ),
    )
    .await;
    assert_eq!(res.status, 302);
    let auth = res.header("location").unwrap().to_owned();
    assert!(
        auth.starts_with("/QvAJAXZfc/Authenticate.aspx?type=html&try="),
        "{auth}"
    );
    let res = get(gw.frontend, &auth, "").await;
    assert_eq!(
        res.header("location"),
        Some("/QvAJAXZfc/opendoc.htm?document=Sales.qvw")
    );
    let page = opendoc_json(&gw, &session_cookie(&res)).await.json();
    assert_eq!(page["userId"], "ACME\\jdoe");
    assert_eq!(page["groups"], serde_json::json!(["Sales", "EU"]));
}

fn in_process(extra: &str) -> Gateway {
    gateway_tests::in_process(extra)
}

async fn in_process_ticket(gw: &Gateway) -> String {
    let req = Request::post("/QvAJAXZfc/GetWebTicket.aspx")
        .body(Full::new(Bytes::from(request_xml("jdoe", None))))
        .unwrap();
    let res = call(gw, Side::Frontend, req).await;
    let text = String::from_utf8(res.body().to_vec()).unwrap();
    text["<Global><_retval_>".len().."<Global><_retval_>".len() + 40].to_owned()
}

async fn in_process_get(gw: &Gateway, target: &str, cookie: Option<&str>) -> http::Response<Bytes> {
    gateway_tests::send(gw, Side::Frontend, "GET", target, cookie, "").await
}

#[tokio::test(start_paused = true)]
async fn web_tickets_expire_with_the_ticket_ttl() {
    let gw = in_process("[tickets]\nttl_seconds = 60\n");
    let early = in_process_ticket(&gw).await;
    let late = in_process_ticket(&gw).await;
    tokio::time::advance(Duration::from_secs(59)).await;
    let res = in_process_get(
        &gw,
        &format!("/QvAJAXZfc/Authenticate.aspx?try=/QlikView/&back=/login&webticket={early}"),
        None,
    )
    .await;
    assert_eq!(res.headers()["location"], "/QlikView/");
    tokio::time::advance(Duration::from_secs(1)).await;
    let res = in_process_get(
        &gw,
        &format!("/QvAJAXZfc/Authenticate.aspx?try=/QlikView/&back=/login&webticket={late}"),
        None,
    )
    .await;
    assert_eq!(res.headers()["location"], "/login");
}

#[tokio::test(start_paused = true)]
async fn qlikview_sessions_end_after_the_inactivity_timeout() {
    let gw = in_process("[qlikview]\nsession_inactivity_timeout_minutes = 20\n");
    let t = in_process_ticket(&gw).await;
    let res = in_process_get(
        &gw,
        &format!("/QvAJAXZfc/Authenticate.aspx?try=/QlikView/&webticket={t}"),
        None,
    )
    .await;
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    tokio::time::advance(Duration::from_secs(19 * 60)).await;
    assert_eq!(
        in_process_get(&gw, "/QlikView/", Some(&cookie))
            .await
            .status(),
        200
    );
    tokio::time::advance(Duration::from_secs(20 * 60)).await;
    assert_eq!(
        in_process_get(&gw, "/QlikView/", Some(&cookie))
            .await
            .status(),
        302
    );
}

#[tokio::test]
async fn the_identity_page_shows_the_document_and_query_and_signs_out() {
    let gw = TestGateway::start("").await;
    let t = web_ticket(&gw, "jdoe", None).await;
    let res = get(
        gw.frontend,
        &format!("/QvAJAXZfc/Authenticate.aspx?try=/QlikView/&webticket={t}"),
        "",
    )
    .await;
    let cookie = session_cookie(&res);
    let page = get(
        gw.frontend,
        "/QvAJAXZfc/opendoc.htm?document=Finance.qvw&bookmark=BM01",
        &format!("Cookie: {cookie}\r\n"),
    )
    .await;
    let html = page.text();
    assert!(
        html.contains("<th>Document</th><td>Finance.qvw</td>"),
        "{html}"
    );
    assert!(
        html.contains("document=Finance.qvw&amp;bookmark=BM01"),
        "{html}"
    );
    assert!(html.contains(">Sign out</button>"), "{html}");
    assert!(html.contains("AccessPoint.Logout"), "{html}");
}
