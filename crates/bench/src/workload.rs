//! The workloads: what one operation sends, and what counts as a good reply.
//!
//! An operation is one HTTP exchange, or for the two-step flows (issue then redeem,
//! GetWebTicket then Authenticate.aspx) one login: two exchanges. Throughput and CPU are
//! reported per HTTP request ([`Workload::requests_per_op`] of them per operation), latency
//! per operation, so a login's latency is the time the whole login takes.
//!
//! Every login logs in a user never seen before in the run (`u<connection>-<n>`), as when a
//! shift starts: no user logs in twice, so no session limit is met and none is evicted.
//!
//! The proxied workloads (`proxied`, `download`, `upload`, `websocket`) send the same bytes
//! to whichever proxy is in front of the back end: the gateway (with its session cookie),
//! nginx or HAProxy. For `websocket` an operation is one message: a 128-byte masked text
//! frame sent, and its echo read back.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::http1::{Conn, Reply};
use crate::ws;

/// The Xrfkey every QPS API call carries, in the query and in the header.
pub const XRFKEY: &str = "abcdefghijklmnop";
/// The body of a ticket request, before the user id.
pub const TICKET_BODY_BEFORE_USER: &str = r#"{"UserDirectory":"ACME","UserId":""#;
/// The body of a ticket request, after the user id.
pub const TICKET_BODY_AFTER_USER: &str = r#"","Attributes":[{"Group":"Sales"}]}"#;
/// The body of a GetWebTicket call, before the user id.
pub const WEBTICKET_BODY_BEFORE_USER: &str = r#"<Global method="GetWebTicket"><UserId>ACME\"#;
/// The body of a GetWebTicket call, after the user id.
pub const WEBTICKET_BODY_AFTER_USER: &str = r#"</UserId><GroupList><string>Sales</string></GroupList><GroupsIsNames>true</GroupsIsNames></Global>"#;
/// The user of the requests that are not logins (the memory fill, set-up calls).
pub const FIXED_USER: &str = "jdoe";
/// The session the `session-get` workload reads, created once through the session API.
pub const SESSION_ID: &str = "bench-session-1";
/// What the hello server answers.
pub const HELLO_BODY: &[u8] = br#"{"hello":"world"}"#;
/// The virtual proxy whose `upstream` is the upstream hello server (`proxied`).
pub const PROXY_PREFIX: &str = "up";
/// The path of the `proxied` and `direct` workloads: behind [`PROXY_PREFIX`].
pub const PROXIED_PATH: &str = "/up/hub/some/path";
/// The path of `download`: the back end answers [`STREAM_BYTES`] for a path ending in
/// `/download`.
pub const DOWNLOAD_PATH: &str = "/up/hub/download";
/// The path of `upload`: the back end reads and drops the body of any `POST`.
pub const UPLOAD_PATH: &str = "/up/hub/upload";
/// The path of `websocket`: an engine socket (`/{vp}/app/…`); the back end echoes.
pub const WEBSOCKET_PATH: &str = "/up/app/bench-echo";
/// Bytes of the body `download` fetches and `upload` sends: 1 MiB.
pub const STREAM_BYTES: usize = 1 << 20;
/// Bytes of the text message `websocket` sends.
pub const WS_MESSAGE_BYTES: usize = 128;

/// A workload of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// `GET /` to the hello server: the ceiling.
    Hello,
    /// `POST /qps/ticket` on the API listener (201).
    QpsIssue,
    /// Issue a ticket, then redeem it with `GET /hub/?qlikTicket=` on the front end (the
    /// identity page answers: the default virtual proxy has no upstream).
    QpsIssueRedeem,
    /// `POST /QvAJAXZfc/GetWebTicket.aspx` on the front end.
    QvGetwebticket,
    /// GetWebTicket, then `GET Authenticate.aspx?webticket=` (302 with a cookie).
    QvGetwebticketAuthenticate,
    /// An authenticated `GET /up/hub/some/path` through the gateway to the upstream hello.
    Proxied,
    /// The same request straight to the upstream hello: the reference of `proxied`.
    Direct,
    /// `GET /qps/session/{id}` on the API listener.
    SessionGet,
    /// An authenticated `GET` of a 1 MiB body through the proxy, streamed.
    Download,
    /// An authenticated `POST` of a 1 MiB body through the proxy, streamed; the back end
    /// reads and drops it.
    Upload,
    /// One 128-byte text message over an engine socket through the proxy, and its echo.
    Websocket,
}

