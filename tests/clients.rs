//! Real clients written by others, run against the gateway: enigma.js (Qlik's engine
//! client) in Node. They come from `tests/js`, installed by `scripts/setup`; without Node
//! or the packages the tests say they were skipped, and under `CI=true` they fail.

use std::path::PathBuf;
use std::process::Command;

use gateway_tests::upstream::{self, ENGINE_HELLO};
use gateway_tests::{login, TestGateway};

/// `node` and the installed packages, or `None` (a skip) outside CI.
pub(crate) fn node_with_packages() -> Option<(PathBuf, PathBuf)> {
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js");
    let found = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && js.join("node_modules").is_dir();
    if found {
        return Some((PathBuf::from("node"), js));
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("node or tests/js/node_modules missing, and CI=true requires the client tests (run scripts/setup)");
    }
    eprintln!("skipped: node or tests/js/node_modules missing (run scripts/setup)");
    None
}

#[tokio::test]
async fn enigma_js_reads_the_greeting_through_the_gateway() {
    let Some((node, js)) = node_with_packages() else {
        return;
    };
    let up = upstream::start().await;
    let gw = TestGateway::start(&format!(
        "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\nupstream = \"http://{up}\"\n"
    ))
    .await;
    let cookie = login(&gw, "ext").await;
    let url = format!("ws://{}/ext/app/engineData", gw.frontend);
    let out = tokio::process::Command::new(node)
        .arg(js.join("enigma.js"))
        .args([&url, &cookie])
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["method"], "OnAuthenticationInformation",
        "{stdout}"
    );
    assert_eq!(lines[0]["params"]["userId"], "jdoe");
    assert_eq!(lines[0]["params"]["userDirectory"], "ACME");
    assert_eq!(lines[0]["params"]["mustAuthenticate"], false);
    let hello: serde_json::Value = serde_json::from_str(ENGINE_HELLO).unwrap();
    assert_eq!(lines[1]["method"], hello["method"], "{stdout}");
}
