//! `POST /qps/{vp}/ticket`: every request variant real callers send, replayed byte for byte
//! from `fixtures/qps/ticket/`, and the replies compared with the fixture beside it.

use gateway_tests::{post_ticket, raw, replay_fixtures, TestGateway};

const CONFIG: &str = "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n\
                      [[virtual_proxy]]\nprefix = \"ticket\"\n";

#[tokio::test]
async fn every_fixture_gets_the_reply_beside_it() {
    let gw = TestGateway::start(CONFIG).await;
    let failures = replay_fixtures(gw.api, "qps/ticket", 30).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_chunked_or_not() {
    let gw = TestGateway::start("[limits]\nmax_body_bytes = 1024\n").await;
    let big = format!(
        r#"{{"UserDirectory":"ACME","UserId":"jdoe","Pad":"{}"}}"#,
        "x".repeat(2000)
    );
    let res = post_ticket(gw.api, "", &big).await;
    assert_eq!(res.status, 413);
    assert_eq!(res.text(), "The request body is too large.");

    let mut req = b"POST /qps/ticket?xrfkey=abcdefghijklmnop HTTP/1.1\r\nHost: x\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..3 {
        req.extend_from_slice(format!("{:x}\r\n{}\r\n", 600, "y".repeat(600)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let res = raw(gw.api, &req).await;
    assert_eq!(res.status, 413);

    // Just under the limit still works.
    let ok = format!(
        r#"{{"UserDirectory":"ACME","UserId":"jdoe","Pad":"{}"}}"#,
        "x".repeat(900)
    );
    assert_eq!(post_ticket(gw.api, "", &ok).await.status, 201);
}

#[tokio::test]
async fn deeply_nested_json_is_a_400_not_a_crash() {
    let gw = TestGateway::start("").await;
    let body = format!(
        r#"{{"UserDirectory":"ACME","UserId":"jdoe","X":{}}}"#,
        "[".repeat(20_000)
    );
    let res = post_ticket(gw.api, "", &body).await;
    assert_eq!(res.status, 400);
    assert!(res.text().contains("nesting too deep"), "{}", res.text());
    // The gateway is still there.
    assert_eq!(gateway_tests::ticket(gw.api, "").await.len(), 16);
}

#[tokio::test]
async fn tickets_are_distinct_letters_from_a_csprng() {
    let gw = TestGateway::start("").await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let t = gateway_tests::ticket(gw.api, "").await;
        assert!(ticket_core::id::looks_like_qps_ticket(&t), "{t}");
        assert!(seen.insert(t));
    }
}

#[tokio::test]
async fn the_front_end_does_not_serve_the_rest_api() {
    let gw = TestGateway::start("").await;
    let res = post_ticket(
        gw.frontend,
        "",
        r#"{"UserDirectory":"ACME","UserId":"jdoe"}"#,
    )
    .await;
    assert_ne!(res.status, 201);
}
