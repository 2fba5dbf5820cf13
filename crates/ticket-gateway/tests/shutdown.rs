//! Graceful shutdown of the binary: on SIGTERM a request in flight through a slow back end
//! completes, new connections are refused at once, and the process exits 0 within the grace
//! period; SIGINT exits 0 too. The same holds for a binary allowed one CPU (`taskset`),
//! which runs its single-threaded runtime. And a binary on `[store] backend = "redis"` serves, sharing
//! its tickets with a second one on the same Redis.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Child;
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_ticket-gateway");

/// How long the test back end holds each request.
const HOLD: Duration = Duration::from_secs(1);

/// The grace period the gateways under test are given.
const GRACE_SECONDS: u64 = 5;

/// A file in the target directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(text: &str) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "shutdown-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, text).expect("write the configuration");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running binary: its addresses and its log lines.
struct Gateway {
    child: Child,
    frontend: SocketAddr,
    api: SocketAddr,
    start_up: String,
    log: mpsc::UnboundedReceiver<String>,
    _config: TempFile,
}

/// Which CPUs the binary may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cpus {
    /// As many as the test may use.
    All,
    /// One (the first the test may use), by `taskset`: the binary then runs its
    /// single-threaded runtime.
    One,
}

/// The first CPU this process may run on, as `/proc/self/status` lists them.
fn first_allowed_cpu() -> String {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in /proc/self/status");
    list.trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .expect("a CPU")
        .to_owned()
}

/// How many of the process's threads are tokio's multi-thread workers (`tokio-rt-worker`).
fn runtime_workers(child: &Child) -> usize {
    let pid = child.id().expect("the binary runs");
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("list the binary's threads")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "tokio-rt-worker")
        .count()
}

/// Starts the binary on `config` (listeners on `127.0.0.1:0` are added) and reads the
/// start-up line for the addresses it bound.
async fn start(config: &str) -> Gateway {
    start_on(config, Cpus::All).await
}

/// [`start`] on the given CPUs.
async fn start_on(config: &str, cpus: Cpus) -> Gateway {
    let file = TempFile::new(&format!(
        "[frontend]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [shutdown]\ngrace_seconds = {GRACE_SECONDS}\n{config}"
    ));
    let mut command = match cpus {
        Cpus::All => tokio::process::Command::new(BIN),
        Cpus::One => {
            let mut c = tokio::process::Command::new("taskset");
            c.arg("-c").arg(first_allowed_cpu()).arg(BIN);
            c
        }
    };
    let mut child = command
        .arg("--config")
        .arg(&file.0)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run the binary");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (tx, mut log) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start_up = wait_for(&mut log, "listening").await;
    let field = |name: &str| -> SocketAddr {
        let at = start_up
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("no {name}= in {start_up}"))
            + name.len()
            + 1;
        start_up[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    Gateway {
        frontend: field("frontend"),
        api: field("api"),
        start_up: start_up.clone(),
        child,
        log,
        _config: file,
    }
}

/// The next log line containing `needle`, within 20 s.
async fn wait_for(log: &mut mpsc::UnboundedReceiver<String>, needle: &str) -> String {
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = log.recv().await {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("the log ended without a line containing {needle:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no log line containing {needle:?} within 20 s"))
}

impl Gateway {
    fn signal(&self, name: &str) -> Instant {
        let pid = self.child.id().expect("still running").to_string();
        assert!(Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("run kill")
            .success());
        Instant::now()
    }

    /// Waits for the process to exit, at most the grace period plus a second of slack, and
    /// returns its exit code and how long after `since` it exited.
    async fn exit(&mut self, since: Instant) -> (Option<i32>, Duration) {
        let status =
            tokio::time::timeout(Duration::from_secs(GRACE_SECONDS + 1), self.child.wait())
                .await
                .expect("the process exits within the grace period")
                .expect("wait for the process");
        (status.code(), since.elapsed())
    }
}

/// Sends one request with `Connection: close` and reads the whole reply.
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).await.expect("read");
    String::from_utf8_lossy(&reply).into_owned()
}

