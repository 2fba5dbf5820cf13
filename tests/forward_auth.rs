//! Forward-auth with the real servers: Debian's nginx (`auth_request`) and Caddy 2.6 run
//! `examples/nginx/ticket-gateway.conf` and `examples/caddy/Caddyfile` (only the addresses
//! replaced) in front of the gateway and a recording back end, and the whole flow is
//! walked through them; plus the endpoint's own answers, asked directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use gateway_tests::upstream::{self, echoed, ENGINE_HELLO};
use gateway_tests::{cookie, get, post_ticket, raw, RawResponse, TestGateway};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A server of the site's own (nginx or Caddy) in front of the gateway; stopped on drop.
struct Front {
    addr: SocketAddr,
    dir: PathBuf,
    _child: Child,
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server `name` at `path`, or `None` (skipped) when missing outside CI.
fn tool(name: &str, path: &str) -> Option<PathBuf> {
    if Path::new(path).exists() {
        return Some(PathBuf::from(path));
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{path} missing, and CI=true requires the {name} test (run scripts/setup)");
    }
    eprintln!("skipped: {path} missing (run scripts/setup)");
    None
}

/// A port nothing listens on now. nginx and Caddy 2.6 cannot be handed a bound socket, so
/// the front's port is picked this way; the window in which another process could take it
/// is the time the server takes to start.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn scratch(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn example(path: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(path),
    )
    .expect("the example")
}

/// The example with its addresses replaced by the test's.
fn addressed(text: &str, gateway: SocketAddr, backend: SocketAddr) -> String {
    text.replace("127.0.0.1:8080", &gateway.to_string())
        .replace("127.0.0.1:9000", &backend.to_string())
}

/// Runs `cmd` and waits until its standard error shows `ready` (the server's own word
/// that it serves), at most 20 s; its error output is kept reading afterwards.
async fn start(mut cmd: Command, ready: &str, port: u16, dir: PathBuf) -> Front {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the server");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(ready) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "the server did not start:\n{seen}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Front {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        dir,
        _child: child,
    }
}

async fn nginx(port: u16, gateway: SocketAddr, backend: SocketAddr) -> Option<Front> {
    let bin = tool("nginx", "/usr/sbin/nginx")?;
    let dir = scratch("nginx");
    for sub in ["conf", "logs", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let site = addressed(&example("nginx/ticket-gateway.conf"), gateway, backend)
        .replace("listen 8000;", &format!("listen 127.0.0.1:{port};"));
    std::fs::write(dir.join("conf/ticket-gateway.conf"), site).unwrap();
    // What a distribution's nginx.conf has around the site, in the scratch directory; one
    // process (no master), so that killing it leaves nothing behind.
    std::fs::write(
        dir.join("conf/nginx.conf"),
        "master_process off;\npid logs/nginx.pid;\nerror_log stderr notice;\n\
         events { worker_connections 256; }\n\
         http {\n  access_log logs/access.log;\n  client_body_temp_path tmp/body;\n  proxy_temp_path tmp/proxy;\n\
           fastcgi_temp_path tmp/fastcgi;\n  uwsgi_temp_path tmp/uwsgi;\n  scgi_temp_path tmp/scgi;\n\
           include ticket-gateway.conf;\n}\n",
    )
    .unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(&dir)
        .args(["-c", "conf/nginx.conf", "-g", "daemon off;"]);
    // Its last start-up line: the listening sockets are open by then.
    Some(start(cmd, "getrlimit(RLIMIT_NOFILE)", port, dir).await)
}

async fn caddy(port: u16, gateway: SocketAddr, backend: SocketAddr) -> Option<Front> {
    let bin = tool("caddy", "/usr/bin/caddy")?;
    let dir = scratch("caddy");
    // What a site adds around the example: no admin API (parallel instances), plain http,
    // its files in the scratch directory.
    let global = format!(
        "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {{\n\t\troot {}\n\t}}\n}}\n\n",
        dir.join("data").display()
    );
    let site = addressed(&example("caddy/Caddyfile"), gateway, backend)
        .replace(":8000 {", &format!("http://:{port} {{\n\tbind 127.0.0.1"));
    std::fs::write(dir.join("Caddyfile"), format!("{global}{site}")).unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.join("Caddyfile"))
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", dir.join("xdg"))
        .env("XDG_CONFIG_HOME", dir.join("xdg"));
    Some(start(cmd, "serving initial configuration", port, dir).await)
}

