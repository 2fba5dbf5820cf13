//! The processes under test (hello, the gateway, a private redis-server) and what `/proc`
//! says about them.
//!
//! Servers are pinned to their own core with `taskset` so the load generator (pinned to
//! another by `scripts/bench`) never steals their CPU, and their CPU time is read from
//! `/proc/<pid>/stat` so "CPU µs per request" is the server's cost, not the machine's. The
//! one exception is the upstream of `proxied`: it is pinned to the load generator's core,
//! so that `direct` and `proxied` load that core with the same client and back end and the
//! servers' core carries only the server under test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::workload::PROXY_PREFIX;

/// How long a server gets to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the binaries are and how servers are pinned.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The release `ticket-gateway`.
    pub gateway: PathBuf,
    /// The release `hello`.
    pub hello: PathBuf,
    /// `taskset -c <cpus>` for servers; `None` runs them unpinned.
    pub server_cpus: Option<String>,
    /// `taskset -c <cpus>` for the upstream hello, where the load generator runs; `None`
    /// runs it unpinned.
    pub loadgen_cpus: Option<String>,
    /// `RUST_LOG` of the gateway.
    pub rust_log: String,
    /// Where temporary configurations go.
    pub work_dir: PathBuf,
}

/// A child process, killed when dropped: a benchmark that fails half-way leaves nothing
/// running.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// Its process id (the server itself: `taskset` execs it).
    pub pid: u32,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// The process.
    pub proc: Proc,
    /// The front end's bound address.
    pub frontend: SocketAddr,
    /// The API's bound address.
    pub api: SocketAddr,
    /// The `store=` the start-up line names.
    pub store: String,
    /// Where its log goes.
    pub log: PathBuf,
}

impl Gateway {
    /// Empties the log file, so a full run's logging does not pile up on disk. The gateway
    /// appends, so it carries on at the new end.
    pub fn clear_log(&self) {
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&self.log) {
            let _ = f.set_len(0);
        }
    }
}

/// What goes into a gateway's temporary configuration.
#[derive(Debug, Clone, Default)]
pub struct GatewayConfig {
    /// `upstream` of a virtual proxy of its own, [`PROXY_PREFIX`]. The default virtual
    /// proxy has none: the identity page answers a redeemed ticket there.
    pub proxy_upstream: Option<SocketAddr>,
    /// `[store] backend = "redis"` with this `url`.
    pub redis_url: Option<String>,
    /// `[tickets] ttl_seconds`.
    pub ticket_ttl_seconds: Option<u64>,
}

impl GatewayConfig {
    /// The TOML text: both listeners on ephemeral loopback ports, and the proxying virtual
    /// proxy. The default virtual proxy keeps its defaults.
    pub fn toml(&self) -> String {
        let mut t =
            String::from("[frontend]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n");
        if let Some(ttl) = self.ticket_ttl_seconds {
            t += &format!("[tickets]\nttl_seconds = {ttl}\n");
        }
        if let Some(url) = &self.redis_url {
            t += &format!("[store]\nbackend = \"redis\"\nurl = \"{url}\"\n");
        }
        if let Some(up) = self.proxy_upstream {
            t += &format!(
                "[[virtual_proxy]]\nprefix = \"{PROXY_PREFIX}\"\nupstream = \"http://{up}\"\n"
            );
        }
        t
    }
}

impl Launcher {
    fn command(&self, program: &Path) -> Command {
        Launcher::pinned(program, self.server_cpus.as_deref())
    }

    fn pinned(program: &Path, cpus: Option<&str>) -> Command {
        match cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// Starts the hello server of the ceiling, on the servers' CPUs.
    pub fn hello(&self) -> Result<(Proc, SocketAddr), String> {
        self.hello_on(self.server_cpus.as_deref())
    }

    /// Starts the hello server behind the gateway, on the load generator's CPUs.
    pub fn upstream(&self) -> Result<(Proc, SocketAddr), String> {
        self.hello_on(self.loadgen_cpus.as_deref())
    }

    /// Starts a hello server on `cpus`; it prints its address on stdout.
    fn hello_on(&self, cpus: Option<&str>) -> Result<(Proc, SocketAddr), String> {
        let mut child = Launcher::pinned(&self.hello, cpus)
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.hello.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let proc = Proc {
            pid: child.id(),
            child,
        };
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("hello: {e}"))?;
        let addr = line
            .trim()
            .parse()
            .map_err(|_| format!("hello printed {line:?}, not an address"))?;
        Ok((proc, addr))
    }

