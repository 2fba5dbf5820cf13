//! What operators see: `/metrics` in Prometheus text format, `/healthz` and `/readyz`.

use gateway_tests::{get, raw, ticket, TestGateway};

fn value_of(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_tickets_sessions_refusals_and_latency() {
    // The recorder is process-wide: this test's virtual proxy has a name of its own.
    let gw = TestGateway::start("[[virtual_proxy]]\nprefix = \"metrics\"\n").await;
    let t = ticket(gw.api, "metrics").await;
    assert_eq!(
        get(gw.frontend, &format!("/metrics/hub/?qlikTicket={t}"), "")
            .await
            .status,
        200
    );
    assert_eq!(
        get(gw.frontend, &format!("/metrics/hub/?qlikTicket={t}"), "")
            .await
            .status,
        302
    );
    let refused = raw(gw.api, b"POST /qps/metrics/ticket HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}").await;
    assert_eq!(refused.status, 403);

    let res = get(gw.api, "/metrics", "").await;
    assert_eq!(res.status, 200);
    assert!(res
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = res.text();
    assert_eq!(
        value_of(
            &m,
            "ticket_gateway_tickets_issued_total{dialect=\"qps\",vp=\"metrics\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        value_of(
            &m,
            "ticket_gateway_tickets_redeemed_total{dialect=\"qps\",vp=\"metrics\"}"
        ),
        1.0
    );
    assert_eq!(
        value_of(&m, "ticket_gateway_tickets_refused_total{dialect=\"qps\",vp=\"metrics\",reason=\"unknown_used_or_expired\"}"),
        1.0
    );
    assert_eq!(
        value_of(
            &m,
            "ticket_gateway_tickets_refused_total{dialect=\"qps\",vp=\"metrics\",reason=\"xsrf\"}"
        ),
        1.0
    );
    assert_eq!(
        value_of(
            &m,
            "ticket_gateway_sessions_live{dialect=\"qps\",vp=\"metrics\"}"
        ),
        1.0
    );
    assert!(
        m.contains(
            "ticket_gateway_request_duration_seconds_bucket{route=\"qps_ticket\",le=\"0.001\"}"
        ),
        "{m}"
    );
    assert!(!m.contains(&t), "no ticket in the metrics");
}

#[tokio::test]
async fn health_and_readiness() {
    let gw = TestGateway::start("").await;
    let alive = get(gw.api, "/healthz", "").await;
    assert_eq!((alive.status, alive.text().as_str()), (200, "ok"));
    let ready = get(gw.api, "/readyz", "").await;
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready"));
    assert_eq!(
        get(gw.frontend, "/healthz", "").await.status,
        302,
        "the front end has no health endpoints"
    );
}
