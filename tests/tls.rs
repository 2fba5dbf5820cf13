//! TLS on both listeners and mutual TLS on the REST API, with certificates from
//! `ticket-gateway certs`; session cookie attributes over http and https.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gateway_tests::{get, RawResponse, TestGateway};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn cert_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tls-{name}-{}", std::process::id()));
    ticket_gateway::certs::generate(
        &dir,
        &[
            "localhost".into(),
            "127.0.0.1".into(),
            "qs.example.com".into(),
        ],
    )
    .unwrap();
    dir
}

fn tls_config(dir: &Path, client_auth: &str) -> String {
    let p = |f: &str| dir.join(f).display().to_string();
    format!(
        "[frontend]\ntls_cert = {:?}\ntls_key = {:?}\n[api]\ntls_cert = {:?}\ntls_key = {:?}\nclient_ca = {:?}\nclient_auth = \"{client_auth}\"\n",
        p("server.pem"),
        p("server_key.pem"),
        p("server.pem"),
        p("server_key.pem"),
        p("root.pem"),
    )
}

/// A TLS client trusting `roots_from`'s root, presenting `identity_from`'s client
/// certificate when given.
fn connector(roots_from: &Path, identity_from: Option<&Path>) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(roots_from.join("root.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity_from {
        Some(dir) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(dir.join("client.pem"))
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
            let key = PrivateKeyDer::from_pem_file(dir.join("client_key.pem")).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// Sends `request` over TLS to `addr` for `host`; `Err` when the handshake or the exchange
/// fails at the TLS level.
async fn tls_request(
    connector: &TlsConnector,
    addr: SocketAddr,
    host: &str,
    request: &str,
) -> Result<RawResponse, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut buf),
    )
    .await
    .map_err(|_| "timed out".to_owned())?;
    read.map_err(|e| e.to_string())?;
    parse(&buf).ok_or_else(|| format!("no HTTP response: {:?}", String::from_utf8_lossy(&buf)))
}

fn parse(buf: &[u8]) -> Option<RawResponse> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?.to_owned();
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(RawResponse {
        status,
        status_line,
        headers,
        body: body.as_bytes().to_vec(),
    })
}

const TICKET: &str = "POST /qps/ticket?xrfkey=abcdefghijklmnop HTTP/1.1\r\nHost: localhost\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\nContent-Type: application/json\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{\"UserDirectory\":\"ACME\",\"UserId\":\"jdoe\"}";

