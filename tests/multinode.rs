//! Several gateway nodes on one Redis: any node redeems any ticket and serves any session,
//! a logout on one ends the session on all, tickets stay single use across nodes, a
//! restarted node finds everything where it was, a Redis outage is answered with a quick
//! `503` in each dialect's format until Redis is back, and once it is back no request
//! fails, the first one on an idle node included. A session ended on one node is heard on
//! every node, so that each closes its WebSockets.
//!
//! Each test runs its own `redis-server` ([`RedisServer`]) and skips without one (fails
//! under `CI=true`). These are real sockets and a real server, so time is real time.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway_tests::redis_server::RedisServer;
use gateway_tests::{cookie, get, post_ticket, raw, redis_store, ticket, RawResponse, TestGateway};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ticket_core::{Core, EndReason, Identity, Lifetimes, SessionEnded, SessionLimit};
use ticket_gateway::config::defaults;
use tokio::sync::broadcast;

/// The `[store] timeout_ms` default, as the nodes of a deployment use it.
const STORE_TIMEOUT: Duration = defaults::STORE_TIMEOUT;

/// Every answer must come within this, Redis up or down.
const ANSWER_BOUND: Duration = Duration::from_secs(5);

/// The same key prefix on every node of a deployment.
const PREFIX: &str = "multinode:";

/// One user holds many sessions in these tests; lift Qlik's limit of five.
const LIMITLESS: &str = "[[virtual_proxy]]\nprefix = \"\"\nmax_sessions_per_user = 100000\n";

const XRF: &str = "xrfkey=abcdefghijklmnop";

async fn redis() -> Option<RedisServer> {
    tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("starting redis-server panicked")
}

/// A gateway node with its own connection to `server`, under the deployment's prefix.
async fn node(server: &RedisServer, extra: &str) -> TestGateway {
    TestGateway::start_with_store(extra, redis_store(server, PREFIX, STORE_TIMEOUT).await).await
}

/// `GET /hub/` as JSON with `cookie`.
async fn hub(addr: std::net::SocketAddr, cookie: &str) -> RawResponse {
    get(
        addr,
        "/hub/",
        &format!("Cookie: {cookie}\r\nAccept: application/json\r\n"),
    )
    .await
}

/// Redeems a QPS ticket at `/hub/` and returns the reply.
async fn redeem(addr: std::net::SocketAddr, ticket: &str) -> RawResponse {
    get(
        addr,
        &format!("/hub/?qlikTicket={ticket}"),
        "Accept: application/json\r\n",
    )
    .await
}

/// A call of the session or user API (default virtual proxy) with a matching Xrfkey.
async fn session_api(
    api: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> RawResponse {
    let framing = body.map_or("\r\n".to_owned(), |b| {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )
    });
    let req = format!(
        "{method} {path}?{XRF} HTTP/1.1\r\nHost: x\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\nConnection: close\r\n{framing}"
    );
    raw(api, req.as_bytes()).await
}

