//! The audit trail: one event per ticket issued, refused, redeemed or expired and per
//! session started or ended, under the target `audit`; no ticket or session id ever
//! appears in the logs, only a short hash.
//!
//! Alone in its own test binary: tracing caches per call site whether anyone listens, so a
//! test that installs a subscriber must not share its process with tests that log.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use ticket_core::MemoryStore;
use ticket_gateway::{Conn, Gateway, Settings, Side};

async fn call(
    gateway: &Gateway,
    side: Side,
    req: http::Request<Full<Bytes>>,
) -> http::Response<Bytes> {
    use http_body_util::BodyExt;
    let conn = Conn::plain(side, "127.0.0.1:50000".parse().unwrap());
    let (parts, body) = gateway.handle(req, &conn).await.into_parts();
    http::Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn events(log: &Captured) -> Vec<serde_json::Value> {
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn send(
    gw: &Gateway,
    side: Side,
    method: &str,
    target: &str,
    cookie: Option<&str>,
    body: &str,
) -> http::Response<Bytes> {
    let mut req = Request::builder()
        .method(method)
        .uri(target)
        .header("X-Qlik-Xrfkey", "abcdefghijklmnop");
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    call(
        gw,
        side,
        req.body(Full::new(Bytes::from(body.to_owned()))).unwrap(),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn every_ticket_and_session_event_is_audited_without_secrets() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("audit=info,access=info,ticket_gateway=debug,ticket_core=debug")
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = Arc::new(MemoryStore::new());
    let settings = Settings::from_toml(
        "[[virtual_proxy]]\nprefix = \"ext\"\nsession_inactivity_timeout_minutes = 1\n",
    )
    .unwrap();
    let gw = Gateway::new(settings, store.clone()).expect("the test gateway starts");
    let issue = |gw: Gateway| async move {
        let res = send(
            &gw,
            Side::Api,
            "POST",
            "/qps/ext/ticket?xrfkey=abcdefghijklmnop",
            None,
            r#"{"UserDirectory":"ACME","UserId":"jdoe"}"#,
        )
        .await;
        let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        v["Ticket"].as_str().unwrap().to_owned()
    };
    let redeemed = issue(gw.clone()).await;
    let expiring = issue(gw.clone()).await;
    let res = send(
        &gw,
        Side::Frontend,
        "GET",
        &format!("/ext/hub/?qlikTicket={redeemed}"),
        None,
        "",
    )
    .await;
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session_id = cookie.split('=').nth(1).unwrap().to_owned();
    send(
        &gw,
        Side::Frontend,
        "GET",
        &format!("/ext/hub/?qlikTicket={redeemed}"),
        None,
        "",
    )
    .await;
    send(
        &gw,
        Side::Api,
        "POST",
        "/qps/ext/ticket?xrfkey=abcdefghijklmnop",
        None,
        r#"{"UserDirectory":"ACME","UserId":"a\\b"}"#,
    )
    .await;
    tokio::time::advance(Duration::from_secs(120)).await;
    store.purge_now();

    let all = events(&log);
    let audit: Vec<&serde_json::Value> = all.iter().filter(|e| e["target"] == "audit").collect();
    let kinds: Vec<&str> = audit
        .iter()
        .filter_map(|e| e["fields"]["event"].as_str())
        .collect();
    for kind in [
        "ticket_issued",
        "ticket_redeemed",
        "ticket_refused",
        "ticket_expired",
        "session_started",
        "session_ended",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let issued = audit
        .iter()
        .find(|e| e["fields"]["event"] == "ticket_issued")
        .unwrap();
    assert_eq!(issued["fields"]["user_id"], "jdoe");
    assert_eq!(issued["fields"]["vp"], "ext");
    assert_eq!(issued["fields"]["dialect"], "qps");
    assert!(issued["fields"]["peer"].is_string());
    assert_eq!(issued["fields"]["ticket"].as_str().unwrap().len(), 8);
    let reuse = audit
        .iter()
        .filter(|e| e["fields"]["event"] == "ticket_redeemed")
        .nth(1)
        .unwrap();
    assert_eq!(reuse["fields"]["outcome"], "refused");
    let ended = audit
        .iter()
        .find(|e| e["fields"]["event"] == "session_ended")
        .unwrap();
    assert_eq!(ended["fields"]["reason"], "inactivity timeout");

    let access: Vec<&serde_json::Value> = all.iter().filter(|e| e["target"] == "access").collect();
    assert_eq!(access.len(), 5, "one access event per request");
    assert_eq!(access[0]["fields"]["route"], "qps_ticket");
    assert_eq!(access[0]["fields"]["status"], 201);
    assert_eq!(access[0]["fields"]["method"], "POST");
    assert!(access[0]["fields"]["latency_us"].is_u64());

    let access: Vec<&serde_json::Value> = all.iter().filter(|e| e["target"] == "access").collect();
    assert_eq!(access.len(), 5, "one access event per request");
    assert_eq!(access[0]["fields"]["route"], "qps_ticket");
    assert_eq!(access[0]["fields"]["status"], 201);
    assert_eq!(access[0]["fields"]["method"], "POST");
    assert!(access[0]["fields"]["latency_us"].is_u64());

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    for secret in [&redeemed, &expiring, &session_id] {
        assert!(
            !text.contains(secret.as_str()),
            "{secret} appears in the logs"
        );
    }
}
