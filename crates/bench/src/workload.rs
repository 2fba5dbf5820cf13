//! The workloads: what one operation sends, and what counts as a good reply.
//!
//! An operation is one HTTP exchange, or for the two-step flows (issue then redeem) the
//! pair: the figures reported are per operation, because the pair is what one login costs.

use std::net::SocketAddr;

use crate::http1::{Conn, Reply};

/// The Xrfkey every QPS API call carries, in the query and in the header.
pub const XRFKEY: &str = "abcdefghijklmnop";
/// The body of a ticket request.
pub const TICKET_BODY: &str =
    r#"{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{"Group":"Sales"}]}"#;
/// The body of a GetWebTicket call.
pub const WEBTICKET_BODY: &str = r#"<Global method="GetWebTicket"><UserId>ACME\jdoe</UserId><GroupList><string>Sales</string></GroupList><GroupsIsNames>true</GroupsIsNames></Global>"#;
/// The session the `session-get` workload reads, created once through the session API.
pub const SESSION_ID: &str = "bench-session-1";
/// What the hello server answers.
pub const HELLO_BODY: &[u8] = br#"{"hello":"world"}"#;
/// The path of the `proxied` and `direct` workloads.
pub const PROXIED_PATH: &str = "/hub/some/path";

/// A workload of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// `GET /` to the hello server: the ceiling.
    Hello,
    /// `POST /qps/ticket` on the API listener (201).
    QpsIssue,
    /// Issue a ticket, then redeem it with `GET /hub/?qlikTicket=` on the front end.
    QpsIssueRedeem,
    /// `POST /QvAJAXZfc/GetWebTicket.aspx` on the front end.
    QvGetwebticket,
    /// GetWebTicket, then `GET Authenticate.aspx?webticket=` (302 with a cookie).
    QvGetwebticketAuthenticate,
    /// An authenticated `GET /hub/some/path` through the gateway to its upstream (hello).
    Proxied,
    /// The same request straight to the upstream: the reference of `proxied`.
    Direct,
    /// `GET /qps/session/{id}` on the API listener.
    SessionGet,
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
        }
    }
}

/// Where the servers are, and what the authenticated workloads present.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// The hello server (ceiling and upstream).
    pub hello: Option<SocketAddr>,
    /// The gateway's front end.
    pub frontend: Option<SocketAddr>,
    /// The gateway's QPS REST API.
    pub api: Option<SocketAddr>,
    /// `name=value` of a live session cookie, for `proxied` and `direct`.
    pub cookie: Option<String>,
}

/// One connection's worth of a workload: its connections and prebuilt request.
#[derive(Debug)]
pub struct Worker {
    workload: Workload,
    /// The connection the single-step workloads use, and the first step of two-step ones.
    first: Conn,
    /// The front-end connection of `qps-issue-redeem`.
    second: Option<Conn>,
    request: Vec<u8>,
    front_host: String,
}

fn need(addr: Option<SocketAddr>, what: &str) -> Result<SocketAddr, String> {
    addr.ok_or_else(|| format!("no {what} address"))
}

async fn connect(addr: SocketAddr) -> Result<Conn, String> {
    Conn::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))
}

