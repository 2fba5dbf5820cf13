//! Test support: start a gateway on ephemeral ports, speak raw HTTP/1.x to it, and load
//! wire fixtures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use ticket_core::MemoryStore;
use ticket_gateway::{Conn, Gateway, Listeners, Settings, Side};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A gateway serving on `127.0.0.1:0` listeners, stopped when dropped.
#[derive(Debug)]
pub struct TestGateway {
    /// The front end's address.
    pub frontend: SocketAddr,
    /// The QPS REST API's address.
    pub api: SocketAddr,
    /// The gateway itself, for in-process calls.
    pub gateway: Gateway,
    shutdown: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<()>>,
}

impl TestGateway {
    /// Starts a gateway whose `[frontend]` and `[api]` listen on ephemeral ports and whose
    /// public URLs point at them; `extra` is appended to the configuration.
    pub async fn start(extra: &str) -> TestGateway {
        TestGateway::start_with_store(extra, Arc::new(MemoryStore::new())).await
    }

    /// Stops accepting and waits for the server to drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(join) = self.join.take() {
            let _ = join.await;
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The configuration of a test gateway: `[frontend]` and `[api]` on the given ports with
/// public URLs pointing at them, plus `extra`. Keys `extra` gives for `[frontend]` or
/// `[api]` are merged into those tables.
pub fn test_config(frontend: SocketAddr, api: SocketAddr, extra: &str) -> String {
    let (mut f, mut a, mut rest) = (String::new(), String::new(), String::new());
    let mut section = "";
    for line in extra.lines() {
        match line.trim() {
            "[frontend]" => section = "frontend",
            "[api]" => section = "api",
            t if t.starts_with('[') => {
                section = "";
                rest.push_str(line);
                rest.push('\n');
            }
            _ => {
                let to = match section {
                    "frontend" => &mut f,
                    "api" => &mut a,
                    _ => &mut rest,
                };
                to.push_str(line);
                to.push('\n');
            }
        }
    }
    let scheme = |keys: &str| {
        if keys.contains("tls_cert") {
            "https"
        } else {
            "http"
        }
    };
    // A `public_url` in `extra` (a site behind a reverse proxy) replaces the default one.
    let public = |keys: &str, scheme: &str, addr: SocketAddr| {
        if keys
            .lines()
            .any(|l| l.trim_start().starts_with("public_url"))
        {
            String::new()
        } else {
            format!("public_url = \"{scheme}://{addr}\"\n")
        }
    };
    format!(
        "[frontend]\nlisten = \"{frontend}\"\n{}{f}[api]\nlisten = \"{api}\"\n{}{a}{rest}",
        public(&f, scheme(&f), frontend),
        public(&a, scheme(&a), api),
    )
}

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The status line, without CRLF.
    pub status_line: String,
    /// Headers in wire order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header named `name` (lowercase).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// Sends `request` byte for byte on a new connection and reads one response.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    read_response(&mut stream).await
}