impl Workload {
    /// The name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Hello => "hello",
            Workload::QpsIssue => "qps-issue",
            Workload::QpsIssueRedeem => "qps-issue-redeem",
            Workload::QvGetwebticket => "qv-getwebticket",
            Workload::QvGetwebticketAuthenticate => "qv-getwebticket-authenticate",
            Workload::Proxied => "proxied",
            Workload::Direct => "direct",
            Workload::SessionGet => "session-get",
            Workload::Download => "download",
            Workload::Upload => "upload",
            Workload::Websocket => "websocket",
        }
    }

    /// Whether the workload goes through a proxy to the back end (the gateway's `up`
    /// virtual proxy, nginx or HAProxy), with a session cookie for the gateway.
    pub fn is_proxied(self) -> bool {
        matches!(
            self,
            Workload::Proxied | Workload::Download | Workload::Upload | Workload::Websocket
        )
    }

    /// Body bytes one operation moves through the proxy, for the MB/s of the streaming
    /// workloads.
    pub fn streamed_bytes(self) -> Option<u64> {
        match self {
            Workload::Download | Workload::Upload => Some(STREAM_BYTES as u64),
            _ => None,
        }
    }

    /// HTTP requests one operation sends.
    pub fn requests_per_op(self) -> u64 {
        match self {
            Workload::QpsIssueRedeem | Workload::QvGetwebticketAuthenticate => 2,
            _ => 1,
        }
    }
}

/// Where the servers are, and what the authenticated workloads present.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// The hello server of the ceiling (`hello`), on the servers' CPU.
    pub hello: Option<SocketAddr>,
    /// The hello server behind the `up` virtual proxy (`direct`, and `proxied` through the
    /// gateway), on the load generator's CPU.
    pub upstream: Option<SocketAddr>,
    /// The gateway's front end; or nginx or HAProxy in front of the same back end (for the
    /// proxied workloads), or the minimal ticket server's front end (for the logins).
    pub frontend: Option<SocketAddr>,
    /// The gateway's QPS REST API, or the minimal ticket server's.
    pub api: Option<SocketAddr>,
    /// `name=value` of a live session cookie of the `up` virtual proxy, for the proxied
    /// workloads and `direct` (sent to the peers too, so every proxy gets the same bytes).
    pub cookie: Option<String>,
    /// Goes between `u` and the connection number of every user id: empty for a run on
    /// fresh gateways, something of this process's own against a gateway that may have
    /// seen earlier runs.
    pub user_tag: String,
}

/// One connection's worth of a workload: its connections and prebuilt request bytes.
#[derive(Debug)]
pub struct Worker {
    workload: Workload,
    /// The connection the single-step workloads use, and the first step of two-step ones.
    first: Conn,
    /// The front-end connection of `qps-issue-redeem`.
    second: Option<Conn>,
    /// The request of the workloads that send the same bytes every time.
    request: Vec<u8>,
    /// The first request of a login, for a new user each time.
    login: Option<LoginRequest>,
    /// The second request of a two-step login: `GET <before>{ticket}<after>`.
    redeem: Template,
    /// Where the second request is built.
    scratch: Vec<u8>,
    /// `websocket`: the gateway's greeting may still come (before the first echo).
    greeting_possible: bool,
}

/// The body `upload` sends, shared by every connection.
fn upload_body() -> &'static [u8] {
    static BODY: OnceLock<Vec<u8>> = OnceLock::new();
    BODY.get_or_init(|| vec![b'x'; STREAM_BYTES])
}

/// The text message `websocket` sends: a Qlik engine JSON-RPC request padded with spaces
/// to [`WS_MESSAGE_BYTES`].
pub fn ws_message() -> &'static [u8] {
    static MESSAGE: OnceLock<Vec<u8>> = OnceLock::new();
    MESSAGE.get_or_init(|| {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"GetLayout","handle":1,"params":{}"#;
        let mut m = call.to_vec();
        m.resize(WS_MESSAGE_BYTES - 1, b' ');
        m.push(b'}');
        m
    })
}

/// A request split around one variable part.
#[derive(Debug, Default)]
struct Template {
    before: Vec<u8>,
    after: Vec<u8>,
}

impl Template {
    /// `before`, `middle`, `after` into `out`.
    fn fill(&self, out: &mut Vec<u8>, middle: &[u8]) {
        out.clear();
        out.extend_from_slice(&self.before);
        out.extend_from_slice(middle);
        out.extend_from_slice(&self.after);
    }
}

