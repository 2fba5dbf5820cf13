//! The minimal ticket server: the limit of the login rows.
//!
//! What any server issuing and redeeming Qlik tickets has to do, and nothing more, on the
//! gateway's own building blocks (hyper's HTTP/1 server, the tokio runtime the gateway
//! would choose (`crate::runtime`), mimalloc as the gateway's allocator):
//!
//! - `POST /qps/ticket?xrfkey=…`: the Xrfkey in the query equal to `X-Qlik-Xrfkey`, the body
//!   read into `{"UserDirectory","UserId","Attributes","TargetId"}` by `serde_json`, a
//!   16-letter id from the thread's CSPRNG (`rand`), a map insert, and the `201` reply with
//!   the gateway's keys (`UserDirectory`, `UserId`, `Attributes`, `Ticket`, `TargetUri`).
//! - `GET /hub/?qlikTicket=…`: the ticket removed from the map, `200` with
//!   `Set-Cookie: X-Qlik-Session-HTTP=<guid>; Path=/; HttpOnly` and a small JSON body naming
//!   the user.
//! - `POST /QvAJAXZfc/GetWebTicket.aspx` (loopback callers only, the gateway's default
//!   `trusted_ips`): `<Global method="GetWebTicket"><UserId>…</UserId>…</Global>` read with
//!   quick-xml (no DOCTYPE), 40 hex digits from the CSPRNG, a map insert,
//!   `<Global><_retval_>…</_retval_></Global>`.
//! - `GET /QvAJAXZfc/Authenticate.aspx?…&webticket=…&try=…`: the web ticket removed, `302`
//!   to `try` with `Set-Cookie: AccessPointSession=<guid>; Path=/; HttpOnly`.
//!
//! Tickets live [`TICKET_TTL`] in sharded `Mutex<HashMap>`s, swept every few seconds one
//! shard at a time, so a long `qps-issue` run does not grow the map without end (the
//! gateway expires its tickets too). No session is kept behind the cookies: a stricter
//! limit than the gateway, which keeps every session it hands out.
//!
//! It serves the same paths on two listeners, an API port and a front-end port, because
//! the workloads send the ticket API to one and the browser requests to the other.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use quick_xml::events::Event;
use quick_xml::Reader;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// How long an unredeemed ticket lives: the gateway's default `[tickets] ttl_seconds`.
pub const TICKET_TTL: Duration = Duration::from_secs(60);
/// How often expired tickets are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Largest request body read: the gateway's default `[limits] max_body_bytes`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Shards of each ticket map: a sweep holds one shard's lock at a time.
const SHARDS: usize = 16;

/// The body of a QPS ticket request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TicketRequest {
    /// `UserDirectory`.
    pub user_directory: String,
    /// `UserId`.
    pub user_id: String,
    /// `Attributes`: a list of one-pair objects (`[{"Group":"Sales"}]`).
    #[serde(default)]
    pub attributes: Vec<BTreeMap<String, String>>,
    /// `TargetId`; the minimal server keeps no target ids, so `TargetUri` is always null.
    #[serde(default)]
    pub target_id: Option<String>,
}

/// The `201` reply, keys in the gateway's (and Qlik's) order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TicketReply<'a> {
    user_directory: &'a str,
    user_id: &'a str,
    attributes: &'a [BTreeMap<String, String>],
    ticket: &'a str,
    target_uri: Option<&'a str>,
}

/// The body of a GetWebTicket call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebTicketRequest {
    /// `<UserId>`.
    pub user_id: String,
    /// The `<string>` items of `<GroupList>`.
    pub groups: Vec<String>,
}

/// Reads a ticket request; a user directory or id that is empty is refused.
pub fn parse_ticket_request(body: &[u8]) -> Result<TicketRequest, String> {
    let req: TicketRequest = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if req.user_directory.trim().is_empty() || req.user_id.trim().is_empty() {
        return Err("UserDirectory and UserId must not be empty".into());
    }
    Ok(req)
}

