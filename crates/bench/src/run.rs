//! `gateway-bench run`: the whole benchmark, as `scripts/bench` runs it.
//!
//! One hello server serves as the ceiling for the whole run. For each workload the gateway
//! and the ceiling are warmed up, then measured alternately, A B A B A B (A = hello, or
//! `direct` for `proxied`), so both see the same machine: a 2-core box shared with other
//! work drifts, and alternation keeps that drift out of the ratios.
//!
//! Features other engineers are still adding (the `upstream` key, the session API, the
//! Redis store) are probed first; a workload whose feature is missing is skipped with a
//! note instead of failing the run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::http1::Conn;
use crate::load::{measure, Sample};
use crate::procs::{self, Gateway, GatewayConfig, Launcher};
use crate::report::{self, Row};
use crate::workload::{
    self, expect, get, issue_request, post, set_cookie, Targets, Workload, HELLO_BODY,
    PROXIED_PATH, SESSION_ID, XRFKEY,
};
use crate::{memory, Common};

/// Which store the gateway runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreChoice {
    /// The in-memory store only.
    Memory,
    /// Every workload on the Redis store.
    Redis,
}

/// `gateway-bench run` options; each can come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub common: Common,
    /// Store to run on. Unset: memory, then `qps-issue-redeem` again on a private
    /// redis-server when one is installed.
    #[arg(long, env = "BENCH_STORE")]
    pub store: Option<StoreChoice>,
    /// Redis to use with `--store redis` instead of starting a private one.
    #[arg(long, env = "BENCH_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Measured repetitions per workload (each of A and B).
    #[arg(long, env = "BENCH_REPS", default_value_t = 3)]
    pub reps: usize,
    /// Live tickets for the memory measurement; 0 skips it.
    #[arg(long, env = "BENCH_TICKETS", default_value_t = 1_000_000)]
    pub tickets: u64,
}

/// The workloads run against each gateway, with the reference each is compared against.
const SUITE: &[(Workload, Workload)] = &[
    (Workload::Hello, Workload::QpsIssue),
    (Workload::Hello, Workload::QpsIssueRedeem),
    (Workload::Hello, Workload::QvGetwebticket),
    (Workload::Hello, Workload::QvGetwebticketAuthenticate),
    (Workload::Direct, Workload::Proxied),
    (Workload::Hello, Workload::SessionGet),
];

/// A gateway under test and what its probes found.
struct Subject {
    gateway: Gateway,
    /// Extra processes whose CPU counts as the gateway's (a private redis-server).
    also: Vec<u32>,
    store: &'static str,
    targets: Targets,
    /// Workloads this gateway cannot run, with why.
    skipped: Vec<(Workload, String)>,
}

struct Bench<'a> {
    opts: &'a Options,
    launcher: &'a Launcher,
    hello: SocketAddr,
    hello_pid: u32,
    hello_samples: Vec<Sample>,
    rows: Vec<Row>,
    notes: Vec<String>,
}