    /// Writes `config` to a file and asks the gateway whether it accepts it
    /// (`--check-config`). `Err` holds the gateway's own one-line refusal.
    pub fn write_config(&self, name: &str, config: &GatewayConfig) -> Result<PathBuf, String> {
        let path = self.work_dir.join(format!("{name}.toml"));
        std::fs::write(&path, config.toml()).map_err(|e| format!("{}: {e}", path.display()))?;
        let out = Command::new(&self.gateway)
            .arg("--config")
            .arg(&path)
            .arg("--check-config")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.gateway.display()))?;
        if out.status.success() {
            Ok(path)
        } else {
            let text = String::from_utf8_lossy(&out.stderr);
            Err(text.trim().lines().last().unwrap_or("refused").to_owned())
        }
    }

    /// Starts the gateway on a checked configuration and waits for its start-up line
    /// (`ticket-gateway listening frontend=… api=…`), which names the ephemeral ports. Its
    /// log keeps being read and dropped so a full pipe never stalls it.
    pub fn gateway(&self, config: &Path) -> Result<Gateway, String> {
        // The log goes to a file beside the configuration, as a deployed gateway's does:
        // a pipe would need a reader, and that reader would run on the load generator's
        // CPU. The file is emptied before every measured window (see `Gateway::clear_log`).
        let log = config.with_extension("log");
        // Appending, so that after the file is emptied the next batch lands at its start.
        let file = std::fs::File::create(&log)
            .and_then(|_| std::fs::OpenOptions::new().append(true).open(&log))
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = self
            .command(&self.gateway)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", &self.rust_log)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.gateway.display()))?;
        let mut proc = Proc {
            pid: child.id(),
            child,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let line = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .find(|l| l.contains("ticket-gateway listening"))
            {
                break line.to_owned();
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(format!(
                    "the gateway stopped before listening ({status}):\n{text}"
                ));
            }
            if Instant::now() > deadline {
                return Err("the gateway did not say where it listens".into());
            }
            // The gateway writes its log in batches every few milliseconds.
            std::thread::sleep(Duration::from_millis(10));
        };
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(|v| v.trim_matches('"').to_owned())
        };
        let addr = |name: &str| {
            field(name)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no {name}ADDR in {line:?}"))
        };
        Ok(Gateway {
            frontend: addr("frontend=")?,
            api: addr("api=")?,
            store: field("store=").unwrap_or_default(),
            proc,
            log,
        })
    }

    /// Starts a private, non-persistent `redis-server` on a free port and waits for PONG.
    /// It runs on the load generator's CPUs, like the upstream: what the gateway depends on
    /// stands beside the client, and the servers' CPUs hold the server under test alone.
    pub fn redis(&self) -> Result<(Proc, u16), String> {
        let port = free_port()?;
        let child = Launcher::pinned(Path::new("redis-server"), self.loadgen_cpus.as_deref())
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let proc = Proc {
            pid: child.id(),
            child,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if ping(port) {
                return Ok((proc, port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("redis-server did not answer on port {port}"))
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0u8; 7];
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// Whether a program is on `PATH`.
pub fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s: ExitStatus| s.success())
}

/// Clock ticks per second of `/proc/<pid>/stat` times. Asked of `getconf` (the crate
/// forbids `unsafe`, so no `sysconf` call); Linux uses 100 everywhere in practice.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    cpu_seconds_at(&format!("/proc/{pid}"))
}

/// CPU time this process (every thread of it) has used so far, in seconds.
pub fn cpu_seconds_self() -> Result<f64, String> {
    cpu_seconds_at("/proc/self")
}

fn cpu_seconds_at(proc_dir: &str) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("{proc_dir}/stat"))
        .map_err(|e| format!("{proc_dir}/stat: {e}"))?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' come field 3 (state) onwards; utime and stime are fields 14 and 15.
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(u), Some(s)) => Ok((u + s) as f64 / clock_ticks()),
        _ => Err(format!("{proc_dir}/stat: unexpected format")),
    }
}

/// CPU seconds of several processes together.
pub fn cpu_seconds_all(pids: &[u32]) -> Result<f64, String> {
    pids.iter().map(|&p| cpu_seconds(p)).sum()
}

/// The CPUs this process may run on (`Cpus_allowed_list`, e.g. `1` or `0-1`).
pub fn own_cpus() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_owned())
}

/// Resident memory (`VmRSS`) of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("/proc/{pid}/status: no VmRSS"))
}