/// The `201` body for `req` and its ticket.
pub fn ticket_reply(req: &TicketRequest, ticket: &str) -> Vec<u8> {
    serde_json::to_vec(&TicketReply {
        user_directory: &req.user_directory,
        user_id: &req.user_id,
        attributes: &req.attributes,
        ticket,
        target_uri: None,
    })
    .expect("a reply of strings always serializes")
}

/// Reads a GetWebTicket call: `<Global method="GetWebTicket">` with a non-empty `<UserId>`.
pub fn parse_web_ticket_request(body: &[u8]) -> Result<WebTicketRequest, String> {
    #[derive(PartialEq)]
    enum In {
        Other,
        UserId,
        Group,
    }
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let (mut method_ok, mut inside) = (false, In::Other);
    let (mut user_id, mut groups) = (String::new(), Vec::new());
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                inside = In::Other;
                match e.name().as_ref() {
                    b"Global" => {
                        let method = e.try_get_attribute("method").map_err(|e| e.to_string())?;
                        method_ok = method.is_some_and(|a| a.value.as_ref() == b"GetWebTicket");
                    }
                    b"UserId" => inside = In::UserId,
                    b"string" => inside = In::Group,
                    _ => {}
                }
            }
            Event::Text(t) if inside != In::Other => {
                let text = t.unescape().map_err(|e| e.to_string())?;
                match inside {
                    In::UserId => user_id.push_str(&text),
                    _ => groups.push(text.into_owned()),
                }
            }
            Event::End(_) => inside = In::Other,
            Event::DocType(_) => return Err("DOCTYPE refused".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if !method_ok {
        return Err("not a GetWebTicket call".into());
    }
    if user_id.is_empty() {
        return Err("no UserId".into());
    }
    Ok(WebTicketRequest { user_id, groups })
}

/// The GetWebTicket reply.
pub fn web_ticket_reply(ticket: &str) -> String {
    format!("<Global><_retval_>{ticket}</_retval_></Global>")
}

/// A QPS ticket: 16 letters of `[A-Za-z]` from the thread's CSPRNG.
pub fn new_ticket(rng: &mut impl Rng) -> [u8; 16] {
    let mut id = [0u8; 16];
    for (b, letter) in id.iter_mut().zip(rng.sample_iter(rand::distr::Alphabetic)) {
        *b = letter;
    }
    id
}

/// A web ticket: 40 uppercase hex digits (20 bytes) from the thread's CSPRNG.
pub fn new_web_ticket(rng: &mut impl Rng) -> [u8; 40] {
    let bytes: [u8; 20] = rng.random();
    let mut hex = [0u8; 40];
    for (pair, b) in hex.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_UPPER[usize::from(b >> 4)];
        pair[1] = HEX_UPPER[usize::from(b & 15)];
    }
    hex
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// A random (version 4) GUID in its lowercase hyphenated form, from 16 random bytes.
pub fn guid(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX_LOWER[usize::from(b >> 4)]));
        out.push(char::from(HEX_LOWER[usize::from(b & 15)]));
    }
    out
}

/// The first value of query parameter `name` (exact name), percent-decoded.
pub fn query_value<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    form_urlencoded::parse(query.as_bytes()).find_map(|(k, v)| (k == name).then_some(v))
}

/// Whether the query's `xrfkey` is 16 characters and equals the `X-Qlik-Xrfkey` header.
pub fn xrfkey_ok(query: Option<&str>, header: Option<&HeaderValue>) -> bool {
    let Some(key) = query.and_then(|q| query_value(q, "xrfkey")) else {
        return false;
    };
    key.len() == 16 && header.is_some_and(|h| h.as_bytes() == key.as_bytes())
}

/// One shard: tickets by id, with the time each was issued.
type Shard<const N: usize, V> = Mutex<HashMap<[u8; N], (Instant, V)>>;

/// Tickets of one kind.
#[derive(Debug)]
struct Shards<const N: usize, V> {
    shards: Vec<Shard<N, V>>,
}

