//! A virtual proxy's other authentication methods: header authentication, JWT, and the
//! forms logins (the demo module and QlikView's `Authenticate.aspx`) against a users file.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use gateway_tests::upstream::{self, echoed};
use gateway_tests::{cookie, get, raw, RawResponse, TestGateway};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

async fn gateway(method: &str) -> TestGateway {
    let up = upstream::start().await;
    TestGateway::start(&format!(
        "[[virtual_proxy]]\nprefix = \"ext\"\nauth_module_redirect_uri = \"https://auth.example.com/login\"\n\
         upstream = \"http://{up}\"\nmax_sessions_per_user = 3\n{method}"
    ))
    .await
}

fn with(cookie: &str, more: &str) -> String {
    if cookie.is_empty() {
        more.to_owned()
    } else {
        format!("Cookie: {cookie}\r\n{more}")
    }
}

// ---- Header authentication -------------------------------------------------------------

#[tokio::test]
async fn header_authentication_signs_in_whoever_the_trusted_header_names() {
    let gw = gateway("authentication = \"header\"\nheader_name = \"hdr-usr\"\nheader_user_directory = \"ACME\"\n").await;
    let res = get(gw.frontend, "/ext/hub/", "hdr-usr: jdoe\r\n").await;
    assert_eq!(res.status, 200);
    let echo = res.json();
    assert_eq!(
        echoed(&echo, "x-qlik-user"),
        ["UserDirectory=ACME; UserId=jdoe"]
    );
    assert!(
        echoed(&echo, "hdr-usr").is_empty(),
        "the header is not forwarded"
    );
    let c = cookie(&res);
    // The same user keeps the session.
    let again = get(gw.frontend, "/ext/hub/", &with(&c, "hdr-usr: jdoe\r\n")).await;
    assert_eq!(again.status, 200);
    assert!(again.header("set-cookie").is_none());
    // Another user gets another session, and the first one ends.
    let other = get(gw.frontend, "/ext/hub/", &with(&c, "hdr-usr: bob\r\n")).await;
    assert_eq!(
        echoed(&other.json(), "x-qlik-user"),
        ["UserDirectory=ACME; UserId=bob"]
    );
    assert_ne!(cookie(&other), c);
    // Every request must carry it: a cookie alone is not enough, and nothing redirects.
    for extra in ["", "hdr-usr: \r\n", "hdr-usr: j\u{e9}doe\r\n"] {
        let res = get(gw.frontend, "/ext/hub/", &with(&c, extra)).await;
        assert_eq!(res.status, 401, "{extra:?}");
        assert!(res.header("location").is_none());
    }
}