/// Reads one response (Content-Length, chunked, or close-delimited).
pub async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "connection closed before the headers: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[head_end + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if let Some(len) = length {
        while body.len() < len {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "connection closed inside the body");
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
    } else if chunked {
        panic!("the gateway answered with a chunked body; small replies must carry Content-Length");
    } else if status >= 200 && status != 204 && status != 304 {
        stream.read_to_end(&mut body).await.expect("read to close");
    }
    RawResponse {
        status,
        status_line,
        headers,
        body,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A simple `GET` with `Connection: close` and optional extra header lines (a `Host`
/// among them replaces the default one).
pub async fn get(addr: SocketAddr, target: &str, extra_headers: &str) -> RawResponse {
    let host = if extra_headers
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("host:"))
    {
        String::new()
    } else {
        format!("Host: {addr}\r\n")
    };
    let req = format!("GET {target} HTTP/1.1\r\n{host}{extra_headers}Connection: close\r\n\r\n");
    raw(addr, req.as_bytes()).await
}

/// A `POST` to the ticket API with a matching Xrfkey pair.
pub async fn post_ticket(api: SocketAddr, vp: &str, body: &str) -> RawResponse {
    let path = if vp.is_empty() {
        "/qps/ticket".to_owned()
    } else {
        format!("/qps/{vp}/ticket")
    };
    let req = format!(
        "POST {path}?xrfkey=abcdefghijklmnop HTTP/1.1\r\nHost: {api}\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw(api, req.as_bytes()).await
}

/// Issues a ticket for `ACME\jdoe` on virtual proxy `vp` and returns it.
pub async fn ticket(api: SocketAddr, vp: &str) -> String {
    let res = post_ticket(
        api,
        vp,
        r#"{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{"Group":"Sales"}]}"#,
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["Ticket"].as_str().expect("Ticket").to_owned()
}

/// `name=value` of a reply's `Set-Cookie`, which it must have.
pub fn cookie(res: &RawResponse) -> String {
    res.header("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie: {} {}", res.status_line, res.text()))
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A whole login on virtual proxy `vp`: a ticket for `ACME\jdoe` (see [`ticket`]),
/// redeemed at `/{vp}/hub/`; returns the session cookie as `name=value`.
pub async fn login(gw: &TestGateway, vp: &str) -> String {
    let t = ticket(gw.api, vp).await;
    let hub = if vp.is_empty() {
        "/hub/".to_owned()
    } else {
        format!("/{vp}/hub/")
    };
    let res = get(gw.frontend, &format!("{hub}?qlikTicket={t}"), "").await;
    assert_eq!(res.status, 200, "{}", res.text());
    cookie(&res)
}

/// The directory of wire fixtures.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A request built in process, answered without a socket: for tests on tokio's paused
/// clock, where real sockets and timers would race the clock.
pub async fn call(
    gateway: &Gateway,
    side: Side,
    req: http::Request<Full<Bytes>>,
) -> http::Response<Bytes> {
    use http_body_util::BodyExt;
    let conn = Conn::plain(side, "127.0.0.1:50000".parse().unwrap());
    let res = gateway.handle(req, &conn).await;
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    http::Response::from_parts(parts, bytes)
}

/// Whether `s` is a lowercase GUID.
pub fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// Checks a reply against an expected `.response` fixture: the status line, each header it
/// lists (exact value), an exact `Content-Length`, and the body, where `{TICKET}` stands for
/// a fresh 16-letter QPS ticket, `{WEBTICKET}` for 40 uppercase hex digits and a final
/// `{ANY}` for any text.
pub fn check_fixture(expected: &str, res: &RawResponse) -> Result<(), String> {
    let (head, body) = expected.split_once("\n\n").unwrap_or((expected, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    if res.status_line != status {
        return Err(format!(
            "status line {:?}, expected {status:?}",
            res.status_line
        ));
    }
    for line in lines {
        let (k, v) = line.split_once(": ").expect("header line");
        if res.header(k) != Some(v) {
            return Err(format!("header {k}: {:?}, expected {v:?}", res.header(k)));
        }
    }
    if res.header("content-length") != Some(&res.body.len().to_string()) {
        return Err("reply without an exact Content-Length".into());
    }
    let text = res.text();
    if body_matches(body, &text) {
        Ok(())
    } else {
        Err(format!("body {text:?}, expected {body:?}"))
    }
}

fn body_matches(pattern: &str, text: &str) -> bool {
    let Some(start) = ["{TICKET}", "{WEBTICKET}", "{ANY}"]
        .iter()
        .filter_map(|t| pattern.find(t))
        .min()
    else {
        return pattern == text;
    };
    let (literal, rest) = pattern.split_at(start);
    let Some(text) = text.strip_prefix(literal) else {
        return false;
    };
    let token = |len: usize, ok: fn(u8) -> bool, after: &str| {
        text.len() >= len
            && text.as_bytes()[..len].iter().all(|&b| ok(b))
            && body_matches(after, &text[len..])
    };
    if let Some(after) = rest.strip_prefix("{TICKET}") {
        token(16, |b| b.is_ascii_alphabetic(), after)
    } else if let Some(after) = rest.strip_prefix("{WEBTICKET}") {
        token(
            40,
            |b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b),
            after,
        )
    } else if rest == "{ANY}" {
        true
    } else {
        pattern == text
    }
}

/// Replays every `*.request` in `fixtures/<dir>` against `addr` and checks the reply
/// against the `.response` beside it; returns one line per mismatch.
pub async fn replay_fixtures(addr: SocketAddr, dir: &str, at_least: usize) -> Vec<String> {
    let dir = fixtures_dir().join(dir);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "request"))
        .collect();
    names.sort();
    assert!(
        names.len() >= at_least,
        "fixtures missing in {}: {}",
        dir.display(),
        names.len()
    );
    let mut failures = Vec::new();
    for path in &names {
        let request = std::fs::read(path).expect("request fixture");
        let expected =
            std::fs::read_to_string(path.with_extension("response")).expect("response fixture");
        let res = raw(addr, &request).await;
        if let Err(why) = check_fixture(&expected, &res) {
            failures.push(format!(
                "{}: {why}",
                path.file_stem().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    failures
}
pub mod redis_server;
pub mod upstream;

/// A [`RedisStore`](ticket_core::RedisStore) on `server` under `key_prefix`, each operation
/// bounded by `op_timeout`. Each call opens its own connection, as each gateway node does;
/// nodes given the same prefix share their tickets and sessions.
///
/// # Panics
/// When the server does not answer.
pub async fn redis_store(
    server: &redis_server::RedisServer,
    key_prefix: &str,
    op_timeout: std::time::Duration,
) -> Arc<dyn ticket_core::Store> {
    let cfg = ticket_core::RedisConfig {
        url: server.url(),
        key_prefix: key_prefix.to_owned(),
        op_timeout,
    };
    Arc::new(
        ticket_core::RedisStore::connect(cfg)
            .await
            .expect("connect to the test redis-server"),
    )
}

impl TestGateway {
    /// Like [`start`](Self::start), on `store`: several gateways given stores over one
    /// Redis server behave as the nodes of one deployment.
    pub async fn start_with_store(extra: &str, store: Arc<dyn ticket_core::Store>) -> TestGateway {
        let frontend = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind frontend");
        let api = TcpListener::bind("127.0.0.1:0").await.expect("bind api");
        let (f, a) = (frontend.local_addr().unwrap(), api.local_addr().unwrap());
        let settings =
            Settings::from_toml(&test_config(f, a, extra)).expect("test configuration is valid");
        let gateway = Gateway::new(settings, store).expect("the test gateway starts");
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(ticket_gateway::run(
            Listeners { frontend, api },
            gateway.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        TestGateway {
            frontend: f,
            api: a,
            gateway,
            shutdown: Some(tx),
            join: Some(join),
        }
    }
}

/// A gateway over a fresh in-memory store with configuration `config`, to be called in
/// process with [`send`] (tests on tokio's paused clock).
pub fn in_process(config: &str) -> Gateway {
    let settings = Settings::from_toml(config).expect("test configuration is valid");
    Gateway::new(settings, Arc::new(MemoryStore::new())).expect("the test gateway starts")
}

/// One request answered in process. It always carries a matching Xrfkey header (the
/// query must still name the key), and the cookie header when given.
pub async fn send(
    gw: &Gateway,
    side: Side,
    method: &str,
    target: &str,
    cookie: Option<&str>,
    body: &str,
) -> http::Response<Bytes> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(target)
        .header("X-Qlik-Xrfkey", "abcdefghijklmnop");
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    call(
        gw,
        side,
        req.body(Full::new(Bytes::from(body.to_owned())))
            .expect("request"),
    )
    .await
}
