//! OpenID Connect sign-in against a real, certified OpenID provider (`oidc-provider` on
//! Node, `tests/js/oidc-provider.mjs`) started on an ephemeral port: a scripted browser
//! (a cookie jar that honours paths, forms filled in) walks the whole flow through the
//! gateway, and each refusal is provoked for real: a tampered code, a replayed state, a
//! wrong nonce, a token for another client, another browser, the provider stopped or not
//! up yet, and a key rotation the gateway must follow.

use std::process::Stdio;
use std::time::Duration;

use gateway_tests::upstream::{self, echoed};
use gateway_tests::TestGateway;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::clients::node_with_packages;

/// A running provider; killed on drop.
struct Op {
    issuer: String,
    child: Child,
}

impl Op {
    /// Starts the provider on `port` (0: ephemeral) with `env`; `None` without Node.
    async fn start(port: u16, env: &[(&str, &str)]) -> Option<Op> {
        let (node, js) = node_with_packages()?;
        let mut child = Command::new(node)
            .arg(js.join("oidc-provider.mjs"))
            .arg(port.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the OpenID provider");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the provider starts in time")
        .expect("its first line");
        let ready: serde_json::Value = serde_json::from_str(&line).expect("the readiness line");
        Some(Op {
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            child,
        })
    }

    async fn control(&self, path: &str) {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.issuer))
            .send()
            .await
            .expect("the provider answers");
        assert!(res.status().is_success(), "{path}: {}", res.status());
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A gateway whose `oidc` proxy signs in with the provider at `issuer`.
async fn gateway(issuer: &str, extra: &str) -> TestGateway {
    let up = upstream::start().await;
    TestGateway::start(&format!(
        "[[virtual_proxy]]\nprefix = \"oidc\"\nupstream = \"http://{up}\"\nauthentication = \"oidc\"\n\
         oidc_configuration_endpoint = \"{issuer}/.well-known/openid-configuration\"\n\
         oidc_client_id = \"gateway\"\noidc_client_secret = \"gateway-secret\"\noidc_realm = \"IDP\"\n\
         oidc_scope = \"openid profile email groups\"\n\
         oidc_attribute_map = [{{ claim = \"email_verified\", attribute = \"Verified\" }}]\n{extra}"
    ))
    .await
}

/// A browser: a cookie jar that honours paths, no automatic redirects.
struct Browser(reqwest::Client);

impl Browser {
    fn new() -> Browser {
        Browser(
            reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        )
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.0.get(url).send().await.expect("a response")
    }

    /// Opens `url` on the gateway, which must send it to the provider: the provider's
    /// authorization URL.
    async fn start_login(&self, url: &str) -> String {
        let res = self.get(url).await;
        assert_eq!(res.status(), 302, "{url}");
        let set_cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap();
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("Path=/oidc/oidcauthn"),
            "{set_cookie}"
        );
        location(&res)
    }

    /// Walks the provider's login and consent pages from `url` as `user` until the
    /// provider sends the browser back to the gateway: that callback URL, not yet opened.
    async fn walk(&self, mut url: String, user: &str) -> String {
        for _ in 0..12 {
            if url.contains("/oidcauthn") {
                return url;
            }
            let res = self.get(&url).await;
            if res.status().is_redirection() {
                url = resolve(&url, &location(&res));
                continue;
            }
            assert_eq!(res.status(), 200, "{url}");
            let html = res.text().await.unwrap();
            let action = attribute(&html, "action").expect("a form");
            let mut form: Vec<(String, String)> = hidden_inputs(&html);
            if html.contains("name=\"login\"") {
                form.push(("login".into(), user.into()));
                form.push(("password".into(), "any".into()));
            }
            let res = self
                .0
                .post(resolve(&url, &action))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_redirection(), "{action}: {}", res.status());
            url = resolve(&url, &location(&res));
        }
        panic!("the provider never sent the browser back");
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .expect("a Location")
        .to_str()
        .unwrap()
        .to_owned()
}

fn resolve(base: &str, target: &str) -> String {
    reqwest::Url::parse(base)
        .unwrap()
        .join(target)
        .unwrap()
        .to_string()
}

