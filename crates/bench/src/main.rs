//! `gateway-bench`: the gateway's benchmark.
//!
//! ```text
//! gateway-bench run                 everything scripts/bench runs (servers spawned here)
//! gateway-bench load -w WORKLOAD …  one workload against servers already running
//! gateway-bench memory [--tickets N]  bytes per live ticket, and p99 with N live
//! ```
//!
//! The load generator is a single-threaded tokio runtime speaking HTTP/1.1 keep-alive (and
//! WebSocket, after an upgrade) over raw sockets (`gateway_bench::http1`): `scripts/bench`
//! pins it to one core and the servers to the other, so the two never compete for a CPU
//! and one thread is all that core can use. Only the back end of the proxied workloads
//! shares the load generator's core, so that `direct` and every proxy load it alike. Its
//! own CPU use is measured too (`client %`): a client near 100% of its core is the ceiling
//! itself. Every option can also be set from the environment (`BENCH_SECONDS`,
//! `BENCH_WORKLOADS`, `BENCH_AGAINST`, `BENCH_PEERS`, …).
//!
//! `load` drives any server speaking the workload's requests: `--frontend` may be nginx or
//! HAProxy in front of `hello --backend` for the proxied workloads (no cookie is needed
//! there), or the minimal ticket server (`--api`, `--frontend`) for the login workloads.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use gateway_bench::workload::{Targets, Workload};
use gateway_bench::{load, memory, run, Common};

#[derive(Debug, Parser)]
#[command(
    name = "gateway-bench",
    about = "Benchmarks ticket-gateway against a hello-world ceiling."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole benchmark: throughput and latency per workload, then memory.
    Run(run::Options),
    /// One workload against servers already running.
    Load(LoadArgs),
    /// Bytes per live ticket, and `qps-issue` p99 with the store full versus empty.
    Memory(memory::Options),
}

/// `gateway-bench load`.
#[derive(Debug, Clone, clap::Args)]
struct LoadArgs {
    /// The workload.
    #[arg(short, long, value_enum)]
    workload: Workload,
    /// The hello server (for `hello`, and `direct` without `--upstream`).
    #[arg(long)]
    hello: Option<SocketAddr>,
    /// The gateway's upstream behind its `up` virtual proxy (for `direct`).
    #[arg(long)]
    upstream: Option<SocketAddr>,
    /// The gateway's front end (or a peer proxy, or the minimal ticket server's).
    #[arg(long)]
    frontend: Option<SocketAddr>,
    /// The gateway's API (or the minimal ticket server's).
    #[arg(long)]
    api: Option<SocketAddr>,
    /// Server processes whose CPU time to report (repeatable).
    #[arg(long)]
    pid: Vec<u32>,
    /// Upstream processes whose CPU time to report apart (repeatable).
    #[arg(long)]
    upstream_pid: Vec<u32>,
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Run(opts) => run::run(opts, &opts.common.launcher()?).await,
            Command::Memory(opts) => {
                for line in memory::run(opts, &opts.common.launcher()?).await? {
                    println!("{line}");
                }
                Ok(())
            }
            Command::Load(args) => load_one(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Warm-up, one measured window, one line of figures.
async fn load_one(args: &LoadArgs) -> Result<(), String> {
    let mut targets = Targets {
        hello: args.hello,
        upstream: args.upstream.or(args.hello),
        frontend: args.frontend,
        api: args.api,
        cookie: None,
        // The gateway may have seen earlier runs: users of this process's own.
        user_tag: format!("{}.", std::process::id()),
    };
    let gateway = targets.frontend.is_some() && targets.api.is_some();
    if (args.workload.is_proxied() || args.workload == Workload::Direct) && gateway {
        targets.cookie = Some(run::session_cookie(&targets).await?);
    }
    if args.workload == Workload::SessionGet {
        run::create_session(&targets).await?;
    }
    let targets = Arc::new(targets);
    let c = &args.common;
    let w = args.workload;
    let (pids, up) = (&args.pid, &args.upstream_pid);
    let n = c.connections;
    load::measure(w, &targets, n, Duration::from_secs(c.warmup), pids, up).await?;
    let s = load::measure(w, &targets, n, Duration::from_secs(c.seconds), pids, up).await?;
    let show = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    println!(
        "{}: {:.0} req/s, {:.0} ops/s, p50 {:.1} µs/op, p99 {:.1} µs/op, CPU {} µs/req, \
         upstream {} µs/req, client {}% of a core ({} requests, {} ops in {:.2} s)",
        w.name(),
        s.rps(),
        s.ops_per_s(),
        s.quantile_us(0.5),
        s.quantile_us(0.99),
        show(s.cpu_us_per_request()),
        show(s.upstream_cpu_us_per_request()),
        show(s.client_cpu_percent()),
        s.requests,
        s.ops,
        s.seconds
    );
    Ok(())
}