#[tokio::test]
async fn a_pattern_reads_the_directory_from_the_header() {
    let gw = gateway("authentication = \"header\"\nheader_name = \"hdr-usr\"\nheader_user_directory_pattern = '$ud\\$id'\n").await;
    let res = get(gw.frontend, "/ext/hub/", "hdr-usr: CORP\\bob\r\n").await;
    assert_eq!(
        echoed(&res.json(), "x-qlik-user"),
        ["UserDirectory=CORP; UserId=bob"]
    );
    assert_eq!(
        get(gw.frontend, "/ext/hub/", "hdr-usr: bob\r\n")
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn the_header_from_an_untrusted_peer_is_ignored() {
    let gw = gateway("authentication = \"header\"\nheader_name = \"hdr-usr\"\nheader_user_directory = \"ACME\"\nheader_trusted_proxies = [\"10.0.0.0/8\"]\n").await;
    let res = get(gw.frontend, "/ext/hub/", "hdr-usr: admin\r\n").await;
    assert_eq!(res.status, 401);
}

#[test]
fn identity_headers_cannot_name_the_user() {
    for name in [
        "X-Qlik-User",
        "x-qlik-security",
        "X-Qlik-ProxySession",
        "X-Qlik-ProxyId",
        "X-Qlik-Trace",
        "X-Qlik-App",
        "X-Qlik-Capabilities",
        "X-Qlik-Virtual-Proxy-Prefix",
        "Cookie",
        "Authorization",
        "Host",
    ] {
        let e = ticket_gateway::Settings::from_toml(&format!(
            "[[virtual_proxy]]\nprefix = \"h\"\nauthentication = \"header\"\nheader_name = \"{name}\"\nheader_user_directory = \"A\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "virtual_proxy[0].header_name", "{name}");
    }
    let e = ticket_gateway::Settings::from_toml(
        "[[virtual_proxy]]\nprefix = \"h\"\nauthentication = \"header\"\nheader_name = \"u\"\nheader_user_directory = \"A\"\nheader_user_directory_pattern = '$ud\\$id'\n",
    )
    .unwrap_err();
    assert!(
        e.key.starts_with("virtual_proxy[0].header_user_directory"),
        "{e}"
    );
}

// ---- JWT -------------------------------------------------------------------------------

/// A test RSA key pair (private PKCS#8 PEM, public SPKI PEM), made once per run.
fn key(n: usize) -> &'static (String, String) {
    static KEYS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..2)
            .map(|_| {
                let private = rsa::RsaPrivateKey::new(&mut rand_core_compat(), 2048).unwrap();
                let public = private
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .unwrap();
                (
                    private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                    public,
                )
            })
            .collect()
    })[n]
}

/// The `rand_core` 0.6 generator `rsa` 0.9 wants.
fn rand_core_compat() -> rsa::rand_core::OsRng {
    rsa::rand_core::OsRng
}

