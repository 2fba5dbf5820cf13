//! `POST /qps/{vp}/ticket`: every request variant real callers send, replayed byte for byte
//! from `fixtures/qps/ticket/`, and the replies compared with the fixture beside it.

use gateway_tests::{fixtures_dir, post_ticket, raw, TestGateway};

const CONFIG: &str = "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n\
                      [[virtual_proxy]]\nprefix = \"ticket\"\n";

/// Checks a reply against an expected `.response` file: the status line, each header it
/// lists (exact value), and the body, where `{TICKET}` stands for a fresh 16-letter ticket.
fn matches(expected: &str, res: &gateway_tests::RawResponse) -> Result<(), String> {
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
    match body.split_once("{TICKET}") {
        None if text == body => Ok(()),
        Some((before, after))
            if text.len() == before.len() + 16 + after.len()
                && text.starts_with(before)
                && text.ends_with(after)
                && ticket_core::id::looks_like_qps_ticket(
                    &text[before.len()..before.len() + 16],
                ) =>
        {
            Ok(())
        }
        _ => Err(format!("body {text:?}, expected {body:?}")),
    }
}

#[tokio::test]
async fn every_fixture_gets_the_reply_beside_it() {
    let gw = TestGateway::start(CONFIG).await;
    let dir = fixtures_dir().join("qps/ticket");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "request"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "fixtures missing: {}", names.len());
    let mut failures = Vec::new();
    for path in &names {
        let request = std::fs::read(path).unwrap();
        let expected = std::fs::read_to_string(path.with_extension("response")).unwrap();
        let res = raw(gw.api, &request).await;
        if let Err(why) = matches(&expected, &res) {
            failures.push(format!(
                "{}: {why}",
                path.file_stem().unwrap().to_string_lossy()
            ));
        }
    }
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
