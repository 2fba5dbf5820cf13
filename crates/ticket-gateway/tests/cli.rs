//! The binary: configuration errors exit 64 with one line naming the key, `--check-config`
//! validates, and a running gateway says where it listens and stops cleanly on SIGTERM.

use std::io::Write;
use std::process::{Command, Stdio};

use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_ticket-gateway");

fn config(text: &str) -> tempfile_path::TempPath {
    tempfile_path::write(text)
}

/// A uniquely named file in the target directory, removed on drop.
mod tempfile_path {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(super) struct TempPath(pub(super) PathBuf);

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    pub(super) fn write(text: &str) -> TempPath {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!(
            "cli-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, text).unwrap();
        TempPath(path)
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_example_configuration_checks_out() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../gateway.example.toml");
    let (code, out, err) = run(&["--config", example, "--check-config"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration OK"), "{out}");
    let (code, _, _) = run(&["--check-config"]);
    assert_eq!(code, 0, "the embedded defaults are valid");
}

#[test]
fn configuration_errors_exit_64_with_one_line_naming_the_key() {
    for (text, key) in [
        ("[frontend]\nlisten = \"localhost\"\n", "frontend.listen"),
        ("[api]\nlisen = \"127.0.0.1:1\"\n", "api.lisen"),
        ("[tickets]\nttl_seconds = -1\n", "tickets.ttl_seconds"),
        ("[[virtual_proxy]]\nprefix = \"a\"\n[[virtual_proxy]]\nprefix = \"a\"\n", "virtual_proxy[1].prefix"),
        (
            "[[virtual_proxy]]\nprefix = \"a\"\nsession_cookie_name = \"S\"\n[[virtual_proxy]]\nprefix = \"b\"\nsession_cookie_name = \"S\"\n",
            "virtual_proxy[1].session_cookie_name",
        ),
        ("not toml at all", ""),
    ] {
        let file = config(text);
        let (code, _, err) = run(&["--config", file.0.to_str().unwrap(), "--check-config"]);
        assert_eq!(code, 64, "{text}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(key), "{key} in {err}");
        assert!(!err.contains("panicked"));
    }
    let (code, _, err) = run(&["--config", "/no/such/file.toml"]);
    assert_eq!(code, 64);
    assert!(err.contains("/no/such/file.toml"), "{err}");
}

#[tokio::test]
async fn it_says_where_it_listens_serves_and_stops_on_sigterm() {
    let file = config("[frontend]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n");
    let mut child = tokio::process::Command::new(BIN)
        .args(["--config", file.0.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.contains("listening") {
                return l;
            }
        }
        panic!("no start-up line");
    })
    .await
    .expect("start-up line in time");
    let field = |name: &str| -> std::net::SocketAddr {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (frontend, api) = (field("frontend"), field("api"));
    assert_ne!(frontend.port(), 0);
    assert_ne!(api.port(), 0);

    // A request gets an answer.
    let mut s = std::net::TcpStream::connect(frontend).unwrap();
    s.write_all(b"GET /hub/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut s, &mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 302"), "{reply}");

    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("exits in time")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Sends one request and returns the whole reply (the connection is closed by the server).
fn http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut s, &mut reply).unwrap();
    reply
}

/// The groups the gateway gives `bob` when the portal sends none.
fn groups_of_bob(frontend: std::net::SocketAddr) -> String {
    let body = "<Global method=\"GetWebTicket\"><UserId>bob</UserId></Global>";
    let reply = http(
        frontend,
        &format!("POST /QvAJAXZfc/GetWebTicket.aspx HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
    );
    let ticket = reply
        .split("<_retval_>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let reply = http(
        frontend,
        &format!("GET /QvAJAXZfc/Authenticate.aspx?try=/QlikView/&webticket={ticket} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    let cookie = reply
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let reply = http(
        frontend,
        &format!("GET /QlikView/ HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    );
    let json = reply.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["groups"].to_string()
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStderr>>;

/// The next log line containing `needle`, within 20 s.
async fn wait_for(lines: &mut Lines, needle: &str) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.contains(needle) {
                return l;
            }
        }
        panic!("no line with {needle}");
    })
    .await
    .expect("in time")
}

#[tokio::test]
async fn sighup_reloads_the_group_directory_and_keeps_the_last_good_one() {
    let groups = config("[users]\nbob = [\"Finance\"]\n");
    let file = config(&format!(
        "[frontend]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n[qlikview]\ngroup_directory = {:?}\n",
        groups.0.display().to_string()
    ));
    let mut child = tokio::process::Command::new(BIN)
        .args(["--config", file.0.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = wait_for(&mut lines, "listening").await;
    let at = line.find("frontend=").unwrap() + "frontend=".len();
    let frontend: std::net::SocketAddr = line[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let pid = child.id().unwrap().to_string();

    assert_eq!(groups_of_bob(frontend), r#"["Finance"]"#);
    std::fs::write(&groups.0, "[users]\nbob = [\"Finance\", \"Audit\"]\n").unwrap();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    wait_for(&mut lines, "group directory reloaded").await;
    assert_eq!(groups_of_bob(frontend), r#"["Finance","Audit"]"#);

    std::fs::write(&groups.0, "[users]\nbob = [\"Finance\"\n").unwrap();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let err = wait_for(&mut lines, "not reloaded").await;
    assert!(err.contains("line"), "{err}");
    assert_eq!(groups_of_bob(frontend), r#"["Finance","Audit"]"#);
    let _ = child.kill().await;
}

#[test]
fn a_bad_group_directory_at_start_up_names_the_line() {
    let groups = config("[users]\nbob = \"Finance\"\n");
    let file = config(&format!(
        "[qlikview]\ngroup_directory = {:?}\n",
        groups.0.display().to_string()
    ));
    let (code, _, err) = run(&["--config", file.0.to_str().unwrap(), "--check-config"]);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("qlikview.group_directory") && err.contains("line 2"),
        "{err}"
    );
}

#[tokio::test]
async fn control_characters_from_a_client_are_escaped_in_the_human_log() {
    let file = config("[frontend]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n");
    let mut child = tokio::process::Command::new(BIN)
        .args(["--config", file.0.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = wait_for(&mut lines, "listening").await;
    let at = line.find("api=").unwrap() + 4;
    let api: std::net::SocketAddr = line[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // A user id holding NUL, ESC (a terminal colour sequence), a C1 control and DEL.
    let body = r#"{"UserDirectory":"ACME","UserId":"ev\u0000il\u001b[31m\u0085x\u007f"}"#;
    let reply = http(
        api,
        &format!(
            "POST /qps/ticket?xrfkey=abcdefghijklmnop HTTP/1.1\r\nHost: x\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    let audit = wait_for(&mut lines, "ticket_issued").await;
    assert!(
        !audit.bytes().any(|b| b < 0x20 || b == 0x7f) && !audit.contains('\u{85}'),
        "raw control characters in {audit:?}"
    );
    assert!(
        audit.contains(r#"user_id="ev\0il\u{1b}[31m\u{85}x\u{7f}""#),
        "{audit}"
    );
}

#[test]
fn an_address_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let file = config(&format!(
        "[frontend]\nlisten = \"{addr}\"\n[api]\nlisten = \"127.0.0.1:0\"\n"
    ));
    let (code, _, err) = run(&["--config", file.0.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains(&addr.to_string()), "{err}");
    assert!(err.contains("frontend.listen"), "{err}");
}

#[test]
fn hash_password_prints_a_hash_the_users_file_takes() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let hash = |input: &str| {
        let mut child = Command::new(BIN)
            .arg("hash-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the binary");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
    };
    let (code, first) = hash("correct horse\n");
    assert_eq!(code, 0);
    assert!(first.starts_with("$argon2id$"), "{first}");
    let parsed = PasswordHash::new(&first).unwrap();
    let argon = argon2::Argon2::default();
    assert!(argon.verify_password(b"correct horse", &parsed).is_ok());
    assert!(argon.verify_password(b"correct horse\n", &parsed).is_err());
    // Salted: the same password hashes differently each time.
    assert_ne!(hash("correct horse\n").1, first);
    // Nothing to hash: an error, not a hash of the empty string.
    assert_ne!(hash("").0, 0);
    // The hash is what a users file takes.
    let users = config(&format!(
        "[users]\n'ACME\\jdoe' = {{ password = \"{first}\" }}\n"
    ));
    let cfg = config(&format!("[demo]\nusers_file = {:?}\n", users.0));
    let (code, out, err) = run(&["--config", &cfg.0.display().to_string(), "--check-config"]);
    assert_eq!(code, 0, "{out}{err}");
}
