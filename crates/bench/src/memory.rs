//! `gateway-bench memory`: what a live ticket costs in resident memory, and whether a
//! full store slows issuing down.
//!
//! A fresh gateway (tickets living an hour, so none expire during the run) is filled with
//! N QPS tickets; another with N QlikView web tickets. `VmRSS` before and after, over N,
//! is the cost per live ticket as the operator sees it: entry, key, index and allocator
//! overhead together. The fill is pipelined over many connections so a million tickets
//! take seconds, not minutes. Then `qps-issue` p99 is measured on the full gateway and on
//! an empty one, alternately, `reps` times each (a fresh empty gateway every time), and
//! the median of the ratios is reported: a single p99 on this shared machine varies by a
//! third from one run to the next.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::http1::Conn;
use crate::load::{measure, Sample};
use crate::procs::{rss_bytes, GatewayConfig, Launcher};
use crate::workload::{issue_request, webticket_request, Targets, Workload};
use crate::Common;

/// Requests written back to back on one connection before reading the replies.
const PIPELINE_DEPTH: usize = 32;
/// Tickets issued before the "before" reading, so connection buffers, allocator arenas and
/// the store's first table sizes are not counted as per-ticket cost.
const SETTLE_TICKETS: u64 = 10_000;

/// `gateway-bench memory` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub common: Common,
    /// Live tickets to fill each gateway with.
    #[arg(long, env = "BENCH_TICKETS", default_value_t = 1_000_000)]
    pub tickets: u64,
    /// Measurements of p99 on each store, alternated.
    #[arg(long, env = "BENCH_REPS", default_value_t = 3)]
    pub reps: usize,
}

/// Runs the measurement; returns the report lines.
pub async fn run(opts: &Options, launcher: &Launcher) -> Result<Vec<String>, String> {
    let config = GatewayConfig {
        ticket_ttl_seconds: Some(3600),
        ..GatewayConfig::default()
    };
    // The audit trail is one log line per ticket and no part of what a ticket weighs;
    // without it a million tickets go in about twice as fast.
    let launcher = &Launcher {
        rust_log: format!("{},audit=off", launcher.rust_log),
        ..launcher.clone()
    };
    let path = launcher.write_config("gateway-memory-fill", &config)?;
    let n = opts.tickets;
    let mut lines = Vec::new();
    let mut say = |line: String| lines.push(line);

    eprintln!(
        "bench: memory: qps-issue on an empty store, then {n} QPS tickets, then {n} web tickets"
    );
    let full = launcher.gateway(&path)?;
    let (per_ticket, took) =
        fill_and_weigh(full.proc.pid, n, full.api, issue_request(full.api), 201).await?;
    say(format!(
        "memory: {n} live QPS tickets: {per_ticket:.0} bytes per live ticket (fill {took:.1} s, {:.0}/s)",
        n as f64 / took
    ));
    // Each empty-store measurement on a gateway of its own, started for it; the full one
    // keeps its tickets (and gains the ones each measurement issues).
    let (mut empties, mut fulls) = (Vec::new(), Vec::new());
    for rep in 1..=opts.reps.max(1) {
        let gw = launcher.gateway(&path)?;
        let e = issue_p99(opts, gw.api, gw.proc.pid)
            .await?
            .quantile_us(0.99);
        drop(gw);
        let f = issue_p99(opts, full.api, full.proc.pid)
            .await?
            .quantile_us(0.99);
        eprintln!(
            "bench: memory: qps-issue p99 rep {rep}: {e:.1} µs empty, {f:.1} µs with {n}+ live tickets"
        );
        empties.push(e);
        fulls.push(f);
    }
    drop(full);
    let ratios: Vec<f64> = fulls.iter().zip(&empties).map(|(f, e)| f / e).collect();
    say(format!(
        "memory: qps-issue p99 {:.1} µs on an empty store, {:.1} µs with {n} or more live \
         tickets (medians of {}): ratio {:.2} (median of the alternated pairs)",
        median(&empties),
        median(&fulls),
        empties.len(),
        median(&ratios)
    ));

    let gw = launcher.gateway(&path)?;
    let front = gw.frontend;
    let (per_ticket, took) =
        fill_and_weigh(gw.proc.pid, n, front, webticket_request(front), 200).await?;
    say(format!(
        "memory: {n} live QlikView web tickets: {per_ticket:.0} bytes per live ticket (fill {took:.1} s, {:.0}/s)",
        n as f64 / took
    ));
    Ok(lines)
}

/// The median of `values` (see [`crate::report::median`]).
fn median(values: &[f64]) -> f64 {
    crate::report::median(values.to_vec()).unwrap_or(f64::NAN)
}

/// Settles, reads RSS, issues `n` tickets, reads RSS again: `(bytes per ticket, seconds)`.
async fn fill_and_weigh(
    pid: u32,
    n: u64,
    addr: SocketAddr,
    request: Vec<u8>,
    status: u16,
) -> Result<(f64, f64), String> {
    fill(addr, &request, status, SETTLE_TICKETS).await?;
    // Let the gateway's idle connection tasks and the purge timer run once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_bytes(pid)?;
    let started = Instant::now();
    fill(addr, &request, status, n).await?;
    let took = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss_bytes(pid)?;
    Ok((after.saturating_sub(before) as f64 / n.max(1) as f64, took))
}

/// `qps-issue` after a warm-up, for the configured time.
async fn issue_p99(opts: &Options, api: SocketAddr, pid: u32) -> Result<Sample, String> {
    let c = &opts.common;
    let targets = Arc::new(Targets {
        api: Some(api),
        ..Targets::default()
    });
    let w = Workload::QpsIssue;
    measure(
        w,
        &targets,
        c.connections,
        Duration::from_secs(c.warmup),
        &[pid],
        &[],
    )
    .await?;
    measure(
        w,
        &targets,
        c.connections,
        Duration::from_secs(c.seconds),
        &[pid],
        &[],
    )
    .await
}

/// Sends `request` `count` times over `FILL_CONNECTIONS` connections, pipelined, and checks
/// every reply's status.
async fn fill(addr: SocketAddr, request: &[u8], status: u16, count: u64) -> Result<(), String> {
    const FILL_CONNECTIONS: u64 = 16;
    let batch: Arc<[u8]> = request.repeat(PIPELINE_DEPTH).into();
    let len = request.len();
    let mut tasks = JoinSet::new();
    for i in 0..FILL_CONNECTIONS {
        let share = count / FILL_CONNECTIONS + u64::from(i < count % FILL_CONNECTIONS);
        let batch = batch.clone();
        tasks.spawn(async move {
            let mut conn = Conn::connect(addr).await.map_err(|e| e.to_string())?;
            let mut left = share;
            while left > 0 {
                let k = left.min(PIPELINE_DEPTH as u64) as usize;
                conn.send(&batch[..k * len])
                    .await
                    .map_err(|e| e.to_string())?;
                for _ in 0..k {
                    let reply = conn.read_reply().await.map_err(|e| e.to_string())?;
                    if reply.status != status {
                        return Err(format!("fill: status {}: {}", reply.status, reply.text()));
                    }
                }
                left -= k as u64;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(())
}