/// The certificate of key `n`, as the QMC takes a JWT key.
fn certificate(n: usize) -> String {
    let pair =
        rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key(n).0, &rcgen::PKCS_RSA_SHA256).unwrap();
    rcgen::CertificateParams::new(vec!["jwt-signer.test".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap()
        .pem()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(alg: Algorithm, key_n: usize, claims: serde_json::Value) -> String {
    let key = EncodingKey::from_rsa_pem(key(key_n).0.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap()
}

/// Writes `text` to a file of its own and returns its path.
fn write(name: &str, text: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}-{n}.pem", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn jwt_gateway(pem: &str, extra: &str) -> TestGateway {
    gateway(&format!(
        "authentication = \"jwt\"\njwt_certificate = {:?}\njwt_attribute_user_id = \"sub\"\n\
         jwt_attribute_user_directory = \"[ACME]\"\n\
         jwt_attribute_map = [{{ claim = \"groups\", attribute = \"Group\", mandatory = false }}, {{ claim = \"dept\", attribute = \"Dept\", mandatory = true }}]\n{extra}",
        write("jwt", pem)
    ))
    .await
}

async fn bearer(gw: &TestGateway, token: &str, cookie: &str) -> RawResponse {
    get(
        gw.frontend,
        "/ext/hub/",
        &with(cookie, &format!("Authorization: Bearer {token}\r\n")),
    )
    .await
}

#[tokio::test]
async fn a_jwt_signs_its_user_in_and_maps_claims_to_attributes() {
    for pem in [key(0).1.clone(), certificate(0)] {
        let gw = jwt_gateway(&pem, "").await;
        let claims = serde_json::json!({"sub": "jdoe", "groups": ["Sales", "EU"], "dept": "R&D", "exp": now() + 600});
        let t = token(Algorithm::RS256, 0, claims);
        let res = bearer(&gw, &t, "").await;
        assert_eq!(res.status, 200, "{}", res.text());
        let echo = res.json();
        assert_eq!(
            echoed(&echo, "x-qlik-user"),
            ["UserDirectory=ACME; UserId=jdoe"]
        );
        assert_eq!(
            echoed(&echo, "x-qlik-security"),
            ["SecureRequest=true; Context=AppAccess; Group=Sales; Group=EU; Dept=R&D;"]
        );
        assert!(echoed(&echo, "authorization").is_empty(), "never forwarded");
        let c = cookie(&res);
        // The same token again, without the cookie (a script): the same session.
        for _ in 0..5 {
            let again = bearer(&gw, &t, "").await;
            assert_eq!(again.status, 200);
            assert_eq!(cookie(&again), c);
        }
        // The cookie alone serves too.
        assert_eq!(
            get(gw.frontend, "/ext/hub/", &format!("Cookie: {c}\r\n"))
                .await
                .status,
            200
        );
    }
}

#[tokio::test]
async fn rs384_rs512_and_tokens_without_exp_are_accepted() {
    let gw = jwt_gateway(&key(0).1, "").await;
    for alg in [Algorithm::RS384, Algorithm::RS512] {
        let t = token(
            alg,
            0,
            serde_json::json!({"sub": "a", "dept": "d", "exp": now() + 60}),
        );
        assert_eq!(bearer(&gw, &t, "").await.status, 200, "{alg:?}");
    }
    let t = token(
        Algorithm::RS256,
        0,
        serde_json::json!({"sub": "b", "dept": "d"}),
    );
    assert_eq!(bearer(&gw, &t, "").await.status, 200);
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_and_never_redirected() {
    let gw = jwt_gateway(&key(0).1, "jwt_audience = \"qlik\"\n").await;
    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let claims = serde_json::json!({"sub": "jdoe", "dept": "d", "aud": "qlik", "exp": now() + 600});
    let none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    // HS256 with the public key as the HMAC secret (algorithm confusion).
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key(0).1.as_bytes()),
    )
    .unwrap();
    let claims_with = |patch: serde_json::Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        token(Algorithm::RS256, 0, c)
    };
    let cases = [
        ("another key", token(Algorithm::RS256, 1, claims.clone())),
        ("HS256", hs256),
        ("alg none", none),
        (
            "expired",
            claims_with(serde_json::json!({"exp": now() - 3600})),
        ),
        (
            "not yet valid",
            claims_with(serde_json::json!({"nbf": now() + 3600})),
        ),
        ("no user", claims_with(serde_json::json!({"sub": null}))),
        (
            "no mandatory claim",
            claims_with(serde_json::json!({"dept": null})),
        ),
        (
            "another audience",
            claims_with(serde_json::json!({"aud": "other"})),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, t) in cases {
        let res = bearer(&gw, &t, "").await;
        assert_eq!(res.status, 401, "{what}: {}", res.text());
        assert!(
            res.header("location").is_none() && res.header("set-cookie").is_none(),
            "{what}"
        );
    }
    // Neither a token nor a session: 401 too.
    let res = get(gw.frontend, "/ext/hub/", "").await;
    assert_eq!(res.status, 401);
    // Within the leeway, an expired token still passes.
    let t = claims_with(serde_json::json!({"exp": now() - 30}));
    assert_eq!(bearer(&gw, &t, "").await.status, 200);
}

/// The greeting of an engine socket opened on `/ext/app/` with `headers`.
async fn greeting(gw: &TestGateway, headers: &[(&str, String)]) -> serde_json::Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/ext/app/", gw.frontend)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let stream = tokio::net::TcpStream::connect(gw.frontend).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("upgraded");
    let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .expect("a message in time")
        .expect("open")
        .expect("a frame");
    serde_json::from_str(msg.to_text().unwrap()).unwrap()
}

#[tokio::test]
async fn sockets_sign_in_by_header_and_by_bearer_token() {
    let gw = gateway("authentication = \"header\"\nheader_name = \"hdr-usr\"\nheader_user_directory = \"ACME\"\n").await;
    let hello = greeting(&gw, &[("hdr-usr", "jdoe".into())]).await;
    assert_eq!(hello["method"], "OnAuthenticationInformation");
    assert_eq!(hello["params"]["userId"], "jdoe");
    assert_eq!(hello["params"]["userDirectory"], "ACME");
    assert_eq!(hello["params"]["mustAuthenticate"], false);

    let gw = jwt_gateway(&key(0).1, "").await;
    let t = token(
        Algorithm::RS256,
        0,
        serde_json::json!({"sub": "jdoe", "dept": "d", "exp": now() + 600}),
    );
    let hello = greeting(&gw, &[("authorization", format!("Bearer {t}"))]).await;
    assert_eq!(hello["params"]["userId"], "jdoe");
    assert_eq!(hello["params"]["mustAuthenticate"], false);
}