/// A `POST` whose body names a user, built per operation from prebuilt pieces: the head up
/// to `Content-Length: `, the body around the user id.
#[derive(Debug)]
pub struct LoginRequest {
    head: Vec<u8>,
    body_before: &'static str,
    body_after: &'static str,
    /// `u<tag><connection>-`, then the operation number, rewritten in place.
    user: Vec<u8>,
    user_prefix_len: usize,
    next: u64,
    buf: Vec<u8>,
}

impl LoginRequest {
    /// A login request to `addr` for the users `u<tag><connection>-0`, `-1`, ….
    fn new(
        addr: SocketAddr,
        path: &str,
        extra: &str,
        content_type: &str,
        body: (&'static str, &'static str),
        user_prefix: &str,
    ) -> LoginRequest {
        LoginRequest {
            head: post_head(&addr.to_string(), path, extra, content_type).into_bytes(),
            body_before: body.0,
            body_after: body.1,
            user: user_prefix.as_bytes().to_vec(),
            user_prefix_len: user_prefix.len(),
            next: 0,
            buf: Vec::with_capacity(512),
        }
    }

    /// The request for the next user.
    fn next_request(&mut self) -> &[u8] {
        self.user.truncate(self.user_prefix_len);
        // Writing to a Vec cannot fail.
        let _ = write!(self.user, "{}", self.next);
        self.next += 1;
        let body_len = self.body_before.len() + self.user.len() + self.body_after.len();
        self.buf.clear();
        self.buf.extend_from_slice(&self.head);
        let _ = write!(self.buf, "{body_len}\r\n\r\n");
        self.buf.extend_from_slice(self.body_before.as_bytes());
        self.buf.extend_from_slice(&self.user);
        self.buf.extend_from_slice(self.body_after.as_bytes());
        &self.buf
    }
}

fn need(addr: Option<SocketAddr>, what: &str) -> Result<SocketAddr, String> {
    addr.ok_or_else(|| format!("no {what} address"))
}

async fn connect(addr: SocketAddr) -> Result<Conn, String> {
    Conn::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))
}