impl<const N: usize, V> Shards<N, V> {
    fn new() -> Self {
        Shards {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &[u8; N]) -> &Shard<N, V> {
        let spread = key
            .iter()
            .fold(0usize, |a, &b| a.wrapping_mul(31) ^ usize::from(b));
        &self.shards[spread % SHARDS]
    }

    fn insert(&self, key: [u8; N], value: V) {
        let mut shard = self
            .shard(&key)
            .lock()
            .expect("no panic while a shard is held");
        shard.insert(key, (Instant::now(), value));
    }

    /// Removes and returns a live ticket.
    fn take(&self, key: &[u8; N]) -> Option<V> {
        let mut shard = self
            .shard(key)
            .lock()
            .expect("no panic while a shard is held");
        let (issued, value) = shard.remove(key)?;
        (issued.elapsed() < TICKET_TTL).then_some(value)
    }

    /// Drops expired tickets, one shard at a time.
    fn sweep(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().expect("no panic while a shard is held");
            shard.retain(|_, (issued, _)| issued.elapsed() < TICKET_TTL);
        }
    }
}

/// What a redeemed QPS ticket names.
#[derive(Debug)]
struct QpsUser {
    directory: String,
    id: String,
}

/// Both ticket maps.
#[derive(Debug)]
pub struct State {
    tickets: Shards<16, QpsUser>,
    web_tickets: Shards<40, WebTicketRequest>,
}

impl State {
    /// Empty maps.
    pub fn new() -> Arc<State> {
        Arc::new(State {
            tickets: Shards::new(),
            web_tickets: Shards::new(),
        })
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

fn refuse(status: StatusCode, why: impl Into<Bytes>) -> Reply {
    reply(status, "text/plain; charset=utf-8", why)
}

fn with_cookie(mut res: Reply, name: &str) -> Reply {
    let cookie = format!("{name}={}; Path=/; HttpOnly", guid(rand::rng().random()));
    let value = HeaderValue::try_from(cookie).expect("a GUID cookie is a valid header value");
    res.headers_mut().insert(SET_COOKIE, value);
    res
}

/// The body, or `None` past [`MAX_BODY_BYTES`] (or on a broken connection).
async fn read_body(body: Incoming) -> Option<Bytes> {
    let collected = Limited::new(body, MAX_BODY_BYTES).collect().await.ok()?;
    Some(collected.to_bytes())
}

/// One request, on either listener.
pub async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Reply, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::POST, "/qps/ticket") => issue(&state, req).await,
        (&Method::GET, "/hub/") => redeem(&state, req.uri().query()),
        (&Method::POST, "/QvAJAXZfc/GetWebTicket.aspx") => web_ticket(&state, peer, req).await,
        (&Method::GET, "/QvAJAXZfc/Authenticate.aspx") => authenticate(&state, req.uri().query()),
        _ => refuse(StatusCode::NOT_FOUND, "not found"),
    })
}