#[tokio::test]
async fn the_per_user_limit_holds_whatever_the_method() {
    // max_sessions_per_user = 3 and the default policy refuses the fourth.
    let gw = jwt_gateway(&key(0).1, "").await;
    for n in 0..3 {
        let t = token(
            Algorithm::RS256,
            0,
            serde_json::json!({"sub": "jdoe", "dept": "d", "exp": now() + 600 + n}),
        );
        assert_eq!(bearer(&gw, &t, "").await.status, 200);
    }
    let t = token(
        Algorithm::RS256,
        0,
        serde_json::json!({"sub": "jdoe", "dept": "d", "exp": now() + 700}),
    );
    let res = bearer(&gw, &t, "").await;
    assert_ne!(res.status, 200, "{}", res.text());
    assert!(res.header("set-cookie").is_none());
}

// ---- Forms logins ------------------------------------------------------------------------

/// A users file with `ACME\jdoe` (password `s3cret`, group Sales) and `ACME\bob`.
fn users_file() -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let hash = |p: &str| {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        argon2::Argon2::default()
            .hash_password(p.as_bytes(), &salt)
            .unwrap()
            .to_string()
    };
    let text = format!(
        "[users]\n'ACME\\jdoe' = {{ password = \"{}\", attributes = [{{ Group = \"Sales\" }}, {{ Group = \"EU\" }}] }}\n\
         'ACME\\bob' = {{ password = \"{}\" }}\n",
        hash("s3cret"),
        hash("hunter2"),
    );
    write("users", &text)
}

async fn post_form(addr: std::net::SocketAddr, target: &str, form: &str) -> RawResponse {
    let req = format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    raw(addr, req.as_bytes()).await
}

#[tokio::test]
async fn the_demo_module_checks_passwords_against_the_users_file() {
    let up = upstream::start().await;
    let gw = TestGateway::start(&format!(
        "[demo]\nusers_file = {:?}\n[[virtual_proxy]]\nprefix = \"\"\nupstream = \"http://{up}\"\n",
        users_file()
    ))
    .await;
    // The proxy sends the browser to the module, whose form asks for a password.
    let res = get(gw.frontend, "/hub/", "").await;
    assert_eq!(res.status, 302);
    let login = res.header("location").unwrap().to_owned();
    let path = login
        .split_once(&gw.frontend.to_string())
        .unwrap()
        .1
        .to_owned();
    let form = get(gw.frontend, &path, "").await;
    assert!(form.text().contains("type=\"password\""), "{}", form.text());
    assert!(!form.text().contains("Anyone may sign in"));
    let q = path.split_once('?').unwrap().1;
    let field = |name: &str| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .unwrap()
            .1
            .into_owned()
    };
    let fields = |user: &str, password: &str| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("proxyRestUri", &field("proxyRestUri"))
            .append_pair("targetId", &field("targetId"))
            .append_pair("userDirectory", "acme")
            .append_pair("userId", user)
            .append_pair("password", password)
            .finish()
    };
    // A wrong password and an unknown user read the same.
    let wrong = post_form(gw.frontend, "/demo/login", &fields("jdoe", "nope")).await;
    let unknown = post_form(gw.frontend, "/demo/login", &fields("nobody", "s3cret")).await;
    for res in [&wrong, &unknown] {
        assert_eq!(res.status, 401);
        assert!(res.text().contains("Unknown user or wrong password."));
        assert!(res.header("location").is_none() && res.header("set-cookie").is_none());
    }
    // Typed attributes are not taken: the file's are.
    let ok = post_form(
        gw.frontend,
        "/demo/login",
        &(fields("JDoe", "s3cret") + "&attributes=Group%3DAdmin"),
    )
    .await;
    assert_eq!(ok.status, 302, "{}", ok.text());
    let back = ok.header("location").unwrap();
    assert!(back.contains("qlikTicket="), "{back}");
    let back = back.split_once(&gw.frontend.to_string()).unwrap().1;
    let res = get(gw.frontend, back, "").await;
    assert_eq!(res.status, 200);
    let echo = res.json();
    assert_eq!(
        echoed(&echo, "x-qlik-user"),
        ["UserDirectory=acme; UserId=JDoe"]
    );
    assert_eq!(
        echoed(&echo, "x-qlik-security"),
        ["SecureRequest=true; Context=AppAccess; Group=Sales; Group=EU;"]
    );
}