#[tokio::test]
async fn mutual_tls_accepts_the_generated_client_and_refuses_others() {
    let dir = cert_dir("required");
    let other = cert_dir("other-ca");
    let gw = TestGateway::start(&tls_config(&dir, "required")).await;

    let ok = tls_request(&connector(&dir, Some(&dir)), gw.api, "localhost", TICKET)
        .await
        .unwrap();
    assert_eq!(ok.status, 201, "{}", ok.text());
    // The server certificate covers every host given to `certs`.
    for host in ["127.0.0.1", "qs.example.com"] {
        let ok = tls_request(&connector(&dir, Some(&dir)), gw.api, host, TICKET)
            .await
            .unwrap();
        assert_eq!(ok.status, 201, "{host}");
    }
    let none = tls_request(&connector(&dir, None), gw.api, "localhost", TICKET).await;
    assert!(none.is_err(), "no client certificate: {none:?}");
    let foreign = tls_request(&connector(&dir, Some(&other)), gw.api, "localhost", TICKET).await;
    assert!(
        foreign.is_err(),
        "a certificate from another CA: {foreign:?}"
    );
    // A client that does not trust the server's CA refuses it, as pinning clients do.
    assert!(
        tls_request(&connector(&other, Some(&dir)), gw.api, "localhost", TICKET)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn optional_403_completes_the_handshake_and_answers_403() {
    let dir = cert_dir("optional");
    let other = cert_dir("optional-other");
    let gw = TestGateway::start(&tls_config(&dir, "optional-403")).await;
    let ok = tls_request(&connector(&dir, Some(&dir)), gw.api, "localhost", TICKET)
        .await
        .unwrap();
    assert_eq!(ok.status, 201);
    for client in [None, Some(other.as_path())] {
        let res = tls_request(&connector(&dir, client), gw.api, "localhost", TICKET)
            .await
            .unwrap();
        assert_eq!(res.status, 403, "{client:?}");
        assert!(res.text().contains("client certificate"), "{}", res.text());
    }
}

#[tokio::test]
async fn cookies_are_secure_over_https_and_carry_same_site_and_domain() {
    let dir = cert_dir("cookies");
    let extra = format!(
        "{}[[virtual_proxy]]\nprefix = \"ext\"\nsession_cookie_same_site = \"lax\"\nsession_cookie_domain = \".example.com\"\n",
        tls_config(&dir, "required")
    );
    let gw = TestGateway::start(&extra).await;
    let client = connector(&dir, Some(&dir));
    let issue = TICKET.replace("/qps/ticket", "/qps/ext/ticket");
    let t = tls_request(&client, gw.api, "localhost", &issue)
        .await
        .unwrap()
        .json()["Ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = tls_request(
        &client,
        gw.frontend,
        "localhost",
        &format!(
            "GET /ext/hub/?qlikTicket={t} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ),
    )
    .await
    .unwrap();
    assert_eq!(res.status, 200);
    let cookie = res.header("set-cookie").unwrap();
    let (name_value, attrs) = cookie.split_once("; ").unwrap();
    assert!(
        name_value.starts_with("X-Qlik-Session-ext="),
        "no -HTTP suffix over https: {cookie}"
    );
    assert_eq!(
        attrs,
        "Path=/; HttpOnly; Secure; SameSite=Lax; Domain=.example.com"
    );

    // Over plain http: the -HTTP name, no Secure.
    let plain = TestGateway::start(
        "[[virtual_proxy]]\nprefix = \"ext\"\nsession_cookie_same_site = \"strict\"\nsession_cookie_domain = \".example.com\"\n",
    )
    .await;
    let t = gateway_tests::ticket(plain.api, "ext").await;
    let res = get(plain.frontend, &format!("/ext/hub/?qlikTicket={t}"), "").await;
    let cookie = res.header("set-cookie").unwrap();
    assert!(cookie.starts_with("X-Qlik-Session-ext-HTTP="));
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Strict; Domain=.example.com"),
        "{cookie}"
    );

    // Logout expires it with the same Domain, or the browser would keep it.
    let name_value = cookie.split(';').next().unwrap();
    let req = format!("DELETE /ext/qps/user HTTP/1.1\r\nHost: x\r\nCookie: {name_value}\r\nConnection: close\r\n\r\n");
    let res = gateway_tests::raw(plain.frontend, req.as_bytes()).await;
    let cleared = res.headers_named("set-cookie");
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("X-Qlik-Session-ext-HTTP=;")
                && c.ends_with("; Domain=.example.com")),
        "{cleared:?}"
    );
}

#[tokio::test]
async fn plain_http_to_a_tls_listener_gets_nothing_useful() {
    let dir = cert_dir("plain");
    let gw = TestGateway::start(&tls_config(&dir, "required")).await;
    let mut s = TcpStream::connect(gw.api).await.unwrap();
    s.write_all(TICKET.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf),
    )
    .await
    .expect("closed in time");
    assert!(!String::from_utf8_lossy(&buf).contains("Ticket"));
}

/// An early reply (the gateway answers before the client has sent all it is sending) must
/// reach the client: the gateway lingers rather than resetting the connection. The client
/// here sends its body only once the reply is there to read, as a slow uploader would.
#[tokio::test]
async fn early_replies_are_read_over_tls() {
    use tokio::io::AsyncReadExt;
    let dir = cert_dir("early");
    let gw = TestGateway::start(&tls_config(&dir, "required")).await;
    let c = connector(&dir, None);
    let body = "x".repeat(256 * 1024);
    for (head, rest, status) in [
        (
            format!("POST /QvAJAXZfc/GetWebTicket.aspx HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n", body.len()),
            body.clone(),
            413,
        ),
        (
            format!("GET /hub/ HTTP/1.1\r\nHost: localhost\r\nX-Big: {}", "y".repeat(96 * 1024)),
            format!("{}\r\n\r\n", "y".repeat(256 * 1024)),
            431,
        ),
    ] {
        let tcp = TcpStream::connect(gw.frontend).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = c.connect(name, tcp).await.unwrap();
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        tls.get_ref().0.readable().await.unwrap();
        // A client that fails to send gives up before it reads: the rest must go through.
        tls.write_all(rest.as_bytes()).await.expect("the rest is taken, not reset");
        tls.flush().await.expect("flushed");
        let mut reply = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tls.read_to_end(&mut reply),
        )
        .await
        .expect("in time");
        let text = String::from_utf8_lossy(&reply);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}")),
            "{read:?} {text:?}"
        );
    }
}