async fn issue(state: &State, req: Request<Incoming>) -> Reply {
    if !xrfkey_ok(req.uri().query(), req.headers().get("x-qlik-xrfkey")) {
        return refuse(StatusCode::FORBIDDEN, "XSRF prevention check failed.");
    }
    let Some(body) = read_body(req.into_body()).await else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let request = match parse_ticket_request(&body) {
        Ok(r) => r,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let id = new_ticket(&mut rand::rng());
    let ticket = std::str::from_utf8(&id).expect("letters are UTF-8");
    let body = ticket_reply(&request, ticket);
    let user = QpsUser {
        directory: request.user_directory,
        id: request.user_id,
    };
    state.tickets.insert(id, user);
    reply(StatusCode::CREATED, "application/json", body)
}

fn redeem(state: &State, query: Option<&str>) -> Reply {
    let ticket = query.and_then(|q| query_value(q, "qlikTicket"));
    let key = ticket
        .as_deref()
        .and_then(|t| <[u8; 16]>::try_from(t.as_bytes()).ok());
    let Some(user) = key.and_then(|k| state.tickets.take(&k)) else {
        return refuse(StatusCode::FORBIDDEN, "unknown ticket");
    };
    let body = serde_json::json!({ "userDirectory": user.directory, "userId": user.id });
    let res = reply(StatusCode::OK, "application/json", body.to_string());
    with_cookie(res, "X-Qlik-Session-HTTP")
}

async fn web_ticket(state: &State, peer: SocketAddr, req: Request<Incoming>) -> Reply {
    const INVALID: &str = "<Global><_retval_>Invalid call</_retval_></Global>";
    if !peer.ip().is_loopback() {
        return reply(StatusCode::OK, "text/xml", INVALID);
    }
    let Some(body) = read_body(req.into_body()).await else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let Ok(request) = parse_web_ticket_request(&body) else {
        return reply(StatusCode::OK, "text/xml", INVALID);
    };
    let id = new_web_ticket(&mut rand::rng());
    let body = web_ticket_reply(std::str::from_utf8(&id).expect("hex is UTF-8"));
    state.web_tickets.insert(id, request);
    reply(StatusCode::OK, "text/xml", body)
}

fn authenticate(state: &State, query: Option<&str>) -> Reply {
    let query = query.unwrap_or("");
    let ticket = query_value(query, "webticket");
    let key = ticket
        .as_deref()
        .and_then(|t| <[u8; 40]>::try_from(t.as_bytes()).ok());
    if key.and_then(|k| state.web_tickets.take(&k)).is_none() {
        return refuse(StatusCode::UNAUTHORIZED, "unknown web ticket");
    }
    let to = query_value(query, "try").unwrap_or(Cow::Borrowed("/"));
    let Ok(location) = HeaderValue::try_from(to.as_ref()) else {
        return refuse(StatusCode::BAD_REQUEST, "bad try");
    };
    let mut res = reply(StatusCode::FOUND, "text/plain; charset=utf-8", Bytes::new());
    res.headers_mut().insert(LOCATION, location);
    with_cookie(res, "AccessPointSession")
}

/// Serves both listeners until the process ends; sweeps expired tickets meanwhile.
pub async fn serve(api: TcpListener, frontend: TcpListener) -> std::io::Result<()> {
    let state = State::new();
    let sweeper = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            every.tick().await;
            sweeper.tickets.sweep();
            sweeper.web_tickets.sweep();
        }
    });
    let api = tokio::spawn(accept(api, state.clone()));
    let frontend = tokio::spawn(accept(frontend, state));
    let (a, f) = tokio::join!(api, frontend);
    a.map_err(std::io::Error::other)??;
    f.map_err(std::io::Error::other)?
}