/// A number for every connection this process opens for a workload, so that
/// `u<connection>-<n>` never names the same user twice in a run.
fn next_connection() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Worker {
    /// Opens the connections the workload needs.
    pub async fn connect(workload: Workload, t: &Targets) -> Result<Worker, String> {
        let front = t.frontend.map(|a| a.to_string()).unwrap_or_default();
        let cookie = t
            .cookie
            .as_deref()
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        let user_prefix = format!("u{}{}-", t.user_tag, next_connection());
        let xrf = format!("X-Qlik-Xrfkey: {XRFKEY}\r\n");
        let mut request = Vec::new();
        let mut login = None;
        let mut redeem = Template::default();
        let (first, second) = match workload {
            Workload::Hello => {
                let a = need(t.hello, "hello")?;
                request = get(a, "/", "");
                (a, None)
            }
            Workload::Direct | Workload::Proxied => {
                let a = if workload == Workload::Direct {
                    need(t.upstream, "upstream")?
                } else {
                    need(t.frontend, "front-end")?
                };
                request = get(a, PROXIED_PATH, &cookie);
                (a, None)
            }
            Workload::Download => {
                let a = need(t.frontend, "front-end")?;
                request = get(a, DOWNLOAD_PATH, &cookie);
                (a, None)
            }
            Workload::Upload => {
                let a = need(t.frontend, "front-end")?;
                let head = post_head(&front, UPLOAD_PATH, &cookie, "application/octet-stream");
                request = format!("{head}{STREAM_BYTES}\r\n\r\n").into_bytes();
                (a, None)
            }
            Workload::Websocket => {
                let a = need(t.frontend, "front-end")?;
                request = ws::masked_frame(ws::OP_TEXT, ws_message());
                (a, None)
            }
            Workload::QpsIssue | Workload::QpsIssueRedeem => {
                let a = need(t.api, "API")?;
                login = Some(LoginRequest::new(
                    a,
                    &format!("/qps/ticket?xrfkey={XRFKEY}"),
                    &xrf,
                    "application/json",
                    (TICKET_BODY_BEFORE_USER, TICKET_BODY_AFTER_USER),
                    &user_prefix,
                ));
                if workload == Workload::QpsIssue {
                    (a, None)
                } else {
                    redeem = get_template(&front, "/hub/?qlikTicket=", "");
                    (a, Some(need(t.frontend, "front-end")?))
                }
            }
            Workload::QvGetwebticket | Workload::QvGetwebticketAuthenticate => {
                let a = need(t.frontend, "front-end")?;
                login = Some(LoginRequest::new(
                    a,
                    "/QvAJAXZfc/GetWebTicket.aspx",
                    "",
                    "text/xml",
                    (WEBTICKET_BODY_BEFORE_USER, WEBTICKET_BODY_AFTER_USER),
                    &user_prefix,
                ));
                redeem = get_template(
                    &front,
                    "/QvAJAXZfc/Authenticate.aspx?type=html&try=/QlikView/&back=&webticket=",
                    "",
                );
                (a, None)
            }
            Workload::SessionGet => {
                let a = need(t.api, "API")?;
                let path = format!("/qps/session/{SESSION_ID}?xrfkey={XRFKEY}");
                request = get(a, &path, &xrf);
                (a, None)
            }
        };
        let second = match second {
            Some(a) => Some(connect(a).await?),
            None => None,
        };
        let mut first = connect(first).await?;
        if workload == Workload::Websocket {
            let upgrade = ws::upgrade_request(&front, WEBSOCKET_PATH, &cookie);
            let reply = first
                .exchange(&upgrade)
                .await
                .map_err(|e| format!("websocket upgrade: {e}"))?;
            expect(&reply, 101, "websocket upgrade")?;
        }
        Ok(Worker {
            workload,
            first,
            second,
            request,
            login,
            redeem,
            scratch: Vec::with_capacity(256),
            greeting_possible: true,
        })
    }

    /// One message over the socket: the frame out, then its echo back; the gateway's
    /// greeting, if it comes, is read and dropped on the way.
    async fn echo(&mut self) -> Result<(), String> {
        let w = self.workload.name();
        let err = |e: std::io::Error| format!("{w}: {e}");
        self.first.send(&self.request).await.map_err(err)?;
        loop {
            let frame = self.first.read_frame().await.map_err(err)?;
            let first_frame = std::mem::replace(&mut self.greeting_possible, false);
            match frame.opcode {
                ws::OP_TEXT if frame.payload == ws_message() => return Ok(()),
                ws::OP_TEXT if first_frame && ws::is_greeting(frame.payload) => {}
                ws::OP_PING | ws::OP_PONG => {}
                op => {
                    return Err(format!(
                        "{w}: frame of opcode {op} and {} bytes instead of the echo: {}",
                        frame.payload.len(),
                        String::from_utf8_lossy(&frame.payload[..frame.payload.len().min(200)])
                    ))
                }
            }
        }
    }

    /// Runs one operation and checks its reply (or replies).
    pub async fn op(&mut self) -> Result<(), String> {
        let w = self.workload.name();
        match self.workload {
            Workload::Websocket => return self.echo().await,
            Workload::Upload => {
                let reply = self
                    .first
                    .exchange_with_body(&self.request, upload_body())
                    .await
                    .map_err(|e| format!("{w}: {e}"))?;
                return expect(&reply, 200, w);
            }
            _ => {}
        }
        let request: &[u8] = match &mut self.login {
            Some(login) => login.next_request(),
            None => &self.request,
        };
        let reply = self
            .first
            .exchange(request)
            .await
            .map_err(|e| format!("{w}: {e}"))?;
        match self.workload {
            Workload::Hello | Workload::Direct | Workload::Proxied | Workload::SessionGet => {
                expect(&reply, 200, w)
            }
            Workload::Download => {
                expect(&reply, 200, w)?;
                match reply.body.len() {
                    STREAM_BYTES => Ok(()),
                    n => Err(format!("{w}: {n} bytes instead of {STREAM_BYTES}")),
                }
            }
            Workload::Upload | Workload::Websocket => unreachable!("handled above"),
            Workload::QpsIssue => expect(&reply, 201, w),
            Workload::QvGetwebticket => expect(&reply, 200, w)
                .and_then(|()| web_ticket(&reply))
                .map(drop),
            Workload::QpsIssueRedeem => {
                expect(&reply, 201, w)?;
                self.redeem
                    .fill(&mut self.scratch, qps_ticket(&reply)?.as_bytes());
                let front = self.second.as_mut().ok_or("no front-end connection")?;
                let reply = front
                    .exchange(&self.scratch)
                    .await
                    .map_err(|e| format!("{w}: {e}"))?;
                expect(&reply, 200, w)?;
                set_cookie(&reply).map(drop)
            }
            Workload::QvGetwebticketAuthenticate => {
                expect(&reply, 200, w)?;
                self.redeem
                    .fill(&mut self.scratch, web_ticket(&reply)?.as_bytes());
                let reply = self
                    .first
                    .exchange(&self.scratch)
                    .await
                    .map_err(|e| format!("{w}: {e}"))?;
                expect(&reply, 302, w)?;
                set_cookie(&reply).map(drop)
            }
        }
    }
}