#[tokio::test]
async fn qlikview_form_login_starts_a_session_or_goes_back() {
    let gw = TestGateway::start(&format!("[qlikview]\nusers_file = {:?}\n", users_file())).await;
    let try_back = "/QvAJAXZfc/Authenticate.aspx?try=/QvAJAXZfc/opendoc.htm?document=Sales.qvw&back=/LoginPage.htm";
    // Right: a session cookie and on to `try`.
    let ok = post_form(
        gw.frontend,
        try_back,
        "username=acme%5Cjdoe&password=s3cret",
    )
    .await;
    assert_eq!(ok.status, 302, "{}", ok.text());
    let loc = ok.header("location").unwrap();
    assert!(
        loc.ends_with("/QvAJAXZfc/opendoc.htm?document=Sales.qvw"),
        "{loc}"
    );
    let c = cookie(&ok);
    let page = get(
        gw.frontend,
        "/QvAJAXZfc/opendoc.htm?document=Sales.qvw",
        &format!("Cookie: {c}\r\n"),
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("ACME\\jdoe"), "{}", page.text());
    assert!(page.text().contains("Sales"), "{}", page.text());
    // Wrong: back, with nothing set.
    for form in [
        "username=ACME%5Cjdoe&password=x",
        "username=ACME%5Cnobody&password=s3cret",
        "username=&password=",
        "",
    ] {
        let res = post_form(gw.frontend, try_back, form).await;
        assert_eq!(res.status, 302, "{form}");
        assert!(res.header("location").unwrap().ends_with("/LoginPage.htm"));
        assert!(res.header("set-cookie").is_none());
    }
    // Without `back`: a 401 page.
    let res = post_form(
        gw.frontend,
        "/QvAJAXZfc/Authenticate.aspx?try=/QvAJAXZfc/opendoc.htm",
        "username=x&password=y",
    )
    .await;
    assert_eq!(res.status, 401);
    // An unsafe `try` is refused before any password is checked.
    let res = post_form(
        gw.frontend,
        "/QvAJAXZfc/Authenticate.aspx?try=https://evil.example/",
        "username=ACME%5Cjdoe&password=s3cret",
    )
    .await;
    assert_ne!(res.status, 302);
    assert!(res.header("set-cookie").is_none());
}

#[tokio::test]
async fn without_a_users_file_there_is_no_form_login() {
    let gw = TestGateway::start("").await;
    let res = post_form(
        gw.frontend,
        "/QvAJAXZfc/Authenticate.aspx?try=/x",
        "username=a&password=b",
    )
    .await;
    assert_eq!(res.status, 405);
    assert!(res.header("set-cookie").is_none());
}

#[test]
fn a_users_file_with_a_plain_password_is_refused_at_start_up() {
    let path = write(
        "users",
        "[users]\n'ACME\\jdoe' = { password = \"s3cret\" }\n",
    );
    let settings =
        ticket_gateway::Settings::from_toml(&format!("[demo]\nusers_file = {path:?}\n")).unwrap();
    let e = ticket_gateway::Gateway::check(&settings)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("demo.users_file") && e.contains("hash-password"),
        "{e}"
    );
}