async fn accept(listener: TcpListener, state: Arc<State>) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(state.clone(), peer, req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{
        TICKET_BODY_AFTER_USER, TICKET_BODY_BEFORE_USER, WEBTICKET_BODY_AFTER_USER,
        WEBTICKET_BODY_BEFORE_USER,
    };

    #[test]
    fn reads_the_ticket_request_the_workloads_send() {
        let body = format!("{TICKET_BODY_BEFORE_USER}u1-0{TICKET_BODY_AFTER_USER}");
        let req = parse_ticket_request(body.as_bytes()).unwrap();
        assert_eq!(req.user_directory, "ACME");
        assert_eq!(req.user_id, "u1-0");
        assert_eq!(req.attributes.len(), 1);
        assert_eq!(req.attributes[0]["Group"], "Sales");
        assert_eq!(req.target_id, None);
        let reply = String::from_utf8(ticket_reply(&req, "abcdefghijklmnop")).unwrap();
        assert_eq!(
            reply,
            r#"{"UserDirectory":"ACME","UserId":"u1-0","Attributes":[{"Group":"Sales"}],"Ticket":"abcdefghijklmnop","TargetUri":null}"#
        );
    }

    #[test]
    fn refuses_bad_ticket_requests() {
        assert!(parse_ticket_request(b"{").is_err());
        assert!(parse_ticket_request(br#"{"UserDirectory":"ACME"}"#).is_err());
        assert!(parse_ticket_request(br#"{"UserDirectory":" ","UserId":"x"}"#).is_err());
        let with_target = br#"{"UserDirectory":"A","UserId":"b","TargetId":"t"}"#;
        let req = parse_ticket_request(with_target).unwrap();
        assert_eq!(req.target_id.as_deref(), Some("t"));
        assert!(req.attributes.is_empty());
    }

    #[test]
    fn reads_the_web_ticket_call_the_workloads_send() {
        let body = format!("{WEBTICKET_BODY_BEFORE_USER}u1-0{WEBTICKET_BODY_AFTER_USER}");
        let req = parse_web_ticket_request(body.as_bytes()).unwrap();
        assert_eq!(req.user_id, r"ACME\u1-0");
        assert_eq!(req.groups, ["Sales"]);
        let minimal = br#"<Global method="GetWebTicket"><UserId>a&amp;b</UserId></Global>"#;
        assert_eq!(parse_web_ticket_request(minimal).unwrap().user_id, "a&b");
    }

    #[test]
    fn refuses_bad_web_ticket_calls() {
        let wrong = br#"<Global method="Other"><UserId>x</UserId></Global>"#;
        assert!(parse_web_ticket_request(wrong).is_err());
        let empty = br#"<Global method="GetWebTicket"><UserId></UserId></Global>"#;
        assert!(parse_web_ticket_request(empty).is_err());
        let doctype = br#"<!DOCTYPE x [<!ENTITY e "x">]><Global method="GetWebTicket"><UserId>&e;</UserId></Global>"#;
        assert!(parse_web_ticket_request(doctype).is_err());
        assert!(parse_web_ticket_request(b"<Global method=").is_err());
    }

    #[test]
    fn ids_have_their_shapes() {
        let mut rng = rand::rng();
        let t = new_ticket(&mut rng);
        assert!(t.iter().all(u8::is_ascii_alphabetic));
        let w = new_web_ticket(&mut rng);
        assert!(w
            .iter()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)));
        assert_eq!(
            web_ticket_reply("AB"),
            "<Global><_retval_>AB</_retval_></Global>"
        );
        let g = guid([0xff; 16]);
        assert_eq!(g, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(guid([0; 16]), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn queries_and_xrfkeys() {
        let q = "type=html&try=/QlikView/&back=&webticket=AB%43";
        assert_eq!(query_value(q, "webticket").as_deref(), Some("ABC"));
        assert_eq!(query_value(q, "back").as_deref(), Some(""));
        assert_eq!(query_value(q, "missing"), None);
        let key = HeaderValue::from_static("abcdefghijklmnop");
        assert!(xrfkey_ok(Some("xrfkey=abcdefghijklmnop"), Some(&key)));
        assert!(!xrfkey_ok(Some("xrfkey=abcdefghijklmnoq"), Some(&key)));
        assert!(!xrfkey_ok(Some("xrfkey=abcdefghijklmnop"), None));
        assert!(!xrfkey_ok(None, Some(&key)));
        let short = HeaderValue::from_static("abc");
        assert!(!xrfkey_ok(Some("xrfkey=abc"), Some(&short)));
    }

    #[tokio::test]
    async fn serves_the_login_workloads() {
        use crate::workload::{Targets, Worker, Workload};
        let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let frontend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let t = Targets {
            api: Some(api.local_addr().unwrap()),
            frontend: Some(frontend.local_addr().unwrap()),
            ..Targets::default()
        };
        tokio::spawn(serve(api, frontend));
        for w in [
            Workload::QpsIssue,
            Workload::QpsIssueRedeem,
            Workload::QvGetwebticket,
            Workload::QvGetwebticketAuthenticate,
        ] {
            let mut worker = Worker::connect(w, &t).await.unwrap();
            for _ in 0..3 {
                worker.op().await.unwrap();
            }
        }
    }

    #[test]
    fn tickets_are_taken_once() {
        let shards: Shards<16, u32> = Shards::new();
        shards.insert(*b"abcdefghijklmnop", 7);
        assert_eq!(shards.take(b"abcdefghijklmnop"), Some(7));
        assert_eq!(shards.take(b"abcdefghijklmnop"), None);
        shards.insert(*b"abcdefghijklmnoq", 8);
        shards.sweep();
        assert_eq!(shards.take(b"abcdefghijklmnoq"), Some(8));
    }
}
