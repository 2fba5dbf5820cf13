//! The processes under test (hello, the gateway, the minimal ticket server, a private
//! redis-server; nginx and HAProxy are in [`crate::peers`]) and what `/proc` says about
//! them.
//!
//! Servers are pinned to their own core with `taskset` so the load generator (pinned to
//! another by `scripts/bench`) never steals their CPU, and their CPU time is read from
//! `/proc/<pid>/stat` so "CPU µs per request" is the server's cost, not the machine's. The
//! one exception is the back end of the proxied workloads (the upstream): it is pinned to
//! the load generator's core, so that `direct` and every proxy load that core with the
//! same client and back end and the servers' core carries only the server under test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::workload::PROXY_PREFIX;

/// How long a server gets to say where it listens.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the binaries are and how servers are pinned.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The `ticket-gateway` to start: the release build beside this binary, or the old
    /// one of `BENCH_AGAINST`.
    pub gateway: PathBuf,
    /// The release `hello`.
    pub hello: PathBuf,
    /// The release `ticket-server`.
    pub ticket_server: PathBuf,
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

impl Proc {
    /// Starts `command`.
    pub fn spawn(command: &mut Command) -> Result<Proc, String> {
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
        Ok(Proc {
            pid: child.id(),
            child,
        })
    }

    /// The exit status, if it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
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
        truncate(&self.log);
    }
}

/// Empties a log file its writer opened for appending.
pub fn truncate(log: &Path) {
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(log) {
        let _ = f.set_len(0);
    }
}

/// A file opened for appending, created empty: a log that [`truncate`] can empty while its
/// writer carries on at the new end.
pub fn append_log(path: &Path) -> Result<std::fs::File, String> {
    std::fs::File::create(path)
        .and_then(|_| std::fs::OpenOptions::new().append(true).open(path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A running minimal ticket server.
#[derive(Debug)]
pub struct TicketServer {
    /// The process.
    pub proc: Proc,
    /// Its API listener.
    pub api: SocketAddr,
    /// Its front-end listener.
    pub frontend: SocketAddr,
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
    /// `program`, pinned to the servers' CPUs.
    pub fn command(&self, program: &Path) -> Command {
        Launcher::pinned(program, self.server_cpus.as_deref())
    }

    /// `program`, pinned to `cpus` (`None`: not pinned).
    pub fn pinned(program: &Path, cpus: Option<&str>) -> Command {
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
        let (proc, line) = first_line(
            Launcher::pinned(&self.hello, self.server_cpus.as_deref()).arg("127.0.0.1:0"),
        )?;
        let addr = line
            .parse()
            .map_err(|_| format!("hello printed {line:?}, not an address"))?;
        Ok((proc, addr))
    }

    /// Starts the back end of the proxied workloads (`hello --backend`), on the load
    /// generator's CPUs.
    pub fn upstream(&self) -> Result<(Proc, SocketAddr), String> {
        let (proc, line) = first_line(
            Launcher::pinned(&self.hello, self.loadgen_cpus.as_deref())
                .args(["--backend", "127.0.0.1:0"]),
        )?;
        let addr = line
            .parse()
            .map_err(|_| format!("hello printed {line:?}, not an address"))?;
        Ok((proc, addr))
    }

    /// Starts the minimal ticket server on the servers' CPUs; it prints
    /// `api=<addr> frontend=<addr>`.
    pub fn ticket_server(&self) -> Result<TicketServer, String> {
        let (proc, line) = first_line(self.command(&self.ticket_server).stderr(Stdio::null()))?;
        let addr = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("ticket-server printed {line:?}, not {name}ADDR"))
        };
        Ok(TicketServer {
            api: addr("api=")?,
            frontend: addr("frontend=")?,
            proc,
        })
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
        let file = append_log(&log)?;
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

/// Starts `command` with its stdout piped and returns its first line, trimmed: the address
/// a server says it listens on.
fn first_line(command: &mut Command) -> Result<(Proc, String), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut proc = Proc::spawn(command.stdout(Stdio::piped()))?;
    let stdout = proc.child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("{program}: {e}"))?;
    Ok((proc, line.trim().to_owned()))
}

/// A port free on loopback a moment ago, for servers that must be told their port.
pub fn free_port() -> Result<u16, String> {
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

/// The processes whose parent is `pid` (nginx's workers, under its master).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| parent_of(&stat))
                == Some(pid)
        })
        .collect()
}

/// The parent pid (field 4) of a `/proc/<pid>/stat` line.
fn parent_of(stat: &str) -> Option<u32> {
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_read_past_the_command_name() {
        let stat = "4242 (nginx: worker (x)) S 4241 4241 4241 0 -1 4194624 1 0 0 0 3 1";
        assert_eq!(parent_of(stat), Some(4241));
    }

    #[test]
    fn children_are_found() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let found = children(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()));
    }
}