/// Runs everything and prints the table; rows also go to `<out>/results.csv`.
pub async fn run(opts: &Options, launcher: &Launcher) -> Result<(), String> {
    let (hello_proc, hello) = launcher.hello()?;
    eprintln!(
        "bench: {} s warm-up, {} × {} s measured per side, {} connections; hello on {hello}",
        opts.common.warmup, opts.reps, opts.common.seconds, opts.common.connections
    );
    let mut bench = Bench {
        opts,
        launcher,
        hello,
        hello_pid: hello_proc.pid,
        hello_samples: Vec::new(),
        rows: Vec::new(),
        notes: Vec::new(),
    };
    match opts.store {
        Some(StoreChoice::Redis) => {
            let all: Vec<_> = SUITE.iter().map(|&(_, w)| w).collect();
            bench.redis_suite(&all).await?;
        }
        Some(StoreChoice::Memory) => bench.memory_suite().await?,
        None => {
            bench.memory_suite().await?;
            if procs::on_path("redis-server") {
                bench.redis_suite(&[Workload::QpsIssueRedeem]).await?;
            } else {
                bench.note("Redis run skipped: no redis-server installed".into());
            }
        }
    }
    let mut rows = vec![Row::reference("hello", "-", &bench.hello_samples)];
    rows.append(&mut bench.rows);

    let memory_lines = if opts.tickets > 0 && opts.store != Some(StoreChoice::Redis) {
        let m = memory::Options {
            common: opts.common.clone(),
            tickets: opts.tickets,
        };
        match memory::run(&m, launcher).await {
            Ok(lines) => lines,
            Err(e) => vec![format!("memory measurement failed: {e}")],
        }
    } else {
        Vec::new()
    };

    println!();
    print!("{}", report::table(&rows));
    for line in &memory_lines {
        println!("{line}");
    }
    for note in &bench.notes {
        println!("note: {note}");
    }
    let csv = opts.common.out_dir().join("results.csv");
    report::write_csv(&rows, &csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    println!("rows written to {}", csv.display());
    Ok(())
}

impl Bench<'_> {
    fn note(&mut self, note: String) {
        eprintln!("bench: {note}");
        self.notes.push(note);
    }

    async fn memory_suite(&mut self) -> Result<(), String> {
        let Some(subject) = self.start("gateway-memory", None, Vec::new()).await? else {
            return Ok(());
        };
        let all: Vec<_> = SUITE.iter().map(|&(_, w)| w).collect();
        self.suite(&subject, &all).await;
        Ok(())
    }

    /// With a Redis store: on `BENCH_REDIS_URL`, else on a private redis-server. Adds a
    /// Redis-over-memory row for every workload measured on both.
    async fn redis_suite(&mut self, workloads: &[Workload]) -> Result<(), String> {
        let (_redis, url, also) = match &self.opts.redis_url {
            Some(url) => (None, url.clone(), Vec::new()),
            None => {
                let (proc, port) = self.launcher.redis()?;
                let pid = proc.pid;
                (Some(proc), format!("redis://127.0.0.1:{port}"), vec![pid])
            }
        };
        let Some(subject) = self.start("gateway-redis", Some(url), also).await? else {
            return Ok(());
        };
        self.suite(&subject, workloads).await;
        for w in workloads {
            let find = |store: &str| {
                self.rows
                    .iter()
                    .find(|r| r.workload == w.name() && r.store == store && r.reference != "memory")
            };
            if let (Some(m), Some(r)) = (find("memory"), find("redis")) {
                let ratio = |a: Option<f64>, b: Option<f64>| Some(b? / a?);
                let row = Row {
                    reference: "memory".into(),
                    rps_ratio: Some(r.rps / m.rps),
                    cpu_ratio: ratio(m.cpu_us, r.cpu_us),
                    ..r.clone()
                };
                self.rows.push(row);
            }
        }
        Ok(())
    }

    /// Starts a gateway in front of hello and probes it. `Ok(None)`: a Redis
    /// configuration the gateway refuses (noted, not an error).
    async fn start(
        &mut self,
        name: &str,
        redis_url: Option<String>,
        also: Vec<u32>,
    ) -> Result<Option<Subject>, String> {
        let redis = redis_url.is_some();
        let mut config = GatewayConfig {
            upstream: Some(self.hello),
            redis_url,
            ticket_ttl_seconds: None,
        };
        let mut skipped = Vec::new();
        let path = match self.launcher.write_config(name, &config) {
            Ok(p) => p,
            Err(first) => {
                config.upstream = None;
                match self.launcher.write_config(name, &config) {
                    Ok(p) => {
                        let why = format!("the gateway refuses `upstream`: {first}");
                        skipped.push((Workload::Proxied, why));
                        p
                    }
                    Err(e) if redis => {
                        self.note(format!("Redis run skipped: the gateway refuses [store] backend = \"redis\": {e}"));
                        return Ok(None);
                    }
                    Err(e) => return Err(format!("the gateway refuses its configuration: {e}")),
                }
            }
        };
        let gateway = self.launcher.gateway(&path)?;
        let store = if redis { "redis" } else { "memory" };
        if gateway.store != store {
            self.note(format!(
                "{name}: configured for {store}, the gateway says store={}",
                gateway.store
            ));
        }
        let targets = Targets {
            hello: Some(self.hello),
            frontend: Some(gateway.frontend),
            api: Some(gateway.api),
            cookie: None,
        };
        Ok(Some(Subject {
            gateway,
            also,
            store,
            targets,
            skipped,
        }))
    }

    /// Runs each workload against its reference; a workload whose feature is missing, or
    /// that fails, is noted and the others go on.
    async fn suite(&mut self, s: &Subject, workloads: &[Workload]) {
        for &(reference, workload) in SUITE.iter().filter(|(_, w)| workloads.contains(w)) {
            let what = if workload == Workload::Proxied {
                "proxied and direct"
            } else {
                workload.name()
            };
            let prepared = match s.skipped.iter().find(|(w, _)| *w == workload) {
                Some((_, why)) => Err(why.clone()),
                None => prepare(workload, &s.targets).await,
            };
            let targets = match prepared {
                Ok(t) => Arc::new(t),
                Err(why) => {
                    self.note(format!("{what} skipped ({} store): {why}", s.store));
                    continue;
                }
            };
            if let Err(e) = self.pair(s, &targets, reference, workload).await {
                self.note(format!(
                    "{} failed ({} store): {e}",
                    workload.name(),
                    s.store
                ));
            }
        }
    }

    /// Warm-up, then A B alternated `reps` times; pushes the rows.
    async fn pair(
        &mut self,
        s: &Subject,
        targets: &Arc<Targets>,
        a: Workload,
        b: Workload,
    ) -> Result<(), String> {
        let c = &self.opts.common;
        let (warmup, seconds) = (
            Duration::from_secs(c.warmup),
            Duration::from_secs(c.seconds),
        );
        let pids = |w: Workload| -> Vec<u32> {
            let mut pids = match w {
                Workload::Hello | Workload::Direct => vec![self.hello_pid],
                // The upstream's work is part of what a proxied request costs.
                Workload::Proxied => vec![s.gateway.proc.pid, self.hello_pid],
                _ => vec![s.gateway.proc.pid],
            };
            if !matches!(w, Workload::Hello | Workload::Direct) {
                pids.extend(&s.also);
            }
            pids
        };
        let (pa, pb) = (pids(a), pids(b));
        measure(a, targets, c.connections, warmup, &pa).await?;
        measure(b, targets, c.connections, warmup, &pb).await?;
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        for rep in 1..=self.opts.reps {
            let x = measure(a, targets, c.connections, seconds, &pa).await?;
            let y = measure(b, targets, c.connections, seconds, &pb).await?;
            eprintln!(
                "bench: {} ({}) rep {rep}/{}: {} {:.0}/s, {} {:.0}/s",
                b.name(),
                s.store,
                self.opts.reps,
                a.name(),
                x.rps(),
                b.name(),
                y.rps()
            );
            sa.push(x);
            sb.push(y);
        }
        if a == Workload::Hello {
            self.hello_samples.extend(sa.iter().cloned());
        } else {
            self.rows.push(Row::reference(a.name(), "-", &sa));
        }
        self.rows
            .push(Row::compared(b.name(), s.store, a.name(), &sa, &sb));
        Ok(())
    }
}

