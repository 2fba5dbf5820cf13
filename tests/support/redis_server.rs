//! A throwaway `redis-server` per test, on a free loopback port.
//!
//! Tests must never touch a Redis someone else runs (port 6379 least of all), so each
//! server is started here with no persistence, in its own scratch directory, and killed
//! when dropped. Readiness is read from the server's own log line rather than guessed
//! with a sleep. Without `redis-server` on `PATH` the Redis tests skip themselves, except
//! under `CI=true`, where a missing server is a broken build machine.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The line `redis-server` logs once it accepts connections.
const READY_LINE: &str = "Ready to accept connections";

/// Fresh ports tried when the one picked is taken before the server binds it.
const PORT_ATTEMPTS: usize = 5;

/// A running `redis-server`, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port of 127.0.0.1 and waits until it accepts
    /// connections. Returns `None` (and says so) when `redis-server` is not installed.
    ///
    /// # Panics
    /// When `redis-server` is missing and `CI` is `true`, or when it does not start.
    pub fn start() -> Option<RedisServer> {
        let Some(binary) = find_on_path("redis-server") else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("redis-server not found on PATH, and CI=true requires the Redis tests (apt-get install redis-server)");
            }
            println!("redis tests skipped: redis-server not found (apt-get install redis-server)");
            return None;
        };
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = match free_port() {
                Ok(port) => port,
                Err(e) => panic!("no free loopback port: {e}"),
            };
            let mut server = RedisServer {
                binary: binary.clone(),
                port,
                dir: scratch_dir(port),
                child: None,
            };
            match server.spawn() {
                Ok(()) => return Some(server),
                Err(e) => failures.push(format!("port {port}: {e}")),
            }
        }
        panic!("redis-server did not start:\n{}", failures.join("\n"));
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port the server listens on (the same across [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends one command in the server's own protocol on a fresh connection, bypassing any
    /// store, and returns its reply: the text of a status, an integer, or a bulk string
    /// (`None` for a nil bulk), or `Err` with the text of an error reply. Arrays are not
    /// read: tests ask for no command that answers with one.
    pub async fn command(&self, args: &[&str]) -> Result<Option<String>, String> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to the test redis-server");
        let mut stream = BufReader::new(stream);
        let mut cmd = format!("*{}\r\n", args.len());
        for arg in args {
            cmd.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream
            .get_mut()
            .write_all(cmd.as_bytes())
            .await
            .expect("send the command");
        let mut line = String::new();
        stream.read_line(&mut line).await.expect("read the reply");
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1.min(line.len()));
        match kind {
            "+" | ":" => Ok(Some(rest.to_owned())),
            "-" => Err(rest.to_owned()),
            "$" if rest == "-1" => Ok(None),
            "$" => {
                let len: usize = rest.parse().expect("bulk length");
                let mut bulk = vec![0u8; len + 2];
                stream.read_exact(&mut bulk).await.expect("read the bulk");
                bulk.truncate(len);
                Ok(Some(String::from_utf8(bulk).expect("UTF-8 bulk")))
            }
            _ => panic!("unexpected reply to {args:?}: {line:?}"),
        }
    }

    /// Whether the server process is running (between `start`/`restart` and `stop`).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server and waits for it to exit; its data is gone (nothing is saved).
    /// Does nothing when it is already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs and starts a new, empty one on the same port, waiting
    /// until it accepts connections.
    ///
    /// # Panics
    /// When the server does not come back (for example, the port was taken meanwhile).
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("redis-server did not restart on port {}: {e}", self.port);
        }
    }

    /// Starts the process and reads its log until the ready line. A thread keeps draining
    /// the log afterwards, so a full pipe never blocks the server.
    fn spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let mut child = Command::new(&self.binary)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--loglevel", "notice"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("no stdout pipe".into());
        };
        let (tx, rx) = mpsc::channel::<Result<(), String>>();
        std::thread::spawn(move || {
            let mut log = Vec::new();
            let mut ready = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !ready {
                    if line.contains(READY_LINE) {
                        ready = true;
                        let _ = tx.send(Ok(()));
                    } else {
                        log.push(line);
                    }
                }
            }
            if !ready {
                let _ = tx.send(Err(format!(
                    "exited before it was ready:\n{}",
                    log.join("\n")
                )));
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(())) => {
                self.child = Some(child);
                Ok(())
            }
            Ok(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("not ready within {READY_TIMEOUT:?}"))
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first `name` on `PATH` that is a file.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A port nothing listens on right now: the kernel's pick for `127.0.0.1:0`.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A scratch directory for one server, unique within this process and across processes.
fn scratch_dir(port: u16) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "gateway-tests-redis-{}-{port}-{n}",
        std::process::id()
    ))
}

/// A TCP relay in front of a server that can freeze the connections it carries: they stay
/// open, but nothing passes any more, as when a server's host drops off the network
/// without closing anything. Connections made after a freeze pass normally. Stops (and
/// closes everything it carries) when dropped.
#[derive(Debug)]
pub struct Relay {
    addr: std::net::SocketAddr,
    freeze: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// A relay on a free loopback port to the server on `port`.
    pub async fn start(port: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let (freeze, _) = tokio::sync::watch::channel(0u64);
        let freezes = freeze.subscribe();
        let task = tokio::spawn(async move {
            // Owned here: aborting the relay aborts every connection it carries.
            let mut carried = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                carried.spawn(carry(client, port, freezes.clone()));
            }
        });
        Relay { addr, freeze, task }
    }

    /// `redis://` URL of the relay.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Freezes every connection open now.
    pub fn freeze(&self) {
        self.freeze.send_modify(|n| *n += 1);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Passes bytes both ways between `client` and the server until either side closes, or,
/// once frozen, holds both sockets open and passes nothing.
async fn carry(
    client: tokio::net::TcpStream,
    port: u16,
    mut freeze: tokio::sync::watch::Receiver<u64>,
) {
    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    freeze.borrow_and_update();
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let pump = async {
        tokio::try_join!(
            tokio::io::copy(&mut client_rx, &mut server_tx),
            tokio::io::copy(&mut server_rx, &mut client_tx)
        )
    };
    tokio::select! {
        _ = pump => {}
        _ = freeze.changed() => std::future::pending::<()>().await,
    }
}
