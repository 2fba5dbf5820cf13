//! `gateway-bench run`: the whole benchmark, as `scripts/bench` runs it.
//!
//! One hello server, on the servers' CPU, serves as the ceiling for the whole run. For each
//! workload the gateway and the ceiling are warmed up, then measured alternately, A B A B A
//! B (A = hello, or `direct` for `proxied`), so both see the same machine: a 2-core box
//! shared with other work drifts, and alternation keeps that drift out of the ratios.
//!
//! `proxied` and `direct` share a second hello server, the upstream, pinned to the load
//! generator's CPU: `direct` is load generator → upstream, `proxied` load generator →
//! gateway (virtual proxy `up`) → upstream, so the load generator's CPU carries the same
//! client and back end in both and the servers' CPU only the server under test. The
//! upstream's CPU is reported apart (`up µs/req`), not as the gateway's.
//!
//! The default virtual proxy has no upstream: `qps-issue-redeem` measures the ticket
//! exchange itself, the redeeming request answered by the gateway's identity page.
//!
//! The Redis store is compared with the memory store in the same way: both gateways stay
//! up and `qps-issue-redeem` alternates between them, so the Redis row's ratio is taken
//! between windows seconds apart, not between suites minutes apart.
//!
//! What a workload needs (the `upstream` key, the session API, the Redis store) is probed
//! first; a workload the gateway cannot run is skipped with a note instead of failing the
//! run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::http1::Conn;
use crate::load::{measure, Sample};
use crate::procs::{self, Gateway, GatewayConfig, Launcher};
use crate::report::{self, Row};
use crate::workload::{
    self, expect, get, issue_request_for, post, set_cookie, Targets, Workload, FIXED_USER,
    HELLO_BODY, PROXIED_PATH, PROXY_PREFIX, SESSION_ID, XRFKEY,
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
    /// Only these workloads (comma-separated), each with its reference; `direct` means
    /// `proxied`. Unset: all.
    #[arg(long, env = "BENCH_WORKLOADS", value_enum, value_delimiter = ',')]
    pub workloads: Vec<Workload>,
}

impl Options {
    /// The suite workloads selected, in suite order.
    pub fn selected(&self) -> Result<Vec<Workload>, String> {
        if self.workloads.contains(&Workload::Hello) {
            return Err(
                "hello is the reference of every workload, not one to select; name workloads: "
                    .to_owned()
                    + &suite_names(),
            );
        }
        let wanted = |w: Workload| {
            self.workloads.is_empty()
                || self.workloads.contains(&w)
                || (w == Workload::Proxied && self.workloads.contains(&Workload::Direct))
        };
        Ok(SUITE
            .iter()
            .map(|&(_, w)| w)
            .filter(|&w| wanted(w))
            .collect())
    }
}

fn suite_names() -> String {
    SUITE
        .iter()
        .map(|(_, w)| w.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// A reference run whose load generator used this much of a core (%) may have measured the
/// client, not the server.
const CLIENT_SATURATED_PCT: f64 = 95.0;

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
    /// What the gateway depends on besides its upstream (a private redis-server): it runs
    /// beside the load generator, like the upstream, and its CPU is reported with the
    /// upstream's, not the gateway's.
    deps: Vec<u32>,
    store: &'static str,
    targets: Targets,
    /// Workloads this gateway cannot run, with why.
    skipped: Vec<(Workload, String)>,
}

/// One side of an alternated comparison: a workload, where it is sent, and whose CPU it
/// is charged to (the processes under test, then what they depend on).
struct Side<'a> {
    name: &'a str,
    workload: Workload,
    targets: &'a Arc<Targets>,
    pids: &'a [u32],
    deps: &'a [u32],
}

impl<'a> Side<'a> {
    fn new(
        name: &'a str,
        workload: Workload,
        targets: &'a Arc<Targets>,
        pids: &'a [u32],
        deps: &'a [u32],
    ) -> Self {
        Side {
            name,
            workload,
            targets,
            pids,
            deps,
        }
    }