impl Worker {
    /// Opens the connections the workload needs.
    pub async fn connect(workload: Workload, t: &Targets) -> Result<Worker, String> {
        let front = t.frontend.map(|a| a.to_string()).unwrap_or_default();
        let cookie = t.cookie.as_deref().unwrap_or("");
        let (first, second, request) = match workload {
            Workload::Hello => {
                let a = need(t.hello, "hello")?;
                (a, None, get(a, "/", ""))
            }
            Workload::Direct | Workload::Proxied => {
                let a = if workload == Workload::Direct {
                    need(t.hello, "hello")?
                } else {
                    need(t.frontend, "front-end")?
                };
                (
                    a,
                    None,
                    get(a, PROXIED_PATH, &format!("Cookie: {cookie}\r\n")),
                )
            }
            Workload::QpsIssue => {
                let a = need(t.api, "API")?;
                (a, None, issue_request_as(a, &next_user()))
            }
            Workload::QpsIssueRedeem => {
                let a = need(t.api, "API")?;
                (
                    a,
                    Some(need(t.frontend, "front-end")?),
                    issue_request_as(a, &next_user()),
                )
            }
            Workload::QvGetwebticket | Workload::QvGetwebticketAuthenticate => {
                let a = need(t.frontend, "front-end")?;
                (a, None, webticket_request(a))
            }
            Workload::SessionGet => {
                let a = need(t.api, "API")?;
                let path = format!("/qps/session/{SESSION_ID}?xrfkey={XRFKEY}");
                (
                    a,
                    None,
                    get(a, &path, &format!("X-Qlik-Xrfkey: {XRFKEY}\r\n")),
                )
            }
        };
        let second = match second {
            Some(a) => Some(connect(a).await?),
            None => None,
        };
        Ok(Worker {
            workload,
            first: connect(first).await?,
            second,
            request,
            front_host: front,
        })
    }

    /// Runs one operation and checks its reply (or replies).
    pub async fn op(&mut self) -> Result<(), String> {
        let w = self.workload.name();
        let reply = self
            .first
            .exchange(&self.request)
            .await
            .map_err(|e| format!("{w}: {e}"))?;
        match self.workload {
            Workload::Hello | Workload::Direct | Workload::Proxied | Workload::SessionGet => {
                expect(&reply, 200, w)
            }
            Workload::QpsIssue => expect(&reply, 201, w),
            Workload::QvGetwebticket => expect(&reply, 200, w)
                .and_then(|()| web_ticket(&reply))
                .map(drop),
            Workload::QpsIssueRedeem => {
                expect(&reply, 201, w)?;
                let ticket = qps_ticket(&reply)?;
                let redeem = get_host(&self.front_host, &format!("/hub/?qlikTicket={ticket}"), "");
                let front = self.second.as_mut().ok_or("no front-end connection")?;
                let reply = front
                    .exchange(&redeem)
                    .await
                    .map_err(|e| format!("{w}: {e}"))?;
                expect(&reply, 200, w)?;
                set_cookie(&reply).map(drop)
            }
            Workload::QvGetwebticketAuthenticate => {
                expect(&reply, 200, w)?;
                let ticket = web_ticket(&reply)?;
                let path = format!(
                    "/QvAJAXZfc/Authenticate.aspx?type=html&try=/QlikView/&back=&webticket={ticket}"
                );
                let redeem = get_host(&self.front_host, &path, "");
                let reply = self
                    .first
                    .exchange(&redeem)
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

/// A keep-alive `POST` with a body.
pub fn post(addr: SocketAddr, path: &str, extra: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A user id of its own for each connection: a login storm is many users logging in, not
/// one user logging in thousands of times (which only measures one user's session limit).
fn next_user() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "jdoe{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// `POST /qps/ticket?xrfkey=…` for `ACME\<user>` on the default virtual proxy.
pub fn issue_request_as(api: SocketAddr, user: &str) -> Vec<u8> {
    post(
        api,
        &format!("/qps/ticket?xrfkey={XRFKEY}"),
        &format!("X-Qlik-Xrfkey: {XRFKEY}\r\n"),
        "application/json",
        &TICKET_BODY.replace("\"jdoe\"", &format!("\"{user}\"")),
    )
}

/// `POST /qps/ticket?xrfkey=…` for `ACME\jdoe` on the default virtual proxy.
pub fn issue_request(api: SocketAddr) -> Vec<u8> {
    post(
        api,
        &format!("/qps/ticket?xrfkey={XRFKEY}"),
        &format!("X-Qlik-Xrfkey: {XRFKEY}\r\n"),
        "application/json",
        TICKET_BODY,
    )
}

/// `POST /QvAJAXZfc/GetWebTicket.aspx` for `ACME\jdoe`.
pub fn webticket_request(front: SocketAddr) -> Vec<u8> {
    post(
        front,
        "/QvAJAXZfc/GetWebTicket.aspx",
        "",
        "text/xml",
        WEBTICKET_BODY,
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