fn attribute(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!("{name}=\""))? + name.len() + 2;
    Some(html[start..].split('"').next()?.replace("&amp;", "&"))
}

fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .skip(1)
        .filter(|i| i.contains("type=\"hidden\""))
        .filter_map(|i| Some((attribute(i, "name")?, attribute(i, "value")?)))
        .collect()
}

/// A callback URL with its `name` parameter's value replaced.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

fn param(url: &str, name: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A refused callback: `401`, no session cookie, no redirect, the reason on the page.
async fn refused(res: reqwest::Response, reason: &str) {
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("location").is_none());
    assert!(!res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("X-Qlik-Session")));
    let text = res.text().await.unwrap();
    assert!(text.contains(reason), "{reason:?} not in {text}");
}

/// A whole login as `user` from `/oidc/hub/?x=1`: the back end's echo of the page first
/// asked for.
async fn sign_in(gw: &TestGateway, browser: &Browser, user: &str) -> serde_json::Value {
    let hub = format!("http://{}/oidc/hub/?x=1", gw.frontend);
    let auth = browser.start_login(&hub).await;
    let callback = browser.walk(auth, user).await;
    let res = browser.get(&callback).await;
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    assert_eq!(location(&res), hub, "back to the page first asked for");
    let cookies: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0]
        .to_str()
        .unwrap()
        .starts_with("X-Qlik-Session-oidc-HTTP="));
    let page = browser.get(&hub).await;
    assert_eq!(page.status(), 200);
    page.json().await.unwrap()
}

#[tokio::test]
async fn a_browser_signs_in_through_the_provider() {
    let Some(op) = Op::start(0, &[]).await else {
        return;
    };
    let gw = gateway(&op.issuer, "").await;
    let browser = Browser::new();
    let hub = format!("http://{}/oidc/hub/?x=1", gw.frontend);
    let auth = browser.start_login(&hub).await;
    // The authorization request, as the issue and the specifications have it.
    assert!(auth.starts_with(&format!("{}/auth?", op.issuer)), "{auth}");
    assert_eq!(param(&auth, "response_type"), "code");
    assert_eq!(param(&auth, "client_id"), "gateway");
    assert_eq!(param(&auth, "code_challenge_method"), "S256");
    assert_eq!(
        param(&auth, "redirect_uri"),
        format!("http://{}/oidc/oidcauthn", gw.frontend)
    );
    let scopes = param(&auth, "scope");
    for s in ["openid", "profile", "email", "groups"] {
        assert!(scopes.split(' ').any(|x| x == s), "{scopes}");
    }
    for p in ["state", "nonce", "code_challenge"] {
        assert!(param(&auth, p).len() >= 16, "{p}");
    }
    let callback = browser.walk(auth, "jdoe").await;
    let res = browser.get(&callback).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), hub);
    let echo = browser
        .get(&hub)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(
        echoed(&echo, "x-qlik-user"),
        ["UserDirectory=IDP; UserId=jdoe"]
    );
    assert_eq!(
        echoed(&echo, "x-qlik-security"),
        ["SecureRequest=true; Context=AppAccess; name=Test User jdoe; email=jdoe@example.test; Group=Sales; Group=EU; Verified=true;"]
    );
    assert_eq!(echo["path"], "/oidc/hub/?x=1");
    // The personal API knows the user; logout ends the session, the next visit logs in again.
    let me = browser
        .get(&format!("http://{}/oidc/qps/user", gw.frontend))
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(me["userId"], "jdoe");
    assert_eq!(me["userDirectory"], "IDP");
    let res = browser
        .0
        .delete(format!("http://{}/oidc/qps/user", gw.frontend))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(browser.get(&hub).await.status(), 302);
    // The callback is spent: opened again, it is refused, not looped.
    refused(browser.get(&callback).await, "has already finished").await;
    // And a second user in another browser.
    let echo = sign_in(&gw, &Browser::new(), "alice").await;
    assert_eq!(
        echoed(&echo, "x-qlik-user"),
        ["UserDirectory=IDP; UserId=alice"]
    );
    op.stop().await;
}