/// A QPS ticket for `ACME\jdoe` from the API.
async fn qps_ticket(api: SocketAddr) -> String {
    let body = r#"{"UserDirectory":"ACME","UserId":"jdoe"}"#;
    let reply = exchange(
        api,
        &format!(
            "POST /qps/ticket?xrfkey=abcdefghijklmnop HTTP/1.1\r\nHost: x\r\nX-Qlik-Xrfkey: abcdefghijklmnop\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    let json = reply.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["Ticket"].as_str().unwrap().to_owned()
}

/// The `name=value` of a reply's `Set-Cookie`.
fn set_cookie(reply: &str) -> Option<String> {
    reply
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// A back end that holds every request for [`HOLD`] before answering `200`, and says on
/// `arrived` when a request has reached it.
async fn slow_back_end(arrived: mpsc::UnboundedSender<()>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind back end");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let arrived = arrived.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = arrived.send(());
                tokio::time::sleep(HOLD).await;
                let body = "slow answer";
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_refuses_new_ones_and_exits_0() {
    sigterm_with_a_request_in_flight(Cpus::All).await;
}

#[tokio::test]
async fn on_one_cpu_the_binary_proxies_and_shuts_down_the_same() {
    sigterm_with_a_request_in_flight(Cpus::One).await;
}

async fn sigterm_with_a_request_in_flight(cpus: Cpus) {
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let back_end = slow_back_end(arrived_tx).await;
    let mut gw = start_on(
        &format!("[[virtual_proxy]]\nprefix = \"\"\nupstream = \"http://{back_end}\"\n"),
        cpus,
    )
    .await;
    // One CPU, one event loop: no runtime worker threads beside the main thread.
    let workers = runtime_workers(&gw.child);
    match cpus {
        Cpus::One => assert_eq!(workers, 0, "worker threads on one CPU"),
        Cpus::All if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 => {
            assert!(workers > 0, "no worker threads on several CPUs")
        }
        Cpus::All => {}
    }

    let ticket = qps_ticket(gw.api).await;
    let frontend = gw.frontend;
    let in_flight = tokio::spawn(async move {
        let reply = exchange(
            frontend,
            &format!(
                "GET /hub/slow?qlikTicket={ticket} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        (reply, Instant::now())
    });
    tokio::time::timeout(Duration::from_secs(10), arrived.recv())
        .await
        .expect("the request reaches the back end")
        .expect("back end alive");

    let term = gw.signal("TERM");
    wait_for(&mut gw.log, "SIGTERM received").await;
    // New connections are refused as soon as shutdown begins, on both listeners, while
    // the request is still at the back end.
    let deadline = term + Duration::from_secs(3);
    let mut refused_at = None;
    while Instant::now() < deadline {
        let f = TcpStream::connect(gw.frontend).await;
        let a = TcpStream::connect(gw.api).await;
        if f.is_err() && a.is_err() {
            refused_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused_at = refused_at.expect("new connections refused within 3 s of SIGTERM");
    assert!(
        !in_flight.is_finished(),
        "the request finished before new connections were refused"
    );

    let (reply, answered_at) = tokio::time::timeout(Duration::from_secs(GRACE_SECONDS), in_flight)
        .await
        .expect("the request in flight completes")
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.ends_with("slow answer"), "{reply}");
    assert!(
        set_cookie(&reply).is_some_and(|c| c.starts_with("X-Qlik-Session-HTTP=")),
        "{reply}"
    );
    assert!(answered_at > refused_at);

    let (code, took) = gw.exit(term).await;
    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(GRACE_SECONDS),
        "exited after {took:?}"
    );
    println!(
        "SIGTERM ({cpus:?} CPUs): refused new connections after {:?}, in-flight answered after {:?}, exit 0 after {took:?}",
        refused_at - term,
        answered_at - term
    );
}

#[tokio::test]
async fn sigint_exits_0() {
    let mut gw = start("").await;
    let reply = exchange(
        gw.frontend,
        "GET /hub/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 302"), "{reply}");
    // An idle keep-alive connection does not hold the exit up.
    let mut idle = TcpStream::connect(gw.api).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let int = gw.signal("INT");
    wait_for(&mut gw.log, "SIGINT received").await;
    let (code, took) = gw.exit(int).await;
    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(GRACE_SECONDS),
        "exited after {took:?}"
    );
}

// ---- Redis ---------------------------------------------------------------------------------

/// A throwaway `redis-server` on a free loopback port, killed when dropped (the same way
/// the workspace's `gateway-tests` crate starts one, which this crate cannot reach).
struct Redis {
    child: std::process::Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    /// `None` (the test skips) without `redis-server` on `PATH`, except under `CI=true`.
    fn start() -> Option<Redis> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let Some(binary) = std::env::split_paths(&path)
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
        else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("redis-server not found on PATH, and CI=true requires the Redis tests (apt-get install redis-server)");
            }
            println!("redis test skipped: redis-server not found (apt-get install redis-server)");
            return None;
        };
        let mut failures = Vec::new();
        for attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let dir = std::env::temp_dir().join(format!(
                "ticket-gateway-shutdown-redis-{}-{port}-{attempt}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).expect("scratch directory");
            let mut child = Command::new(&binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("run redis-server");
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                use std::io::BufRead;
                let mut ready = false;
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if !ready && line.contains("Ready to accept connections") {
                        ready = true;
                        let _ = tx.send(());
                    }
                }
            });
            match rx.recv_timeout(Duration::from_secs(15)) {
                Ok(()) => return Some(Redis { child, port, dir }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = std::fs::remove_dir_all(&dir);
                    failures.push(format!("port {port}: {e}"));
                }
            }
        }
        panic!("redis-server did not start: {failures:?}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_binary_on_the_redis_store_serves_and_shares_tickets_with_another() {
    let Some(redis) = tokio::task::spawn_blocking(Redis::start).await.unwrap() else {
        return;
    };
    let config = format!(
        "[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\nkey_prefix = \"shutdown-test:\"\n",
        redis.port
    );
    let mut a = start(&config).await;
    let mut b = start(&config).await;
    assert!(a.start_up.contains("store=redis"), "{}", a.start_up);

    let ready = exchange(
        a.api,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    // Issued by A, redeemed at B, the session used on A.
    let ticket = qps_ticket(a.api).await;
    let reply = exchange(
        b.frontend,
        &format!("GET /hub/?qlikTicket={ticket} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let cookie = set_cookie(&reply).expect("a session cookie");
    let reply = exchange(
        a.frontend,
        &format!("GET /hub/ HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""userId":"jdoe""#), "{reply}");

    for gw in [&mut a, &mut b] {
        let term = gw.signal("TERM");
        let (code, _) = gw.exit(term).await;
        assert_eq!(code, Some(0));
    }
}