fn get_web_ticket_request(user: &str) -> Vec<u8> {
    let body = format!(
        "<Global method=\"GetWebTicket\"><UserId>{user}</UserId><GroupList><string>Sales</string></GroupList><GroupsIsNames>true</GroupsIsNames></Global>"
    );
    format!(
        "POST /QvAJAXZfc/GetWebTicket.aspx HTTP/1.1\r\nHost: qv\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The web ticket in a GetWebTicket reply, if it holds one.
fn web_ticket_of(res: &RawResponse) -> Option<String> {
    let text = res.text();
    let t = text
        .strip_prefix("<Global><_retval_>")?
        .strip_suffix("</_retval_></Global>")?;
    (t.len() == 40).then(|| t.to_owned())
}

async fn web_ticket(frontend: std::net::SocketAddr) -> String {
    let res = raw(frontend, &get_web_ticket_request("ACME\\jdoe")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    web_ticket_of(&res).unwrap_or_else(|| panic!("not a web ticket: {}", res.text()))
}

async fn authenticate(frontend: std::net::SocketAddr, web_ticket: &str) -> RawResponse {
    get(
        frontend,
        &format!("/QvAJAXZfc/Authenticate.aspx?try=/QlikView/&webticket={web_ticket}"),
        "",
    )
    .await
}

async fn opendoc(frontend: std::net::SocketAddr, cookie: &str) -> RawResponse {
    get(
        frontend,
        "/QvAJAXZfc/opendoc.htm?document=Sales.qvw",
        &format!("Cookie: {cookie}\r\nAccept: application/json\r\n"),
    )
    .await
}

#[tokio::test]
async fn a_qps_ticket_issued_on_one_node_redeems_on_another() {
    let Some(server) = redis().await else { return };
    let (a, b) = (node(&server, "").await, node(&server, "").await);

    let t = ticket(a.api, "").await;
    let res = redeem(b.frontend, &t).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["userId"], "jdoe");
    let session = cookie(&res);
    assert!(session.starts_with("X-Qlik-Session-HTTP="), "{session}");

    let page = hub(a.frontend, &session).await;
    assert_eq!(page.status, 200, "B's session cookie on A");
    assert_eq!(page.json()["userDirectory"], "ACME");
    assert_eq!(page.json()["userId"], "jdoe");

    // Spent on B, so spent on A.
    let again = redeem(a.frontend, &t).await;
    assert_eq!(again.status, 302);
    assert!(again.header("set-cookie").is_none());
}

#[tokio::test]
async fn a_qlikview_web_ticket_from_one_node_redeems_at_another() {
    let Some(server) = redis().await else { return };
    let (a, b) = (node(&server, "").await, node(&server, "").await);

    let t = web_ticket(a.frontend).await;
    let res = authenticate(b.frontend, &t).await;
    assert_eq!(res.status, 302, "{}", res.text());
    assert_eq!(res.header("location"), Some("/QlikView/"));
    let session = cookie(&res);
    assert!(session.starts_with("AccessPointSession="), "{session}");

    let page = opendoc(a.frontend, &session).await;
    assert_eq!(page.status, 200, "B's QlikView session on A");
    assert_eq!(page.json()["userId"], "ACME\\jdoe");
    assert_eq!(page.json()["groups"], serde_json::json!(["Sales"]));

    let again = authenticate(a.frontend, &t).await;
    assert_eq!(again.status, 401, "spent on B, so spent on A");
    assert!(again.header("set-cookie").is_none());

    // AccessPoint logout on A ends the session on B.
    let body = "<update mark=\"\" stamp=\"\" cookie=\"true\" scope=\"Document\" ident=\"AccessPoint\" kind=\"AccessPoint\"><set name=\"AccessPoint.Logout\" action=\"\" clientsizeWH=\"\" /></update>";
    let res = raw(
        a.frontend,
        format!(
            "POST /QvAJAXZfc/AccessPoint.aspx?mark=&platform=browser.chrome HTTP/1.1\r\nHost: qv\r\nCookie: {session}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(opendoc(b.frontend, &session).await.status, 302);
}

#[tokio::test]
async fn a_session_made_on_one_node_lives_and_ends_on_every_node() {
    let Some(server) = redis().await else { return };
    let (a, b) = (node(&server, "").await, node(&server, "").await);

    for id in ["portal-1", "portal-2"] {
        let res = session_api(
            a.api,
            "POST",
            "/qps/session",
            Some(&format!(
                r#"{{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{{"Group":"Sales"}}],"SessionId":"{id}"}}"#
            )),
        )
        .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }

    // Live on B: by cookie and through B's session API.
    let page = hub(b.frontend, "X-Qlik-Session=portal-1").await;
    assert_eq!(page.status, 200, "A's session on B");
    assert_eq!(page.json()["userId"], "jdoe");
    let res = session_api(b.api, "GET", "/qps/session/portal-1", None).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.text(),
        r#"{"UserDirectory":"ACME","UserId":"jdoe","Attributes":[{"Group":"Sales"}],"SessionId":"portal-1"}"#
    );

    // The browser logs out on B (personal API): gone on A.
    let res = raw(
        b.frontend,
        b"DELETE /qps/user HTTP/1.1\r\nHost: x\r\nCookie: X-Qlik-Session=portal-1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(hub(a.frontend, "X-Qlik-Session=portal-1").await.status, 302);
    assert_eq!(
        session_api(a.api, "GET", "/qps/session/portal-1", None)
            .await
            .status,
        404
    );

    // The portal ends the other one through B's session API: gone on A.
    assert_eq!(hub(a.frontend, "X-Qlik-Session=portal-2").await.status, 200);
    let res = session_api(b.api, "DELETE", "/qps/session/portal-2", None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(hub(a.frontend, "X-Qlik-Session=portal-2").await.status, 302);

    // Sessions of one user on both nodes, ended by a user logout on A.
    let on_a = cookie(&redeem(a.frontend, &ticket(a.api, "").await).await);
    let on_b = cookie(&redeem(b.frontend, &ticket(b.api, "").await).await);
    assert_eq!(hub(b.frontend, &on_a).await.status, 200);
    assert_eq!(hub(a.frontend, &on_b).await.status, 200);
    let res = session_api(a.api, "DELETE", "/qps/user/ACME/jdoe", None).await;
    assert_eq!(res.status, 200, "{}", res.text());
    for (addr, c) in [
        (a.frontend, &on_a),
        (b.frontend, &on_b),
        (b.frontend, &on_a),
    ] {
        assert_eq!(hub(addr, c).await.status, 302, "{c} at {addr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_times_sixteen_racers_redeem_each_ticket_exactly_once() {
    const TICKETS: usize = 1_000;
    const RACERS_PER_NODE: usize = 16;
    let Some(server) = redis().await else { return };
    let nodes = [
        node(&server, LIMITLESS).await,
        node(&server, LIMITLESS).await,
    ];
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let client = Arc::new(client);

    let started = Instant::now();
    let mut tickets = Vec::with_capacity(TICKETS);
    for i in 0..TICKETS {
        tickets.push(ticket(nodes[i % 2].api, "").await);
    }
    let mut bad = Vec::new();
    let mut wins = [0usize; 2];
    for (i, t) in tickets.iter().enumerate() {
        let mut racers = Vec::with_capacity(2 * RACERS_PER_NODE);
        for r in 0..2 * RACERS_PER_NODE {
            let n = r % 2;
            let client = client.clone();
            let uri: hyper::Uri = format!("http://{}/hub/?qlikTicket={t}", nodes[n].frontend)
                .parse()
                .unwrap();
            racers.push(tokio::spawn(async move {
                let res = client.get(uri).await.expect("request");
                let status = res.status().as_u16();
                let cookie = res
                    .headers()
                    .get(http::header::SET_COOKIE)
                    .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
                let _ = res.into_body().collect().await;
                (n, status, cookie)
            }));
        }
        let mut winners = Vec::new();
        for r in racers {
            let (n, status, cookie) = r.await.unwrap();
            match (status, cookie) {
                (200, Some(c)) => winners.push((n, c)),
                (302, None) => {}
                other => panic!("ticket {i}: unexpected reply {other:?}"),
            }
        }
        if winners.len() != 1 {
            bad.push((i, winners.len()));
            continue;
        }
        let (n, c) = winners.pop().unwrap();
        wins[n] += 1;
        // Now and then, the winner's session on the other node.
        if i % 100 == 0 {
            assert_eq!(hub(nodes[1 - n].frontend, &c).await.status, 200);
        }
    }
    assert!(
        bad.is_empty(),
        "tickets with other than one winner (index, winners): {:?}",
        &bad[..bad.len().min(10)]
    );
    println!(
        "{TICKETS} tickets x {} racers on 2 nodes in {:?}; won on A: {}, on B: {}",
        2 * RACERS_PER_NODE,
        started.elapsed(),
        wins[0],
        wins[1]
    );
}

#[tokio::test]
async fn tickets_and_sessions_outlive_a_node_restart() {
    let Some(server) = redis().await else { return };
    let a = node(&server, "").await;
    let b = node(&server, "").await;

    let unredeemed = ticket(a.api, "").await;
    let qps_session = cookie(&redeem(a.frontend, &ticket(a.api, "").await).await);
    let unredeemed_web = web_ticket(a.frontend).await;
    let qv_session = cookie(&authenticate(a.frontend, &web_ticket(a.frontend).await).await);
    let res = session_api(
        a.api,
        "POST",
        "/qps/session",
        Some(r#"{"UserDirectory":"ACME","UserId":"jdoe","SessionId":"portal-made"}"#),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());

    let old_frontend = a.frontend;
    a.stop().await;
    assert!(
        tokio::net::TcpStream::connect(old_frontend).await.is_err(),
        "the stopped node still accepts"
    );
    let a = node(&server, "").await;

    let res = redeem(a.frontend, &unredeemed).await;
    assert_eq!(res.status, 200, "a ticket issued before the restart");
    assert!(res.header("set-cookie").is_some());
    for c in [&qps_session, &"X-Qlik-Session=portal-made".to_owned()] {
        let page = hub(a.frontend, c).await;
        assert_eq!(page.status, 200, "{c} after the restart");
        assert_eq!(page.json()["userId"], "jdoe");
    }
    let res = authenticate(a.frontend, &unredeemed_web).await;
    assert_eq!(res.status, 302, "a web ticket issued before the restart");
    assert!(cookie(&res).starts_with("AccessPointSession="));
    assert_eq!(opendoc(a.frontend, &qv_session).await.status, 200);
    assert_eq!(
        session_api(a.api, "GET", "/qps/session/portal-made", None)
            .await
            .status,
        200
    );
    // And the node that kept running agrees.
    assert_eq!(hub(b.frontend, &qps_session).await.status, 200);
}

/// The reported defect, end to end: Redis restarts while two nodes sit idle, and the
/// first request each node gets afterwards succeeds: node A's readiness probe and a login
/// (a ticket issued on B, redeemed on A, its session used on B).
#[tokio::test]
async fn after_a_redis_restart_the_first_request_on_each_idle_node_succeeds() {
    let Some(server) = redis().await else { return };
    let (a, b) = (node(&server, "").await, node(&server, "").await);
    assert!(round_trip_works(&a).await);
    assert!(round_trip_works(&b).await);

    let _server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.restart();
        server
    })
    .await
    .expect("restarting redis-server panicked");

    let ready = get(a.api, "/readyz", "").await;
    assert_eq!(ready.status, 200, "/readyz: {}", ready.text());
    let t = ticket(b.api, "").await;
    let res = redeem(a.frontend, &t).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(hub(b.frontend, &cookie(&res)).await.status, 200);
}

// ---- Session-end events between nodes -------------------------------------------------

/// A node's core over its own connection to `server`, under `prefix`.
async fn core_node(server: &RedisServer, prefix: &str) -> Core {
    Core::new(
        redis_store(server, prefix, STORE_TIMEOUT).await,
        Lifetimes::default(),
    )
}

/// The next event `rx` hears, within one second.
async fn heard(rx: &mut broadcast::Receiver<SessionEnded>) -> SessionEnded {
    tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .expect("no event within a second")
        .expect("the event channel")
}

fn identity(user: &str) -> Identity {
    Identity::Qps {
        user_directory: "ACME".into(),
        user_id: user.into(),
        attributes: Vec::new(),
    }
}

/// A logout on one node closes the session's WebSockets on every node within a second:
/// every session a core ends (by id, by user, by eviction) is heard, with its reason, by
/// the receivers of every node of the deployment, and by no node of another one.
#[tokio::test]
async fn a_session_ended_on_one_node_is_heard_on_every_node_within_a_second() {
    let Some(server) = redis().await else { return };
    let (a, b) = (
        core_node(&server, PREFIX).await,
        core_node(&server, PREFIX).await,
    );
    let elsewhere = core_node(&server, "another-deployment:").await;
    let (mut on_a, mut on_b) = (a.session_events(), b.session_events());
    let mut on_elsewhere = elsewhere.session_events();
    let realm = "qps/";
    let idle = Duration::from_secs(600);
    let mut started = Vec::new();
    for _ in 0..3 {
        started.push(
            a.start_session(realm, identity("jdoe"), idle, None)
                .await
                .unwrap()
                .0,
        );
    }
    let event = |id: &str, reason| SessionEnded {
        realm: realm.into(),
        id: id.into(),
        reason,
    };

    // A logout on A.
    let sent = Instant::now();
    a.end_session(realm, &started[0].id, EndReason::LoggedOut)
        .await
        .unwrap()
        .expect("live");
    let expected = event(&started[0].id, EndReason::LoggedOut);
    assert_eq!(heard(&mut on_b).await, expected);
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert_eq!(
        heard(&mut on_a).await,
        expected,
        "the node that ended it hears it too"
    );

    // The user API on B ends the rest.
    let ended = b
        .end_user_sessions(realm, &identity("jdoe").user_key(), EndReason::LoggedOut)
        .await
        .unwrap();
    assert_eq!(ended.len(), 2);
    for s in &started[1..] {
        assert_eq!(heard(&mut on_a).await, event(&s.id, EndReason::LoggedOut));
        assert_eq!(heard(&mut on_b).await, event(&s.id, EndReason::LoggedOut));
    }

    // A login on B that evicts the user's older session.
    let one = Some(SessionLimit {
        max: 1,
        evict_oldest: true,
    });
    let (old, _) = b
        .start_session(realm, identity("mdoe"), idle, one)
        .await
        .unwrap();
    let (_, evicted) = b
        .start_session(realm, identity("mdoe"), idle, one)
        .await
        .unwrap();
    assert_eq!(evicted, std::slice::from_ref(&old));
    assert_eq!(heard(&mut on_a).await, event(&old.id, EndReason::Evicted));

    // Another deployment sharing the server hears none of it.
    assert!(on_elsewhere.try_recv().is_err());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), on_elsewhere.recv())
            .await
            .is_err()
    );
}

/// After Redis restarts, every node subscribes again by itself, and events flow again.
#[tokio::test]
async fn session_events_are_heard_again_after_redis_restarts() {
    let Some(server) = redis().await else { return };
    let (a, b) = (
        core_node(&server, PREFIX).await,
        core_node(&server, PREFIX).await,
    );
    let mut on_b = b.session_events();
    let server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.restart();
        server
    })
    .await
    .expect("restarting redis-server panicked");

    let restarted = Instant::now();
    loop {
        let list = server.command(&["CLIENT", "LIST"]).await.unwrap();
        let subscribed = list
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" sub=1 "))
            .count();
        if subscribed == 2 {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(3),
            "{subscribed} of 2 nodes subscribed again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, _) = a
        .start_session("qps/", identity("jdoe"), Duration::from_secs(600), None)
        .await
        .unwrap();
    a.end_session("qps/", &s.id, EndReason::LoggedOut)
        .await
        .unwrap()
        .expect("live");
    assert_eq!(
        heard(&mut on_b).await,
        SessionEnded {
            realm: "qps/".into(),
            id: s.id,
            reason: EndReason::LoggedOut,
        }
    );
}

// ---- Redis down under load ---------------------------------------------------------------

/// Redis is up (before the outage).
const UP: u8 = 0;
/// `RedisServer::stop` is running.
const STOPPING: u8 = 1;
/// `RedisServer::stop` has returned: Redis is gone.
const DOWN: u8 = 2;
/// `RedisServer::restart` is running.
const RESTARTING: u8 = 3;
/// `RedisServer::restart` has returned.
const BACK: u8 = 4;

/// What one loader saw.
#[derive(Debug, Default)]
struct Seen {
    /// Requests sent and answered while Redis was down (all `503`), per [`Kind`].
    down: [usize; 5],
    /// The slowest of those answers.
    slowest_down: Duration,
    /// Their latencies, for a median.
    down_latencies: Vec<Duration>,
    /// What broke the rules (at most a few kept).
    violations: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `POST /qps/ticket` on the API: `201`, or `503` text/plain.
    Issue,
    /// `?qlikTicket=` on the front end: `200` (fresh) or `302` (unknown), or `503` HTML.
    Redeem,
    /// A session cookie on the front end: `200` (or `302` once Redis lost it), or `503` HTML.
    Cookie,
    /// `GetWebTicket.aspx`: `200`, or `503` XML.
    GetWebTicket,
    /// `Authenticate.aspx`: `302` to `try` or `401`, or `503`.
    Authenticate,
}

impl Kind {
    fn success(self, status: u16) -> bool {
        match self {
            Kind::Issue => status == 201,
            Kind::Redeem | Kind::Cookie => status == 200 || status == 302,
            Kind::GetWebTicket => status == 200,
            Kind::Authenticate => status == 302 || status == 401,
        }
    }

    /// Whether a `503` is in this dialect's format.
    fn unavailable_format(self, res: &RawResponse) -> bool {
        let ct = res.header("content-type").unwrap_or("");
        match self {
            Kind::Issue => ct.starts_with("text/plain"),
            Kind::Redeem | Kind::Cookie => {
                ct.starts_with("text/html") && res.text().starts_with("<!DOCTYPE html>")
            }
            Kind::GetWebTicket => ct.contains("xml") && res.text().starts_with("<Global>"),
            Kind::Authenticate => true,
        }
    }
}

struct Shared {
    phase: AtomicU8,
    stop: AtomicBool,
    down_requests: AtomicUsize,
    /// Successful answers after Redis came back.
    ok_after: AtomicUsize,
}

/// One request as a loader saw it: the phase when it was sent and when it was answered.
struct Sent {
    phases: (u8, u8),
    elapsed: Duration,
    res: Option<RawResponse>,
}

/// Sends `req` to `addr` and waits at most [`ANSWER_BOUND`] for the answer.
async fn send(shared: &Shared, addr: std::net::SocketAddr, req: &[u8]) -> Sent {
    let before = shared.phase.load(Ordering::SeqCst);
    let started = Instant::now();
    let res = tokio::time::timeout(ANSWER_BOUND, raw(addr, req))
        .await
        .ok();
    let elapsed = started.elapsed();
    Sent {
        phases: (before, shared.phase.load(Ordering::SeqCst)),
        elapsed,
        res,
    }
}

impl Seen {
    /// Checks one answer: always within [`ANSWER_BOUND`], never a `500`, a `503` only in
    /// the dialect's format; a success for a request sent and answered while Redis was
    /// up, and a `503` for one sent and answered while it was down. Requests that
    /// straddle a stop or a restart may get either.
    fn record(&mut self, kind: Kind, sent: &Sent, shared: &Shared) {
        let phases = sent.phases;
        let mut violation = |why: String| {
            if self.violations.len() < 5 {
                self.violations.push(why);
            }
        };
        let Some(res) = &sent.res else {
            violation(format!(
                "{kind:?} (phases {phases:?}): no answer within {ANSWER_BOUND:?}"
            ));
            return;
        };
        let status = res.status;
        if status == 503 {
            if !kind.unavailable_format(res) {
                violation(format!(
                    "{kind:?}: 503 in the wrong format: {:?} {}",
                    res.header("content-type"),
                    res.text()
                ));
            }
            if phases == (UP, UP) {
                violation(format!("{kind:?}: 503 while Redis was up"));
            }
        } else if !kind.success(status) {
            violation(format!(
                "{kind:?} (phases {phases:?}): {status} {}",
                res.text()
            ));
        } else if phases == (DOWN, DOWN) {
            violation(format!("{kind:?}: {status} while Redis was down"));
        } else if phases == (BACK, BACK) {
            shared.ok_after.fetch_add(1, Ordering::Relaxed);
        }
        if phases == (DOWN, DOWN) {
            self.down[kind as usize] += 1;
            self.slowest_down = self.slowest_down.max(sent.elapsed);
            self.down_latencies.push(sent.elapsed);
            shared.down_requests.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Issues tickets on the API and redeems them on the front end (an unknown ticket when
/// none could be issued), until told to stop.
async fn qps_loader(gw: (std::net::SocketAddr, std::net::SocketAddr), shared: Arc<Shared>) -> Seen {
    let (frontend, api) = gw;
    let mut seen = Seen::default();
    let body = r#"{"UserDirectory":"ACME","UserId":"jdoe"}"#;
    let issue = format!(
        "POST /qps/ticket?{XRF} HTTP/1.1\r\nHost: x\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    while !shared.stop.load(Ordering::Relaxed) {
        let sent = send(&shared, api, issue.as_bytes()).await;
        seen.record(Kind::Issue, &sent, &shared);
        let t = sent
            .res
            .filter(|r| r.status == 201)
            .map(|r| r.json()["Ticket"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| "ZZZZZZZZZZZZZZZZ".to_owned());
        let req = format!(
            "GET /hub/?qlikTicket={t} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        let sent = send(&shared, frontend, req.as_bytes()).await;
        seen.record(Kind::Redeem, &sent, &shared);
    }
    seen
}

/// Uses one session cookie on the front end, until told to stop.
async fn cookie_loader(
    frontend: std::net::SocketAddr,
    cookie: String,
    shared: Arc<Shared>,
) -> Seen {
    let mut seen = Seen::default();
    let req = format!(
        "GET /hub/ HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    while !shared.stop.load(Ordering::Relaxed) {
        let sent = send(&shared, frontend, req.as_bytes()).await;
        seen.record(Kind::Cookie, &sent, &shared);
    }
    seen
}

/// Asks for web tickets and redeems them at Authenticate.aspx, until told to stop.
async fn qlikview_loader(frontend: std::net::SocketAddr, shared: Arc<Shared>) -> Seen {
    let mut seen = Seen::default();
    let ask = get_web_ticket_request("ACME\\jdoe");
    while !shared.stop.load(Ordering::Relaxed) {
        let sent = send(&shared, frontend, &ask).await;
        seen.record(Kind::GetWebTicket, &sent, &shared);
        let t = sent
            .res
            .as_ref()
            .and_then(web_ticket_of)
            .unwrap_or_else(|| "0".repeat(40));
        let req = format!(
            "GET /QvAJAXZfc/Authenticate.aspx?try=/QlikView/&webticket={t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let sent = send(&shared, frontend, req.as_bytes()).await;
        seen.record(Kind::Authenticate, &sent, &shared);
    }
    seen
}

/// Resident bytes of this process (`VmRSS`), where `/proc` has it.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Polls `counter` until it reaches `n`, within `within`.
async fn wait_for_count(counter: &AtomicUsize, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while counter.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "the count reached only {} of {n} in {within:?}",
            counter.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One whole round on a node: a ticket issued, redeemed, its session used; a web ticket.
async fn round_trip_works(gw: &TestGateway) -> bool {
    let once = async {
        let res = post_ticket(gw.api, "", r#"{"UserDirectory":"ACME","UserId":"jdoe"}"#).await;
        if res.status != 201 {
            return false;
        }
        let t = res.json()["Ticket"].as_str().unwrap().to_owned();
        let res = redeem(gw.frontend, &t).await;
        if res.status != 200 {
            return false;
        }
        if hub(gw.frontend, &cookie(&res)).await.status != 200 {
            return false;
        }
        let res = raw(gw.frontend, &get_web_ticket_request("ACME\\jdoe")).await;
        res.status == 200 && get(gw.api, "/readyz", "").await.status == 200
    };
    tokio::time::timeout(ANSWER_BOUND, once)
        .await
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_under_load_gets_quick_503s_in_each_dialect_and_recovers() {
    /// Failed requests to send while Redis is down, after a warm-up of a few hundred.
    const WARM_UP: usize = 300;
    const FAILED: usize = 3_000;
    /// What a few thousand failed requests may add to the resident set, at most.
    const RSS_BOUND: u64 = 64 * 1024 * 1024;
    /// How soon service must be back once Redis is.
    const RECOVERY_BOUND: Duration = Duration::from_secs(10);

    let Some(server) = redis().await else { return };
    let gw = node(&server, LIMITLESS).await;
    let session = cookie(&redeem(gw.frontend, &ticket(gw.api, "").await).await);

    let shared = Arc::new(Shared {
        phase: AtomicU8::new(UP),
        stop: AtomicBool::new(false),
        down_requests: AtomicUsize::new(0),
        ok_after: AtomicUsize::new(0),
    });
    let mut loaders = Vec::new();
    for _ in 0..2 {
        loaders.push(tokio::spawn(qps_loader(
            (gw.frontend, gw.api),
            shared.clone(),
        )));
        loaders.push(tokio::spawn(cookie_loader(
            gw.frontend,
            session.clone(),
            shared.clone(),
        )));
        loaders.push(tokio::spawn(qlikview_loader(gw.frontend, shared.clone())));
    }
    // Traffic flows before the outage.
    assert!(round_trip_works(&gw).await);

    shared.phase.store(STOPPING, Ordering::SeqCst);
    let mut server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop();
        server
    })
    .await
    .unwrap();
    let stopped = Instant::now();
    shared.phase.store(DOWN, Ordering::SeqCst);

    // Health while down: alive, not ready.
    let started = Instant::now();
    let ready = tokio::time::timeout(ANSWER_BOUND, get(gw.api, "/readyz", ""))
        .await
        .expect("/readyz answers while Redis is down");
    let readyz_took = started.elapsed();
    assert_eq!(ready.status, 503, "{}", ready.text());
    let alive = tokio::time::timeout(ANSWER_BOUND, get(gw.api, "/healthz", ""))
        .await
        .expect("/healthz answers while Redis is down");
    assert_eq!(alive.status, 200);

    wait_for_count(&shared.down_requests, WARM_UP, Duration::from_secs(60)).await;
    let rss_before = resident_bytes();
    wait_for_count(
        &shared.down_requests,
        WARM_UP + FAILED,
        Duration::from_secs(120),
    )
    .await;
    let rss_after = resident_bytes();
    let down_for = stopped.elapsed();

    shared.phase.store(RESTARTING, Ordering::SeqCst);
    let _server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    let restarted = Instant::now();
    shared.phase.store(BACK, Ordering::SeqCst);
    let deadline = restarted + RECOVERY_BOUND;
    let mut recovered = None;
    while Instant::now() < deadline {
        if round_trip_works(&gw).await {
            recovered = Some(restarted.elapsed());
            break;
        }
        tokio::task::yield_now().await;
    }
    let recovered = recovered
        .unwrap_or_else(|| panic!("no service within {RECOVERY_BOUND:?} of Redis coming back"));
    // The loaders get through again too, without a restart of the gateway.
    let ok_before = shared.ok_after.load(Ordering::Relaxed);
    wait_for_count(&shared.ok_after, ok_before + 100, RECOVERY_BOUND).await;
    shared.stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for l in loaders {
        all.push(l.await.expect("a loader panicked"));
    }

    let violations: Vec<&String> = all.iter().flat_map(|s| &s.violations).collect();
    assert!(violations.is_empty(), "{violations:#?}");
    let mut latencies: Vec<Duration> = all
        .iter()
        .flat_map(|s| s.down_latencies.iter().copied())
        .collect();
    latencies.sort();
    let mut per_kind = [0usize; 5];
    for s in &all {
        for (k, n) in s.down.iter().enumerate() {
            per_kind[k] += n;
        }
    }
    let down: usize = per_kind.iter().sum();
    assert!(
        per_kind.iter().all(|&n| n > 0),
        "a kind of request never sent while Redis was down: {per_kind:?}"
    );
    let slowest = all.iter().map(|s| s.slowest_down).max().unwrap_or_default();
    let median = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or_default();
    let ok_after = shared.ok_after.load(Ordering::Relaxed);
    assert!(slowest < ANSWER_BOUND);
    let growth = match (rss_before, rss_after) {
        (Some(b), Some(a)) => {
            let growth = a.saturating_sub(b);
            assert!(
                growth <= RSS_BOUND,
                "resident set grew by {} KiB over {FAILED} failed requests",
                growth / 1024
            );
            Some((b / 1024, a / 1024, growth / 1024))
        }
        _ => None,
    };
    println!(
        "redis down {down_for:?}: {down} requests (issue, redeem, cookie, GetWebTicket, Authenticate: {per_kind:?}), all 503; median {median:?}, slowest {slowest:?}; \
         /readyz 503 in {readyz_took:?}; RSS before/after/growth KiB {growth:?}; \
         recovered {recovered:?} after the restart; {ok_after} loader successes after it"
    );
}
