//! A mashup in a real browser: Debian's headless Chromium, driven by puppeteer-core, loads
//! `examples/mashup/index.html` from another origin; the page signs in through the demo
//! module, reads the personal API with the browser's cookie, fetches the CSRF token and
//! opens the engine WebSocket through the gateway. From an origin the virtual proxy does
//! not list, the browser itself refuses the page its calls.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use crate::clients::node_with_packages;
use gateway_tests::upstream::{self, ENGINE_HELLO};
use gateway_tests::TestGateway;

/// Serves the mashup page on `127.0.0.1:0`, for any path.
async fn page_server() -> SocketAddr {
    let page = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/mashup/index.html"),
    )
    .expect("the example page");
    let page = Bytes::from(page);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    let page = page.clone();
                    async move {
                        let mut res = hyper::Response::new(Full::new(page));
                        res.headers_mut()
                            .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
                        Ok::<_, Infallible>(res)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn chromium() -> Option<String> {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if std::path::Path::new(&path).exists() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{path} missing, and CI=true requires the browser test (run scripts/setup)");
    }
    eprintln!("skipped: {path} missing (run scripts/setup)");
    None
}

async fn run_page(
    node: &std::path::Path,
    js: &std::path::Path,
    url: &str,
    chromium: &str,
) -> serde_json::Value {
    let out = tokio::process::Command::new(node)
        .arg(js.join("mashup.js"))
        .arg(url)
        .env("CHROMIUM", chromium)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mashup_on_another_origin_signs_in_and_opens_the_engine_socket() {
    let (Some((node, js)), Some(chromium)) = (node_with_packages(), chromium()) else {
        return;
    };
    let page = page_server().await;
    let up = upstream::start().await;
    let gw = TestGateway::start(&format!(
        "[[virtual_proxy]]\nprefix = \"ext\"\nupstream = \"http://{up}\"\n\
         cors_allowed_origins = [\"http://127.0.0.1:{}\"]\nwebsocket_csrf_protection = true\n",
        page.port()
    ))
    .await;
    let query = format!("gateway=http://{}&vp=ext", gw.frontend);

    let result = run_page(
        &node,
        &js,
        &format!("http://127.0.0.1:{}/index.html?{query}", page.port()),
        &chromium,
    )
    .await;
    assert_eq!(result["done"], true, "{result}");
    assert_eq!(result["user"]["userId"], "jdoe", "{result}");
    assert_eq!(
        result["greeting"]["method"], "OnAuthenticationInformation",
        "{result}"
    );
    assert_eq!(result["greeting"]["params"]["userId"], "jdoe");
    let hello: serde_json::Value = serde_json::from_str(ENGINE_HELLO).unwrap();
    assert_eq!(result["engine"], hello, "{result}");

    // The same page from an origin the proxy does not list: the browser refuses it.
    let refused = run_page(
        &node,
        &js,
        &format!("http://localhost:{}/index.html?{query}", page.port()),
        &chromium,
    )
    .await;
    assert_eq!(refused["done"], true, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "{refused}"
    );
}