#[tokio::test]
async fn tampered_replayed_and_foreign_logins_are_refused() {
    let Some(op) = Op::start(0, &[]).await else {
        return;
    };
    let gw = gateway(&op.issuer, "").await;
    let hub = format!("http://{}/oidc/hub/", gw.frontend);
    let browser = Browser::new();

    // A tampered code: the provider refuses it at the exchange.
    let callback = browser.walk(browser.start_login(&hub).await, "jdoe").await;
    let tampered = with_param(&callback, "code", &format!("x{}", param(&callback, "code")));
    refused(
        browser.get(&tampered).await,
        "refused the authorization code",
    )
    .await;
    // The state was spent by that attempt: the genuine code cannot follow.
    refused(browser.get(&callback).await, "has already finished").await;

    // Another browser cannot finish this browser's login.
    let callback = browser.walk(browser.start_login(&hub).await, "jdoe").await;
    refused(
        Browser::new().get(&callback).await,
        "begun in another browser",
    )
    .await;

    // A login whose nonce was changed on the way to the provider.
    let auth = browser.start_login(&hub).await;
    let callback = browser
        .walk(
            with_param(&auth, "nonce", "forged-nonce-forged-nonce"),
            "jdoe",
        )
        .await;
    refused(browser.get(&callback).await, "nonce does not match").await;

    // A code issued to another client, brought to the gateway's callback.
    let auth = browser.start_login(&hub).await;
    let callback = browser
        .walk(with_param(&auth, "client_id", "other"), "jdoe")
        .await;
    refused(
        browser.get(&callback).await,
        "refused the authorization code",
    )
    .await;

    // An ID token whose audience is another client.
    op.control("/test/audience?aud=other").await;
    let callback = browser.walk(browser.start_login(&hub).await, "jdoe").await;
    refused(browser.get(&callback).await, "for another client").await;
    op.control("/test/audience").await;

    // The provider's own refusal, and a callback without any state.
    let auth = browser.start_login(&hub).await;
    let state = param(&auth, "state");
    let url = format!(
        "http://{}/oidc/oidcauthn?error=access_denied&state={state}",
        gw.frontend
    );
    refused(browser.get(&url).await, "access denied").await;
    let url = format!("http://{}/oidc/oidcauthn?code=abc", gw.frontend);
    refused(browser.get(&url).await, "unknown").await;
    // A text from the link is never shown.
    let url = format!("http://{}/oidc/oidcauthn?error=%3Cscript%3E", gw.frontend);
    let res = browser.get(&url).await;
    assert_eq!(res.status(), 401);
    assert!(!res.text().await.unwrap().contains("script"));

    // After all that, a normal login still works.
    let echo = sign_in(&gw, &browser, "jdoe").await;
    assert_eq!(
        echoed(&echo, "x-qlik-user"),
        ["UserDirectory=IDP; UserId=jdoe"]
    );
    op.stop().await;
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it() {
    let Some(op) = Op::start(0, &[]).await else {
        return;
    };
    let gw = gateway(&op.issuer, "").await;
    let browser = Browser::new();
    sign_in(&gw, &browser, "jdoe").await;
    // The gateway holds k1 only; tokens are signed with k2 from now on.
    op.control("/test/rotate").await;
    let echo = sign_in(&gw, &Browser::new(), "alice").await;
    assert_eq!(
        echoed(&echo, "x-qlik-user"),
        ["UserDirectory=IDP; UserId=alice"]
    );
    op.stop().await;
}

#[tokio::test]
async fn a_provider_that_offers_only_client_secret_post_gets_it() {
    let Some(op) = Op::start(0, &[("OP_CLIENT_AUTH_METHODS", "client_secret_post")]).await else {
        return;
    };
    let gw = gateway(&op.issuer, "").await;
    let echo = sign_in(&gw, &Browser::new(), "jdoe").await;
    assert_eq!(
        echoed(&echo, "x-qlik-user"),
        ["UserDirectory=IDP; UserId=jdoe"]
    );
    op.stop().await;
}

#[tokio::test]
async fn a_stopped_provider_means_503_not_a_loop() {
    let Some(op) = Op::start(0, &[]).await else {
        return;
    };
    let gw = gateway(&op.issuer, "").await;
    let browser = Browser::new();
    let callback = browser
        .walk(
            browser
                .start_login(&format!("http://{}/oidc/hub/", gw.frontend))
                .await,
            "jdoe",
        )
        .await;
    op.stop().await;
    let res = browser.get(&callback).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().get("location").is_none());
    assert!(res.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn discovery_is_retried_until_the_provider_is_up() {
    if node_with_packages().is_none() {
        return;
    }
    // A port nobody listens on yet; the provider takes it later.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let issuer = format!("http://127.0.0.1:{port}");
    let gw = gateway(&issuer, "").await;
    let hub = format!("http://{}/oidc/hub/", gw.frontend);
    let browser = Browser::new();
    let res = browser.get(&hub).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().get("location").is_none());
    let ready = browser.get(&format!("http://{}/readyz", gw.api)).await;
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains(&issuer));
    // Other proxies still serve meanwhile.
    let default = browser.get(&format!("http://{}/hub/", gw.frontend)).await;
    assert_eq!(default.status(), 302);

    let op = Op::start(port, &[]).await.expect("the provider");
    // The next request after the provider is up discovers it (at most a second later).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let res = browser.get(&hub).await;
        if res.status() == 302 {
            break;
        }
        assert_eq!(res.status(), 503);
        assert!(tokio::time::Instant::now() < deadline, "never discovered");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        browser
            .get(&format!("http://{}/readyz", gw.api))
            .await
            .status(),
        200
    );
    let echo = sign_in(&gw, &browser, "jdoe").await;
    assert_eq!(
        echoed(&echo, "x-qlik-user"),
        ["UserDirectory=IDP; UserId=jdoe"]
    );
    op.stop().await;
}

