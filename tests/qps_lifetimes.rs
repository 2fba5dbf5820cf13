//! Lifetimes on tokio's paused clock: tickets (60 s by default, `[tickets] ttl_seconds`),
//! target ids, and the sliding session inactivity timeout. These tests call the gateway in
//! process, so no socket or connection timer races the clock.

use std::time::Duration;

use bytes::Bytes;
use gateway_tests::send;
use ticket_gateway::{Gateway, Side};

fn gateway(extra: &str) -> Gateway {
    gateway_tests::in_process(&format!(
        "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n\
         session_inactivity_timeout_minutes = 30\n{extra}"
    ))
}

async fn issue(gw: &Gateway, body: &str) -> serde_json::Value {
    let res = send(
        gw,
        Side::Api,
        "POST",
        "/qps/ext/ticket?xrfkey=abcdefghijklmnop",
        None,
        body,
    )
    .await;
    assert_eq!(res.status(), 201);
    serde_json::from_slice(res.body()).unwrap()
}

async fn ticket(gw: &Gateway) -> String {
    issue(gw, r#"{"UserDirectory":"ACME","UserId":"jdoe"}"#).await["Ticket"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn front(gw: &Gateway, target: &str, cookie: Option<&str>) -> http::Response<Bytes> {
    send(gw, Side::Frontend, "GET", target, cookie, "").await
}

#[tokio::test(start_paused = true)]
async fn a_ticket_lives_sixty_seconds_by_default() {
    let gw = gateway("");
    let early = ticket(&gw).await;
    let late = ticket(&gw).await;
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(
        front(&gw, &format!("/ext/hub/?qlikTicket={early}"), None)
            .await
            .status(),
        200
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        front(&gw, &format!("/ext/hub/?qlikTicket={late}"), None)
            .await
            .status(),
        302
    );
}

#[tokio::test(start_paused = true)]
async fn the_ticket_lifetime_is_configurable() {
    let gw = gateway("[tickets]\nttl_seconds = 5\n");
    let t = ticket(&gw).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        front(&gw, &format!("/ext/hub/?qlikTicket={t}"), None)
            .await
            .status(),
        302
    );
}

#[tokio::test(start_paused = true)]
async fn a_target_id_lives_at_least_ten_minutes() {
    let gw = gateway("");
    let res = front(&gw, "/ext/hub/", None).await;
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let target = location.rsplit_once("targetId=").unwrap().1.to_owned();
    tokio::time::advance(Duration::from_secs(10 * 60)).await;
    let json = issue(
        &gw,
        &format!(r#"{{"UserDirectory":"A","UserId":"b","TargetId":"{target}"}}"#),
    )
    .await;
    assert_eq!(json["TargetUri"], "http://localhost:8080/ext/hub/");
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    let json = issue(
        &gw,
        &format!(r#"{{"UserDirectory":"A","UserId":"b","TargetId":"{target}"}}"#),
    )
    .await;
    assert!(json["TargetUri"].is_null());
}

#[tokio::test(start_paused = true)]
async fn a_session_slides_with_use_and_ends_after_the_inactivity_timeout() {
    let gw = gateway("");
    let t = ticket(&gw).await;
    let res = front(&gw, &format!("/ext/hub/?qlikTicket={t}"), None).await;
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for _ in 0..4 {
        tokio::time::advance(Duration::from_secs(29 * 60)).await;
        assert_eq!(front(&gw, "/ext/hub/", Some(&cookie)).await.status(), 200);
    }
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    assert_eq!(front(&gw, "/ext/hub/", Some(&cookie)).await.status(), 302);
}