/// The gateway behind a front on `port`: its public URL is the front's.
async fn gateway_behind(port: u16) -> TestGateway {
    TestGateway::start(&format!(
        "[frontend]\npublic_url = \"http://127.0.0.1:{port}\"\n"
    ))
    .await
}

fn post(addr: SocketAddr, target: &str, headers: &str, body: &str) -> String {
    format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn path_of(location: &str, front: SocketAddr) -> String {
    location
        .strip_prefix(&format!("http://{front}"))
        .unwrap_or_else(|| panic!("{location} is not on the front"))
        .to_owned()
}

fn param(url: &str, name: &str) -> String {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A header the back end got, or that it got none (nginx drops an empty one; Caddy sends it
/// empty): `""`.
fn one(echo: &serde_json::Value, name: &str) -> String {
    let values = echoed(echo, name);
    assert!(values.len() <= 1, "{name}: {values:?}");
    values.first().copied().unwrap_or("").to_owned()
}

/// A browser's whole visit through `front`: the demo module, a ticket, the back end with
/// the identity, WebSockets, logout; then QlikView the same way.
async fn walk(front: SocketAddr) {
    let spoof = "X-Qlik-User: UserDirectory=EVIL; UserId=root\r\nx-qlik-security: Group=Admins;\r\nQVUSER: root\r\n";

    // Not signed in: to the demo module, on the front's address.
    let res = get(front, "/hub/?sheet=1", spoof).await;
    assert_eq!(res.status, 302, "{}", res.text());
    let login = res.header("location").unwrap().to_owned();
    assert!(
        login.starts_with(&format!("http://{front}/demo/login?proxyRestUri=")),
        "{login}"
    );
    let form = get(front, &path_of(&login, front), "").await;
    assert_eq!(form.status, 200);
    assert!(form.text().contains("<form"));

    // The module issues a ticket and sends the browser back with it.
    let fields = form_urlencoded::Serializer::new(String::new())
        .append_pair("proxyRestUri", &param(&login, "proxyRestUri"))
        .append_pair("targetId", &param(&login, "targetId"))
        .append_pair("userDirectory", "ACME")
        .append_pair("userId", "jdoe")
        .append_pair("attributes", "Group=Sales")
        .finish();
    let res = raw(
        front,
        post(
            front,
            "/demo/login",
            "Content-Type: application/x-www-form-urlencoded\r\n",
            &fields,
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(res.status, 302, "{}", res.text());
    let back = path_of(res.header("location").unwrap(), front);
    assert!(back.starts_with("/hub/?sheet=1&qlikTicket="), "{back}");

    // The ticket is redeemed on the way: the back end answers, with the session cookie.
    let res = get(front, &back, spoof).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.headers_named("set-cookie").len(), 1);
    let session = cookie(&res);
    assert!(session.starts_with("X-Qlik-Session-HTTP="), "{session}");
    let echo = res.json();
    assert_eq!(one(&echo, "x-qlik-user"), "UserDirectory=ACME; UserId=jdoe");
    assert_eq!(
        one(&echo, "x-qlik-security"),
        "SecureRequest=true; Context=AppAccess; Group=Sales;"
    );
    assert_eq!(
        one(&echo, "x-qlik-proxysession"),
        session.split_once('=').unwrap().1
    );
    assert_eq!(one(&echo, "qvuser"), "", "the spoofed QVUSER is gone");
    assert_eq!(one(&echo, "x-qlik-virtual-proxy-prefix"), "");

    // The cookie alone serves, spoofed headers or not.
    let with_cookie = format!("Cookie: {session}\r\n{spoof}");
    let res = get(front, "/sense/app/1?x=2", &with_cookie).await;
    assert_eq!(res.status, 200);
    assert!(res.header("set-cookie").is_none());
    let echo = res.json();
    assert_eq!(echo["path"], "/sense/app/1?x=2");
    assert_eq!(one(&echo, "x-qlik-user"), "UserDirectory=ACME; UserId=jdoe");

    // The engine WebSocket through the front, with the cookie; without it, no upgrade.
    let mut req = format!("ws://{front}/app/engineData")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", session.parse().unwrap());
    let stream = tokio::net::TcpStream::connect(front).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("upgraded");
    let hello = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(hello.to_text().unwrap(), ENGINE_HELLO);
    let req = format!("ws://{front}/app/engineData")
        .into_client_request()
        .unwrap();
    let stream = tokio::net::TcpStream::connect(front).await.unwrap();
    assert!(tokio_tungstenite::client_async(req, stream).await.is_err());

    // The gateway's own endpoint is not reachable from outside.
    assert_eq!(
        get(front, "/forward-auth", "X-Original-URI: /hub/\r\n")
            .await
            .status,
        404
    );

    // Logout through the front ends access.
    let res = raw(front, format!("DELETE /qps/user HTTP/1.1\r\nHost: {front}\r\nCookie: {session}\r\nConnection: close\r\n\r\n").as_bytes()).await;
    assert_eq!(res.status, 204);
    let res = get(front, "/hub/", &format!("Cookie: {session}\r\n")).await;
    assert_eq!(res.status, 302);

    // QlikView: a portal's web ticket, Authenticate.aspx, then the document page.
    let xml = "<Global method=\"GetWebTicket\"><UserId>jdoe</UserId></Global>";
    let res = raw(
        front,
        post(
            front,
            "/QvAJAXZfc/GetWebTicket.aspx",
            "Content-Type: text/xml\r\n",
            xml,
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let text = res.text();
    let ticket = text
        .trim_start_matches("<Global><_retval_>")
        .trim_end_matches("</_retval_></Global>");
    let res = get(front, &format!("/QvAJAXZfc/Authenticate.aspx?type=html&try=/QvAJAXZfc/opendoc.htm?document=Sales.qvw&back=/&webticket={ticket}"), "").await;
    assert_eq!(res.status, 302, "{}", res.text());
    let qv = cookie(&res);
    assert!(qv.starts_with("AccessPointSession="));
    let res = get(
        front,
        "/QvAJAXZfc/opendoc.htm?document=Sales.qvw",
        &format!("Cookie: {qv}\r\n{spoof}"),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let echo = res.json();
    assert_eq!(one(&echo, "qvuser"), "CUSTOM\\jdoe");
    assert_eq!(
        one(&echo, "x-qlik-user"),
        "",
        "the spoofed X-Qlik-User is gone"
    );
    let res = get(front, "/QvAJAXZfc/opendoc.htm?document=Sales.qvw", "").await;
    assert_eq!(res.status, 302);
    assert!(res
        .header("location")
        .unwrap()
        .contains("/demo/qlikview/?try="));
}

#[tokio::test]
async fn nginx_auth_request_in_front() {
    let port = free_port();
    let gw = gateway_behind(port).await;
    let backend = upstream::start().await;
    let Some(front) = nginx(port, gw.frontend, backend).await else {
        return;
    };
    walk(front.addr).await;
}

#[tokio::test]
async fn caddy_in_front() {
    let port = free_port();
    let gw = gateway_behind(port).await;
    let backend = upstream::start().await;
    let Some(front) = caddy(port, gw.frontend, backend).await else {
        return;
    };
    walk(front.addr).await;
}

// ---- The endpoint, asked directly ------------------------------------------------------

async fn ask(gw: &TestGateway, query: &str, headers: &str) -> RawResponse {
    get(gw.frontend, &format!("/forward-auth{query}"), headers).await
}

#[tokio::test]
async fn the_answers_a_proxy_gets() {
    let gw = TestGateway::start(
        "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n\
         [[virtual_proxy]]\nprefix = \"sso\"\nauthentication = \"header\"\nheader_name = \"hdr-usr\"\nheader_user_directory = \"ACME\"\n",
    )
    .await;
    // Not signed in: 401 with the login in Location (targetId remembers the original URL);
    // with redirect=true, the 302 itself.
    let res = ask(
        &gw,
        "",
        "X-Original-URI: /ext/hub/?a=1\r\nX-Original-Method: GET\r\n",
    )
    .await;
    assert_eq!(res.status, 401);
    let login = res.header("location").unwrap().to_owned();
    assert!(
        login.starts_with("https://auth.example.com/login?proxyRestUri="),
        "{login}"
    );
    let res = ask(
        &gw,
        "?redirect=true",
        "X-Forwarded-Uri: /ext/hub/\r\nX-Forwarded-Method: GET\r\n",
    )
    .await;
    assert_eq!(res.status, 302);
    // The module's ticket for that target id, then the original with the ticket.
    let body = format!(
        r#"{{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{{"Group":"Sales"}}],"TargetId":"{}"}}"#,
        param(&login, "targetId")
    );
    let issued = post_ticket(gw.api, "ext", &body).await.json();
    assert_eq!(
        issued["TargetUri"],
        format!("http://{}/ext/hub/?a=1", gw.frontend)
    );
    let ticket = issued["Ticket"].as_str().unwrap();
    let res = ask(&gw, "", &format!("X-Original-URI: /ext/hub/?a=1&qlikTicket={ticket}\r\nX-Qlik-User: UserDirectory=EVIL; UserId=root\r\n")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.body.is_empty());
    assert_eq!(
        res.header("x-qlik-user"),
        Some("UserDirectory=ACME; UserId=jdoe")
    );
    assert_eq!(
        res.header("x-qlik-security"),
        Some("SecureRequest=true; Context=AppAccess; Group=Sales;")
    );
    assert_eq!(res.header("x-qlik-virtual-proxy-prefix"), Some("ext"));
    assert_eq!(
        res.header("qvuser"),
        Some(""),
        "every header a proxy copies is there"
    );
    assert_eq!(res.headers_named("set-cookie").len(), 1);
    let c = cookie(&res);
    assert_eq!(
        res.header("x-qlik-proxysession"),
        c.split_once('=').map(|(_, v)| v)
    );
    // The cookie alone; the ticket is spent.
    let res = ask(
        &gw,
        "",
        &format!("X-Original-URI: /ext/sheet\r\nCookie: {c}\r\n"),
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(res.header("set-cookie").is_none());
    let res = ask(
        &gw,
        "",
        &format!("X-Original-URI: /ext/hub/?qlikTicket={ticket}\r\n"),
    )
    .await;
    assert_eq!(res.status, 401);
    // Over https (as the proxy says), the cookie is Secure and without -HTTP.
    let t = post_ticket(gw.api, "ext", r#"{"UserDirectory":"ACME","UserId":"jdoe"}"#)
        .await
        .json();
    let res = ask(
        &gw,
        "",
        &format!(
            "X-Original-URI: /ext/?qlikTicket={}\r\nX-Forwarded-Proto: https\r\n",
            t["Ticket"].as_str().unwrap()
        ),
    )
    .await;
    let set = res.header("set-cookie").unwrap();
    assert!(
        set.starts_with("X-Qlik-Session-ext=") && set.contains("Secure"),
        "{set}"
    );

    // ingress-nginx's auth-signin: the browser itself, the original URL in rd.
    let rd = "?rd=https%3A%2F%2Fqlik.example.com%2Fext%2Fhub%2F%3Fa%3D1";
    let res = ask(&gw, rd, "").await;
    assert_eq!(res.status, 302);
    assert!(res
        .header("location")
        .unwrap()
        .starts_with("https://auth.example.com/login?"));
    let res = ask(&gw, rd, &format!("Cookie: {c}\r\n")).await;
    assert_eq!(res.status, 302);
    assert_eq!(res.header("location"), Some("/ext/hub/?a=1"));

    // Header authentication: the proxy passes the SSO header along; no redirect ever.
    let res = ask(
        &gw,
        "?redirect=true",
        "X-Original-URI: /sso/hub/\r\nhdr-usr: bob\r\n",
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("x-qlik-user"),
        Some("UserDirectory=ACME; UserId=bob")
    );
    let res = ask(&gw, "?redirect=true", "X-Original-URI: /sso/hub/\r\n").await;
    assert_eq!(res.status, 401);
    assert!(res.header("location").is_none());

    // The gateway's own paths are not for forward-auth; a question without an original is
    // a 400; other methods are not allowed.
    for path in [
        "/ext/qps/user",
        "/qps/csrftoken",
        "/demo/login",
        "/QvAJAXZfc/Authenticate.aspx",
    ] {
        let res = ask(&gw, "", &format!("X-Original-URI: {path}\r\n")).await;
        assert_eq!(res.status, 403, "{path}");
    }
    assert_eq!(ask(&gw, "", "").await.status, 400);
    assert_eq!(
        ask(&gw, "", "X-Original-URI: https://evil.example/\r\n")
            .await
            .status,
        400
    );
    let res = raw(gw.frontend, format!("POST /forward-auth HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", gw.frontend).as_bytes()).await;
    assert_eq!(res.status, 405);
}

#[tokio::test]
async fn a_websocket_from_a_foreign_origin_is_refused() {
    let gw = TestGateway::start("[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n").await;
    let c = gateway_tests::login(&gw, "ext").await;
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    let res = ask(&gw, "", &format!("X-Original-URI: /ext/app/x\r\nCookie: {c}\r\n{upgrade}Origin: https://evil.example\r\n")).await;
    assert_eq!(res.status, 403);
    let res = ask(
        &gw,
        "",
        &format!(
            "X-Original-URI: /ext/app/x\r\nCookie: {c}\r\n{upgrade}Origin: http://{}\r\n",
            gw.frontend
        ),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("x-qlik-user"),
        Some("UserDirectory=ACME; UserId=jdoe")
    );
}