/// A keep-alive `GET` with extra header lines (each ending in CRLF).
pub fn get(addr: SocketAddr, path: &str, extra: &str) -> Vec<u8> {
    get_host(&addr.to_string(), path, extra)
}

fn get_host(host: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n").into_bytes()
}

/// A `GET` of `path_before{x}` with `x` filled in per request.
fn get_template(host: &str, path_before: &str, extra: &str) -> Template {
    Template {
        before: format!("GET {path_before}").into_bytes(),
        after: format!(" HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n").into_bytes(),
    }
}

/// A `POST` head up to and including `Content-Length: `.
fn post_head(host: &str, path: &str, extra: &str, content_type: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: "
    )
}

/// A keep-alive `POST` with a body.
pub fn post(addr: SocketAddr, path: &str, extra: &str, content_type: &str, body: &str) -> Vec<u8> {
    let mut head = post_head(&addr.to_string(), path, extra, content_type);
    head += &format!("{}\r\n\r\n{body}", body.len());
    head.into_bytes()
}

/// `POST /qps[/{vp}]/ticket?xrfkey=…` for `ACME\<user>`; `vp` is `""` for the default
/// virtual proxy.
pub fn issue_request_for(api: SocketAddr, vp: &str, user: &str) -> Vec<u8> {
    let path = if vp.is_empty() {
        format!("/qps/ticket?xrfkey={XRFKEY}")
    } else {
        format!("/qps/{vp}/ticket?xrfkey={XRFKEY}")
    };
    post(
        api,
        &path,
        &format!("X-Qlik-Xrfkey: {XRFKEY}\r\n"),
        "application/json",
        &format!("{TICKET_BODY_BEFORE_USER}{user}{TICKET_BODY_AFTER_USER}"),
    )
}

/// `POST /qps/ticket?xrfkey=…` for `ACME\jdoe` on the default virtual proxy.
pub fn issue_request(api: SocketAddr) -> Vec<u8> {
    issue_request_for(api, "", FIXED_USER)
}

/// `POST /QvAJAXZfc/GetWebTicket.aspx` for `ACME\jdoe`.
pub fn webticket_request(front: SocketAddr) -> Vec<u8> {
    post(
        front,
        "/QvAJAXZfc/GetWebTicket.aspx",
        "",
        "text/xml",
        &format!("{WEBTICKET_BODY_BEFORE_USER}{FIXED_USER}{WEBTICKET_BODY_AFTER_USER}"),
    )
}

/// Fails unless the status is `want`.
pub fn expect(reply: &Reply<'_>, want: u16, what: &str) -> Result<(), String> {
    if reply.status == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: status {} (expected {want}): {}",
            reply.status,
            reply.text().chars().take(200).collect::<String>()
        ))
    }
}

/// The `Ticket` of a QPS ticket reply.
pub fn qps_ticket<'r>(reply: &'r Reply<'_>) -> Result<&'r str, String> {
    between(reply.body, b"\"Ticket\":\"", b"\"")
        .ok_or_else(|| format!("no Ticket in {}", reply.text()))
}

/// The ticket between `<_retval_>` and `</_retval_>`.
pub fn web_ticket<'r>(reply: &'r Reply<'_>) -> Result<&'r str, String> {
    between(reply.body, b"<_retval_>", b"</_retval_>")
        .filter(|t| t.len() == 40)
        .ok_or_else(|| format!("no web ticket in {}", reply.text()))
}

/// The `name=value` pair of the reply's `Set-Cookie`.
pub fn set_cookie<'r>(reply: &'r Reply<'_>) -> Result<&'r str, String> {
    reply
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .filter(|pair| pair.contains('='))
        .ok_or_else(|| format!("no Set-Cookie in a {} reply", reply.status))
}

