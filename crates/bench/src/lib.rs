//! The gateway's benchmark: a closed-loop HTTP/1.1 (and WebSocket) load generator, the
//! workloads, the processes under test (the gateway, its peers nginx and HAProxy, the
//! minimal ticket server) and the report. `src/main.rs` is the command line over it,
//! `src/bin/hello.rs` the ceiling and the back end, `src/bin/ticket-server.rs` the limit of
//! the login rows; `scripts/bench` runs it all.

pub mod http1;
pub mod load;
pub mod memory;
pub mod peers;
pub mod procs;
pub mod report;
pub mod run;
pub mod ticket_server;
pub mod workload;
pub mod ws;

use std::path::PathBuf;

use crate::procs::Launcher;

/// The runtime the benchmark's own servers (`hello`, `ticket-server`) run on, chosen as the
/// gateway chooses its own (`ticket_gateway::cli`): one event loop on the main thread when
/// the process may use one CPU, as the benchmark pins every server, a worker per CPU
/// otherwise. The references then stand on the same footing as the gateway.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    if std::thread::available_parallelism().is_ok_and(|n| n.get() == 1) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
}

/// Options every mode shares.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Measured seconds per run.
    #[arg(long, env = "BENCH_SECONDS", default_value_t = 10)]
    pub seconds: u64,
    /// Warm-up seconds before measuring.
    #[arg(long, env = "BENCH_WARMUP_SECONDS", default_value_t = 3)]
    pub warmup: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, env = "BENCH_CONNECTIONS", default_value_t = 64)]
    pub connections: usize,
    /// CPUs the servers are pinned to (`taskset -c`); empty: not pinned.
    #[arg(long, env = "BENCH_SERVER_CPUS", default_value = "0")]
    pub server_cpus: String,
    /// CPUs the load generator runs on: `scripts/bench` pins `gateway-bench` there, and
    /// the back end of the proxied workloads (and redis-server) is pinned there too;
    /// empty: not pinned.
    #[arg(long, env = "BENCH_LOADGEN_CPUS", default_value = "1")]
    pub loadgen_cpus: String,
    /// `RUST_LOG` of the gateway. Its default logs the audit trail, as deployed; the log
    /// is read and dropped by this process.
    #[arg(long, env = "BENCH_RUST_LOG", default_value = "info")]
    pub rust_log: String,
    /// Where results and temporary configurations go (default: `target/bench`).
    #[arg(long, env = "BENCH_OUT")]
    pub out: Option<PathBuf>,
}

impl Common {
    /// The output directory.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(run::default_out_dir)
    }

    /// Finds the release binaries beside this one.
    pub fn launcher(&self) -> Result<Launcher, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let dir = exe.parent().ok_or("no binary directory")?;
        let work_dir = self.out_dir();
        std::fs::create_dir_all(&work_dir).map_err(|e| format!("{}: {e}", work_dir.display()))?;
        let launcher = Launcher {
            gateway: dir.join("ticket-gateway"),
            hello: dir.join("hello"),
            ticket_server: dir.join("ticket-server"),
            server_cpus: (!self.server_cpus.is_empty()).then(|| self.server_cpus.clone()),
            loadgen_cpus: (!self.loadgen_cpus.is_empty()).then(|| self.loadgen_cpus.clone()),
            rust_log: self.rust_log.clone(),
            work_dir,
        };
        for bin in [&launcher.gateway, &launcher.hello, &launcher.ticket_server] {
            if !bin.exists() {
                return Err(format!(
                    "{} is missing: cargo build --release -p ticket-gateway -p gateway-bench",
                    bin.display()
                ));
            }
        }
        let pinned = launcher.server_cpus.is_some() || launcher.loadgen_cpus.is_some();
        if pinned && !procs::on_path("taskset") {
            return Err(
                "taskset is missing (util-linux); or set BENCH_SERVER_CPUS= BENCH_LOADGEN_CPUS="
                    .into(),
            );
        }
        Ok(launcher)
    }
}