#[test]
fn configuration_names_the_key_at_fault() {
    let base = "[[virtual_proxy]]\nprefix = \"o\"\nauthentication = \"oidc\"\n";
    let full = "oidc_configuration_endpoint = \"https://idp.example.com/.well-known/openid-configuration\"\n\
                oidc_client_id = \"c\"\noidc_client_secret = \"s\"\noidc_realm = \"IDP\"\n";
    let without_module = format!(
        "[demo]\nenabled = false\n[[virtual_proxy]]\nprefix = \"\"\nauth_module_redirect_uri = \"https://a.example.com/\"\n{base}{full}"
    );
    let settings = ticket_gateway::Settings::from_toml(&without_module);
    assert!(
        settings.is_ok(),
        "no auth_module_redirect_uri needed: {settings:?}"
    );
    let cases = [
        (
            full.replace("/.well-known/openid-configuration", "/oauth"),
            "oidc_configuration_endpoint",
        ),
        (
            full.replace("https://idp.example.com", "ftp://idp.example.com"),
            "oidc_configuration_endpoint",
        ),
        (
            full.replace("oidc_client_id = \"c\"\n", ""),
            "oidc_client_id",
        ),
        (
            full.replace("oidc_client_secret = \"s\"\n", ""),
            "oidc_client_secret",
        ),
        (full.replace("oidc_realm = \"IDP\"\n", ""), "oidc_realm"),
        (
            format!("{full}oidc_attribute_sub = \"\"\n"),
            "oidc_attribute_sub",
        ),
        (
            format!("{full}jwt_certificate = \"x.pem\"\n"),
            "jwt_certificate",
        ),
    ];
    for (keys, key) in cases {
        let e = ticket_gateway::Settings::from_toml(&format!("{base}{keys}")).unwrap_err();
        assert_eq!(e.key, format!("virtual_proxy[0].{key}"), "{e}");
    }
    // An OpenID key on a ticket proxy is an error too.
    let e = ticket_gateway::Settings::from_toml(
        "[[virtual_proxy]]\nprefix = \"o\"\noidc_realm = \"IDP\"\n",
    )
    .unwrap_err();
    assert_eq!(e.key, "virtual_proxy[0].oidc_realm");
}