    async fn measure(&self, connections: usize, window: Duration) -> Result<Sample, String> {
        measure(
            self.workload,
            self.targets,
            connections,
            window,
            self.pids,
            self.deps,
        )
        .await
    }
}

struct Bench<'a> {
    opts: &'a Options,
    launcher: &'a Launcher,
    hello: SocketAddr,
    hello_pid: u32,
    /// The hello server behind the gateway's `up` virtual proxy, on the load generator's CPU.
    upstream: SocketAddr,
    upstream_pid: u32,
    hello_samples: Vec<Sample>,
    rows: Vec<Row>,
    notes: Vec<String>,
}

/// Runs everything and prints the table; rows also go to `<out>/results.csv`.
pub async fn run(opts: &Options, launcher: &Launcher) -> Result<(), String> {
    let selected = opts.selected()?;
    let (hello_proc, hello) = launcher.hello()?;
    let (upstream_proc, upstream) = launcher.upstream()?;
    let cpus = |c: &Option<String>| c.clone().unwrap_or_else(|| "any".to_owned());
    eprintln!(
        "bench: {} s warm-up, {} × {} s measured per side, {} connections; hello on {hello} \
         (CPU {}), upstream on {upstream} (CPU {})",
        opts.common.warmup,
        opts.reps,
        opts.common.seconds,
        opts.common.connections,
        cpus(&launcher.server_cpus),
        cpus(&launcher.loadgen_cpus),
    );
    let mut bench = Bench {
        opts,
        launcher,
        hello,
        hello_pid: hello_proc.pid,
        upstream,
        upstream_pid: upstream_proc.pid,
        hello_samples: Vec::new(),
        rows: Vec::new(),
        notes: Vec::new(),
    };
    if let (Some(want), Some(have)) = (&launcher.loadgen_cpus, procs::own_cpus()) {
        if *want != have {
            bench.note(format!(
                "the load generator runs on CPUs {have}, but BENCH_LOADGEN_CPUS={want} (where \
                 the upstream is pinned): run it through scripts/bench or taskset -c {want}"
            ));
        }
    }
    match opts.store {
        Some(StoreChoice::Redis) => bench.redis_suite(&selected, None).await?,
        Some(StoreChoice::Memory) => {
            bench.memory_suite(&selected).await?;
        }
        None => {
            let memory = bench.memory_suite(&selected).await?;
            if selected.contains(&Workload::QpsIssueRedeem) {
                if procs::on_path("redis-server") {
                    bench
                        .redis_suite(&[Workload::QpsIssueRedeem], memory.as_ref())
                        .await?;
                } else {
                    bench.note("Redis run skipped: no redis-server installed".into());
                }
            }
        }
    }
    let mut rows = Vec::new();
    if !bench.hello_samples.is_empty() {
        rows.push(Row::reference("hello", "-", &bench.hello_samples));
    }
    rows.append(&mut bench.rows);

    let memory_lines = if opts.tickets > 0 && opts.store != Some(StoreChoice::Redis) {
        let m = memory::Options {
            common: opts.common.clone(),
            tickets: opts.tickets,
            reps: opts.reps,
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

    /// Runs the workloads on a memory-store gateway and hands it back, still running, for
    /// the Redis comparison.
    async fn memory_suite(&mut self, workloads: &[Workload]) -> Result<Option<Subject>, String> {
        let Some(subject) = self.start("gateway-memory", None, Vec::new()).await? else {
            return Ok(None);
        };
        self.suite(&subject, workloads).await;
        Ok(Some(subject))
    }

    /// With a Redis store: on `BENCH_REDIS_URL`, else on a private redis-server. With the
    /// memory-store gateway still running, each workload is then measured on both stores
    /// alternately (memory, Redis, memory, Redis, ...) for a Redis-over-memory row.
    async fn redis_suite(
        &mut self,
        workloads: &[Workload],
        memory: Option<&Subject>,
    ) -> Result<(), String> {
        let (_redis, url, deps) = match &self.opts.redis_url {
            Some(url) => (None, url.clone(), Vec::new()),
            None => {
                let (proc, port) = self.launcher.redis()?;
                let pid = proc.pid;
                (Some(proc), format!("redis://127.0.0.1:{port}"), vec![pid])
            }
        };
        let Some(subject) = self.start("gateway-redis", Some(url), deps).await? else {
            return Ok(());
        };
        self.suite(&subject, workloads).await;
        if let Some(memory) = memory {
            for &w in workloads {
                if let Err(e) = self.stores(memory, &subject, w).await {
                    self.note(format!("{} failed (memory against Redis): {e}", w.name()));
                }
            }
        }
        Ok(())
    }

    /// `workload` on the memory store (A) and on Redis (B), warmed up, then alternated
    /// `reps` times: the Redis row against the memory store, every ratio taken between the
    /// two windows of one pair, so drift on the machine between suites stays out of it.
    async fn stores(&mut self, m: &Subject, r: &Subject, workload: Workload) -> Result<(), String> {
        let (tm, tr) = (
            Arc::new(prepare(workload, &m.targets).await?),
            Arc::new(prepare(workload, &r.targets).await?),
        );
        let (pm, pr) = ([m.gateway.proc.pid], [r.gateway.proc.pid]);
        let (sm, sr) = self
            .alternate(
                &format!("{} (memory against Redis)", workload.name()),
                &[&m.gateway, &r.gateway],
                Side::new("memory", workload, &tm, &pm, &m.deps),
                Side::new("Redis", workload, &tr, &pr, &r.deps),
            )
            .await?;
        self.rows
            .push(Row::compared(workload.name(), "redis", "memory", &sm, &sr));
        Ok(())
    }

    /// Starts a gateway with the upstream hello behind its `up` virtual proxy and probes
    /// it. `Ok(None)`: a Redis configuration the gateway refuses (noted, not an error).
    async fn start(
        &mut self,
        name: &str,
        redis_url: Option<String>,
        deps: Vec<u32>,
    ) -> Result<Option<Subject>, String> {
        let redis = redis_url.is_some();
        let mut config = GatewayConfig {
            proxy_upstream: Some(self.upstream),
            redis_url,
            ticket_ttl_seconds: None,
        };
        let mut skipped = Vec::new();
        let path = match self.launcher.write_config(name, &config) {
            Ok(p) => p,
            Err(first) => {
                config.proxy_upstream = None;
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
            upstream: Some(self.upstream),
            frontend: Some(gateway.frontend),
            api: Some(gateway.api),
            cookie: None,
            user_tag: String::new(),
        };
        Ok(Some(Subject {
            gateway,
            deps,
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

    /// Warms each side up, then measures A and B alternately `reps` times, emptying the
    /// logs of `gateways` before each pair; `label` names the comparison in the progress
    /// lines.
    async fn alternate(
        &self,
        label: &str,
        gateways: &[&Gateway],
        a: Side<'_>,
        b: Side<'_>,
    ) -> Result<(Vec<Sample>, Vec<Sample>), String> {
        let c = &self.opts.common;
        let (warmup, seconds) = (
            Duration::from_secs(c.warmup),
            Duration::from_secs(c.seconds),
        );
        let clear = || gateways.iter().for_each(|g| g.clear_log());
        clear();
        a.measure(c.connections, warmup).await?;
        b.measure(c.connections, warmup).await?;
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        for rep in 1..=self.opts.reps {
            clear();
            let x = a.measure(c.connections, seconds).await?;
            let y = b.measure(c.connections, seconds).await?;
            eprintln!(
                "bench: {label} rep {rep}/{}: {} {:.0} req/s, {} {:.0} req/s",
                self.opts.reps,
                a.name,
                x.rps(),
                b.name,
                y.rps()
            );
            sa.push(x);
            sb.push(y);
        }
        Ok((sa, sb))
    }

    /// Warm-up, then A B alternated `reps` times; pushes the rows.
    async fn pair(
        &mut self,
        s: &Subject,
        targets: &Arc<Targets>,
        a: Workload,
        b: Workload,
    ) -> Result<(), String> {
        // (processes under test, the upstream behind them): CPU µs per request counts the
        // first only.
        let pids = |w: Workload| -> (Vec<u32>, Vec<u32>) {
            match w {
                Workload::Hello => (vec![self.hello_pid], vec![]),
                Workload::Direct => (vec![self.upstream_pid], vec![]),
                Workload::Proxied => {
                    let mut deps = vec![self.upstream_pid];
                    deps.extend(&s.deps);
                    (vec![s.gateway.proc.pid], deps)
                }
                _ => (vec![s.gateway.proc.pid], s.deps.clone()),
            }
        };
        let ((pa, ua), (pb, ub)) = (pids(a), pids(b));
        let (sa, sb) = self
            .alternate(
                &format!("{} ({})", b.name(), s.store),
                &[&s.gateway],
                Side::new(a.name(), a, targets, &pa, &ua),
                Side::new(b.name(), b, targets, &pb, &ub),
            )
            .await?;
        let busiest = sa
            .iter()
            .filter_map(Sample::client_cpu_percent)
            .fold(f64::NAN, f64::max);
        if busiest >= CLIENT_SATURATED_PCT {
            self.note(format!(
                "the load generator used {busiest:.0}% of a core during the {} reference of {} \
                 ({} store): the ceiling may be the client's, not {}'s",
                a.name(),
                b.name(),
                s.store,
                if a == Workload::Direct {
                    "the upstream"
                } else {
                    "hello"
                },
            ));
        }
        if a == Workload::Direct {
            // The load generator's CPU carries the client and the upstream in both.
            let busy = |samples: &[Sample], upstream_is_server: bool| {
                report::median(
                    samples
                        .iter()
                        .filter_map(|x| {
                            let up = if upstream_is_server {
                                x.cpu_seconds?
                            } else {
                                x.upstream_cpu_seconds?
                            };
                            Some((x.client_cpu_seconds? + up) * 100.0 / x.seconds)
                        })
                        .collect(),
                )
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}%"))
            };
            self.note(format!(
                "load generator + upstream on CPU {}: {} of a core in direct, {} in proxied \
                 ({} store)",
                self.launcher.loadgen_cpus.as_deref().unwrap_or("any"),
                busy(&sa, true),
                busy(&sb, false),
                s.store,
            ));
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

/// What a workload needs just before it runs: a session cookie of the `up` virtual proxy
/// for `proxied` (and `direct`, which sends the same request) and the session
/// `session-get` reads. `Err` says why the workload cannot run on this gateway.
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

/// Issues a ticket at `/qps/up/ticket` and redeems it at `/up/hub/?qlikTicket=` (the
/// upstream answers); returns the session cookie (`X-Qlik-Session-up-HTTP`) as
/// `name=value`. Each call logs in a user of its own.
pub async fn session_cookie(t: &Targets) -> Result<String, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let (api, front) = (t.api.ok_or("no API")?, t.frontend.ok_or("no front end")?);
    let user = format!(
        "proxied{}-{}",
        t.user_tag,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = Conn::connect(api).await.map_err(|e| e.to_string())?;
    let issue = issue_request_for(api, PROXY_PREFIX, &user);
    let reply = conn.exchange(&issue).await.map_err(|e| e.to_string())?;
    expect(&reply, 201, "issue at the `up` virtual proxy")?;
    let ticket = workload::qps_ticket(&reply)?.to_owned();
    let mut conn = Conn::connect(front).await.map_err(|e| e.to_string())?;
    let redeem = get(
        front,
        &format!("/{PROXY_PREFIX}/hub/?qlikTicket={ticket}"),
        "",
    );
    let reply = conn.exchange(&redeem).await.map_err(|e| e.to_string())?;
    expect(&reply, 200, "redeem at the `up` virtual proxy")?;
    Ok(set_cookie(&reply)?.to_owned())
}

/// Whether an authenticated request through the gateway reaches the upstream hello.
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
    let body =
        format!(r#"{{"UserDirectory":"ACME","UserId":"{FIXED_USER}","SessionId":"{SESSION_ID}"}}"#);
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
        // Still there from an earlier run on this gateway (the proxy answers 400 with this
        // text, as Qlik's does).
        400 | 409 if reply.text().contains("already exists") => {}
        200..=299 => {}
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