fn between<'b>(hay: &'b [u8], start: &[u8], end: &[u8]) -> Option<&'b str> {
    let from = hay.windows(start.len()).position(|w| w == start)? + start.len();
    let len = hay[from..].windows(end.len()).position(|w| w == end)?;
    std::str::from_utf8(&hay[from..from + len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:4243".parse().unwrap()
    }

    #[test]
    fn login_requests_name_a_new_user_each_time() {
        let path = format!("/qps/ticket?xrfkey={XRFKEY}");
        let xrf = format!("X-Qlik-Xrfkey: {XRFKEY}\r\n");
        let mut login = LoginRequest::new(
            addr(),
            &path,
            &xrf,
            "application/json",
            (TICKET_BODY_BEFORE_USER, TICKET_BODY_AFTER_USER),
            "u7-",
        );
        for n in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
            let want = issue_request_for(addr(), "", &format!("u7-{n}"));
            assert_eq!(
                String::from_utf8_lossy(login.next_request()),
                String::from_utf8_lossy(&want)
            );
        }
    }

    #[test]
    fn the_fixed_requests_are_well_formed() {
        let r = String::from_utf8(issue_request(addr())).unwrap();
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains(r#""UserId":"jdoe""#));
        let r = String::from_utf8(issue_request_for(addr(), "up", "x")).unwrap();
        assert!(r.starts_with("POST /qps/up/ticket?xrfkey="));
        let r = String::from_utf8(webticket_request(addr())).unwrap();
        assert!(r.contains(r"<UserId>ACME\jdoe</UserId>"));
    }

    #[test]
    fn the_websocket_message_is_128_bytes_of_json() {
        let m = ws_message();
        assert_eq!(m.len(), WS_MESSAGE_BYTES);
        let v: serde_json::Value = serde_json::from_slice(m).unwrap();
        assert_eq!(v["method"], "GetLayout");
        assert!(!ws::is_greeting(m));
    }

    #[test]
    fn only_the_proxy_workloads_are_proxied() {
        let proxied = [
            Workload::Proxied,
            Workload::Download,
            Workload::Upload,
            Workload::Websocket,
        ];
        for w in [Workload::Hello, Workload::Direct, Workload::QpsIssue] {
            assert!(!w.is_proxied());
        }
        assert!(proxied.iter().all(|w| w.is_proxied()));
        assert_eq!(Workload::Upload.streamed_bytes(), Some(1 << 20));
        assert_eq!(Workload::Websocket.streamed_bytes(), None);
    }

    /// A WebSocket server that answers the upgrade, sends the gateway's greeting first if
    /// asked to, then echoes every frame unmasked, as a back end does.
    async fn echo_server(greeting: bool) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut chunk = [0u8; 1024];
                let n = s.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.clear();
            let mut out = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                Connection: Upgrade\r\n\r\n"
                .to_vec();
            if greeting {
                let text = br#"{"jsonrpc":"2.0","method":"OnAuthenticationInformation","params":{"userId":"u","mustAuthenticate":false}}"#;
                out.extend_from_slice(&[0x81, text.len() as u8]);
                out.extend_from_slice(text);
            }
            s.write_all(&out).await.unwrap();
            loop {
                let mut chunk = [0u8; 1024];
                let n = s.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some(head) = ws::parse_frame_head(&buf) {
                    let end = head.head_len + head.payload_len;
                    if buf.len() < end {
                        break;
                    }
                    let mut payload = buf[head.head_len..end].to_vec();
                    ws::apply_mask(&mut payload, head.mask.unwrap());
                    let mut echo = vec![0x80 | head.opcode, 126];
                    echo.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                    echo.extend_from_slice(&payload);
                    s.write_all(&echo).await.unwrap();
                    buf.drain(..end);
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn websocket_messages_come_back_with_or_without_a_greeting() {
        for greeting in [true, false] {
            let t = Targets {
                frontend: Some(echo_server(greeting).await),
                ..Targets::default()
            };
            let mut worker = Worker::connect(Workload::Websocket, &t).await.unwrap();
            for _ in 0..3 {
                worker.op().await.unwrap();
            }
        }
    }

    #[test]
    fn templates_fill_the_middle() {
        let t = get_template("h:1", "/hub/?qlikTicket=", "");
        let mut out = Vec::new();
        t.fill(&mut out, b"abc");
        assert_eq!(
            out,
            b"GET /hub/?qlikTicket=abc HTTP/1.1\r\nHost: h:1\r\n\r\n".to_vec()
        );
    }
}