/// What a workload needs just before it runs: a fresh session cookie for `proxied` (an
/// earlier login workload may have evicted an older one) and the session `session-get`
/// reads. `Err` says why the workload cannot run on this gateway.
async fn prepare(workload: Workload, targets: &Targets) -> Result<Targets, String> {
    let mut t = targets.clone();
    match workload {
        Workload::Proxied => {
            t.cookie = Some(session_cookie(&t).await?);
            probe_upstream(&t).await?;
        }
        Workload::SessionGet => create_session(&t).await?,
        _ => {}
    }
    Ok(t)
}

/// Issues and redeems one ticket; returns the session cookie as `name=value`.
pub async fn session_cookie(t: &Targets) -> Result<String, String> {
    let (api, front) = (t.api.ok_or("no API")?, t.frontend.ok_or("no front end")?);
    let mut conn = Conn::connect(api).await.map_err(|e| e.to_string())?;
    let reply = conn
        .exchange(&issue_request(api))
        .await
        .map_err(|e| e.to_string())?;
    expect(&reply, 201, "issue")?;
    let ticket = workload::qps_ticket(&reply)?.to_owned();
    let mut conn = Conn::connect(front).await.map_err(|e| e.to_string())?;
    let redeem = get(front, &format!("/hub/?qlikTicket={ticket}"), "");
    let reply = conn.exchange(&redeem).await.map_err(|e| e.to_string())?;
    expect(&reply, 200, "redeem")?;
    Ok(set_cookie(&reply)?.to_owned())
}

/// Whether an authenticated request through the gateway reaches hello.
async fn probe_upstream(t: &Targets) -> Result<(), String> {
    let front = t.frontend.ok_or("no front end")?;
    let cookie = t.cookie.as_deref().unwrap_or("");
    let mut conn = Conn::connect(front).await.map_err(|e| e.to_string())?;
    let request = get(front, PROXIED_PATH, &format!("Cookie: {cookie}\r\n"));
    let reply = conn.exchange(&request).await.map_err(|e| e.to_string())?;
    if reply.status == 200 && reply.body == HELLO_BODY {
        Ok(())
    } else {
        Err(format!(
            "`upstream` is accepted but {PROXIED_PATH} did not come from it (status {})",
            reply.status
        ))
    }
}

/// Creates the session `session-get` reads, and reads it once.
pub async fn create_session(t: &Targets) -> Result<(), String> {
    let api = t.api.ok_or("no API")?;
    let mut conn = Conn::connect(api).await.map_err(|e| e.to_string())?;
    let body = format!(r#"{{"UserDirectory":"ACME","UserId":"jdoe","SessionId":"{SESSION_ID}"}}"#);
    let xrf = format!("X-Qlik-Xrfkey: {XRFKEY}\r\n");
    let create = post(
        api,
        &format!("/qps/session?xrfkey={XRFKEY}"),
        &xrf,
        "application/json",
        &body,
    );
    let reply = conn.exchange(&create).await.map_err(|e| e.to_string())?;
    match reply.status {
        // 409: still there from an earlier run on this gateway.
        200..=299 | 409 => {}
        404 | 405 => {
            return Err(format!(
                "no session API yet (POST /qps/session: {})",
                reply.status
            ))
        }
        s => return Err(format!("POST /qps/session: {s}: {}", reply.text())),
    }
    let read = get(
        api,
        &format!("/qps/session/{SESSION_ID}?xrfkey={XRFKEY}"),
        &xrf,
    );
    let reply = conn.exchange(&read).await.map_err(|e| e.to_string())?;
    match reply.status {
        200 => Ok(()),
        s => Err(format!("GET /qps/session/{SESSION_ID}: {s}")),
    }
}

/// `target/bench`, beside the `target/release` the binary runs from.
pub fn default_out_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("bench")))
        .unwrap_or_else(|| PathBuf::from("target/bench"))
}
