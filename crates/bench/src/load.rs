//! The closed-loop driver: N connections, each a task that sends an operation (one request,
//! or the two of a login), waits for the whole reply and sends the next, for a fixed time.
//!
//! Closed loop with a fixed connection count is what the gateway meets behind a portal or
//! a load balancer, and it makes throughput and latency two views of the same run. Every
//! connection is open before the clock starts, so connecting never counts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::procs::{cpu_seconds_all, cpu_seconds_self};
use crate::workload::{Targets, Worker, Workload};

/// The result of one measured window.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Operations completed inside the window (logins, for the two-step flows).
    pub ops: u64,
    /// HTTP requests those operations sent: every exchange counts.
    pub requests: u64,
    /// Length of the window.
    pub seconds: f64,
    /// Latency of each operation (the whole login for the two-step flows), in nanoseconds.
    pub latency: Histogram<u64>,
    /// CPU seconds the processes under test used inside the window.
    pub cpu_seconds: Option<f64>,
    /// CPU seconds the upstream behind them used (`proxied`), reported apart.
    pub upstream_cpu_seconds: Option<f64>,
    /// CPU seconds this process, the load generator, used.
    pub client_cpu_seconds: Option<f64>,
}

impl Sample {
    /// HTTP requests per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// Operations per second.
    pub fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    /// A latency quantile of an operation, in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// Server CPU microseconds per HTTP request.
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        per_request(self.cpu_seconds?, self.requests)
    }

    /// Upstream CPU microseconds per HTTP request.
    pub fn upstream_cpu_us_per_request(&self) -> Option<f64> {
        per_request(self.upstream_cpu_seconds?, self.requests)
    }

    /// The load generator's CPU time over the window, in % of one core.
    pub fn client_cpu_percent(&self) -> Option<f64> {
        let cpu = self.client_cpu_seconds?;
        (self.seconds > 0.0).then(|| cpu * 100.0 / self.seconds)
    }
}

fn per_request(cpu_seconds: f64, requests: u64) -> Option<f64> {
    (requests > 0).then(|| cpu_seconds * 1e6 / requests as f64)
}

fn histogram() -> Histogram<u64> {
    // 1 ns to 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Drives `workload` over `connections` connections for `duration`, reading the CPU time of
/// the servers under test (`pids`), of the `upstream` behind them and of this process at
/// both ends of the window. The first failed operation fails the run: a benchmark of error
/// replies measures nothing.
pub async fn measure(
    workload: Workload,
    targets: &Arc<Targets>,
    connections: usize,
    duration: Duration,
    pids: &[u32],
    upstream: &[u32],
) -> Result<Sample, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(connections + 1));
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        let (stop, ready, targets) = (stop.clone(), ready.clone(), targets.clone());
        tasks.spawn(async move {
            let worker = Worker::connect(workload, &targets).await;
            // Wait even after a failed connect, or the others would wait forever.
            ready.wait().await;
            let mut worker = worker?;
            let mut latency = histogram();
            let mut ops = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                worker.op().await?;
                if stop.load(Ordering::Relaxed) {
                    break; // finished after the window closed: not counted
                }
                latency.saturating_record(start.elapsed().as_nanos() as u64);
                ops += 1;
            }
            Ok::<_, String>((ops, latency))
        });
    }
    ready.wait().await;
    let read = || {
        (
            cpu_seconds_all(pids),
            cpu_seconds_all(upstream),
            cpu_seconds_self(),
        )
    };
    let before = read();
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let after = read();
    let delta = |b: Result<f64, String>, a: Result<f64, String>, any: bool| match (b, a) {
        (Ok(b), Ok(a)) if any => Some(a - b),
        _ => None,
    };

    let mut sample = Sample {
        ops: 0,
        requests: 0,
        seconds,
        latency: histogram(),
        cpu_seconds: delta(before.0, after.0, !pids.is_empty()),
        upstream_cpu_seconds: delta(before.1, after.1, !upstream.is_empty()),
        client_cpu_seconds: delta(before.2, after.2, true),
    };
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((ops, latency)) => {
                sample.ops += ops;
                sample.requests += ops * workload.requests_per_op();
                sample
                    .latency
                    .add(&latency)
                    .map_err(|e| format!("histogram: {e:?}"))?;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(sample),
    }
}
