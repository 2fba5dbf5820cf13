//! nginx and HAProxy: the gateway's peers on the proxied path.
//!
//! Each is configured as a user would for this job (`crates/bench/peers/`, built into this
//! binary and rendered with ports and paths at run time): a keep-alive pool toward the
//! back end, the forwarding headers and one identity header
//! (`X-Qlik-User: UserDirectory=BENCH; UserId=bench`), WebSocket upgrades passed through,
//! bodies streamed, an access log written to a file. Each runs one worker (nginx: a master
//! and one worker process; HAProxy: one process, one thread) pinned to the servers' CPU,
//! where the gateway runs, in front of the same back end. Every path they write (pid,
//! logs, temporary files) is under `<out>/<peer>/`, so neither needs root.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::procs::{self, Launcher, Proc, START_TIMEOUT};

/// The nginx configuration template.
pub const NGINX_CONF: &str = include_str!("../peers/nginx.conf");
/// The HAProxy configuration template.
pub const HAPROXY_CFG: &str = include_str!("../peers/haproxy.cfg");

/// A peer proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerKind {
    /// nginx (Debian 12: 1.22).
    Nginx,
    /// HAProxy (Debian 12: 2.6).
    Haproxy,
}

impl PeerKind {
    /// Its name in the table's `server` and `reference` columns.
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Nginx => "nginx",
            PeerKind::Haproxy => "haproxy",
        }
    }

    /// Its program.
    pub fn program(self) -> &'static str {
        self.name()
    }

    fn template(self) -> (&'static str, &'static str) {
        match self {
            PeerKind::Nginx => ("nginx.conf", NGINX_CONF),
            PeerKind::Haproxy => ("haproxy.cfg", HAPROXY_CFG),
        }
    }
}

/// A running peer.
#[derive(Debug)]
pub struct Peer {
    /// Which one.
    pub kind: PeerKind,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its processes (nginx: the master, then its worker), whose CPU time is its cost.
    pub pids: Vec<u32>,
    /// Its access log.
    pub log: PathBuf,
    /// The process started (nginx's master).
    proc: Proc,
}

impl Drop for Peer {
    /// nginx's master stops its workers on SIGTERM; a worker outliving a killed master
    /// would hold the port. HAProxy stops on SIGTERM too.
    fn drop(&mut self) {
        signal("TERM", &[self.proc.pid]);
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.proc.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.proc.exited().is_none() {
            signal("KILL", &self.pids);
        }
    }
}

fn signal(name: &str, pids: &[u32]) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// Replaces every `{{name}}` of `template` by its value; a placeholder without a value is
/// an error, so a template and its caller cannot drift apart silently.
pub fn render(template: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("an unclosed {{ in the template")?;
        let name = &after[..end];
        let value = vars
            .iter()
            .find_map(|(k, v)| (*k == name).then_some(*v))
            .ok_or_else(|| format!("no value for {{{{{name}}}}}"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Renders `kind`'s configuration into `<work_dir>/<peer>/`, starts it in the foreground
/// on the servers' CPUs in front of `upstream`, and waits until it accepts connections.
pub fn start(launcher: &Launcher, kind: PeerKind, upstream: SocketAddr) -> Result<Peer, String> {
    let dir = launcher.work_dir.join(kind.name());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir_text = dir.to_str().ok_or("the output directory is not UTF-8")?;
    let port = procs::free_port()?;
    let (file, template) = kind.template();
    let config = render(
        template,
        &[
            ("dir", dir_text),
            ("listen", &port.to_string()),
            ("upstream", &upstream.to_string()),
        ],
    )?;
    let config_path = dir.join(file);
    std::fs::write(&config_path, config).map_err(|e| format!("{}: {e}", config_path.display()))?;
    let log = dir.join("access.log");
    let stderr_path = dir.join("stderr.log");
    let stderr = procs::append_log(&stderr_path)?;
    let program = Path::new(kind.program());
    let mut command = launcher.command(program);
    match kind {
        PeerKind::Nginx => {
            // Emptied here; nginx opens it for appending itself.
            std::fs::write(&log, "").map_err(|e| format!("{}: {e}", log.display()))?;
            command
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&config_path)
                .arg("-e")
                .arg(dir.join("error.log"))
                .args(["-g", "daemon off;"])
                .stdout(Stdio::null());
        }
        PeerKind::Haproxy => {
            // `log stdout`: the access log is its standard output.
            command
                .arg("-f")
                .arg(&config_path)
                .arg("-db")
                .stdout(procs::append_log(&log)?);
        }
    }
    let mut proc = Proc::spawn(command.stderr(stderr))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect(addr).is_ok() {
            break;
        }
        let why = if let Some(status) = proc.exited() {
            format!("{} stopped ({status})", kind.name())
        } else if Instant::now() > deadline {
            format!("{} did not listen on {addr}", kind.name())
        } else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let errors = std::fs::read_to_string(&stderr_path).unwrap_or_default()
            + &std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        return Err(format!("{why}: {}", errors.trim()));
    }
    let mut pids = vec![proc.pid];
    if kind == PeerKind::Nginx {
        // The master forks its worker before it listens; give it a moment to show.
        let deadline = Instant::now() + Duration::from_secs(2);
        while procs::children(proc.pid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        pids.extend(procs::children(proc.pid));
    }
    Ok(Peer {
        kind,
        addr,
        pids,
        log,
        proc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_with_every_placeholder_filled() {
        let vars = [
            ("dir", "/tmp/x"),
            ("listen", "4000"),
            ("upstream", "127.0.0.1:5000"),
        ];
        for template in [NGINX_CONF, HAPROXY_CFG] {
            let text = render(template, &vars).unwrap();
            assert!(!text.contains("{{"));
            assert!(text.contains("127.0.0.1:4000"));
            assert!(text.contains("127.0.0.1:5000"));
            assert!(text.contains("UserDirectory=BENCH; UserId=bench"));
            assert!(text.contains("/tmp/x/"));
        }
        let nginx = render(NGINX_CONF, &vars).unwrap();
        for line in [
            "keepalive 64;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "worker_processes 1;",
        ] {
            assert!(nginx.contains(line), "{line}");
        }
        let haproxy = render(HAPROXY_CFG, &vars).unwrap();
        assert!(haproxy.contains("http-reuse always"));
        assert!(haproxy.contains("nbthread 1"));
    }

    #[test]
    fn rendering_refuses_unknown_placeholders() {
        assert_eq!(render("a {{x}} b", &[("x", "1")]).unwrap(), "a 1 b");
        assert!(render("a {{y}} b", &[("x", "1")]).is_err());
        assert!(render("a {{x b", &[("x", "1")]).is_err());
    }
}
