//! `gateway-bench run`: the whole benchmark, as `scripts/bench` runs it.
//!
//! Each workload is measured on the gateway and on every server it is compared against,
//! in rounds: each round measures every side once, one after the other (A B C … A B C …),
//! `reps` rounds after a warm-up of each, so all sides see the same machine: a 2-core box
//! shared with other work drifts, and alternation keeps that drift out of the ratios. A
//! ratio is the median, over the rounds, of the gateway's figure over the reference's in
//! the same round. The references of each workload:
//!
//! | workload | references |
//! |---|---|
//! | `qps-issue`, `qps-issue-redeem`, `qv-getwebticket`, `qv-getwebticket-authenticate` | hello, the minimal ticket server |
//! | `proxied` | `direct`, nginx, HAProxy |
//! | `download`, `upload`, `websocket` | nginx, HAProxy |
//! | `session-get` | hello |
//!
//! and, with `BENCH_AGAINST=<another ticket-gateway binary>`, that binary (the old one)
//! for every workload: it runs beside the new one, both up at once on the same
//! configuration and store, and is measured just before it in each round. The old
//! binary's rows say `gateway-old`; the gateway's row against it has reference `old`.
//!
//! - **hello** (`src/bin/hello.rs`) runs on the servers' CPU and is the ceiling: the same
//!   hyper and tokio answering a fixed small reply. Its rows are information.
//! - **The minimal ticket server** (`src/bin/ticket-server.rs`, [`crate::ticket_server`])
//!   issues and redeems tickets in both dialects with nothing but what the job needs: the
//!   limit of the four login rows ("gateway vs minimal ticket server").
//! - **nginx and HAProxy** ([`crate::peers`], configurations in `crates/bench/peers/`)
//!   proxy the same requests to the same back end, pinned to the servers' CPU with one
//!   worker and an access log, like the gateway ("proxied vs nginx", "proxied vs
//!   HAProxy", and the same for `download`, `upload` and `websocket`). `BENCH_PEERS`
//!   chooses them; a peer that is not installed is skipped with a note.
//!
//! The back end of the proxied workloads is `hello --backend` (a 1 MiB body for
//! `…/download`, bodies of `POST`s read and dropped, WebSocket messages echoed), pinned to
//! the load generator's CPU: `direct` is load generator → back end, the others load
//! generator → proxy → back end, so the load generator's CPU carries the same client and
//! back end for every side and the servers' CPU only the server under test. The back
//! end's CPU is reported apart (`deps µs/req`), not as the proxy's.
//!
//! The default virtual proxy has no upstream: `qps-issue-redeem` measures the ticket
//! exchange itself, the redeeming request answered by the gateway's identity page.
//!
//! The Redis store is compared with the memory store in the same way: both gateways stay
//! up and `qps-issue-redeem` alternates between them, so the Redis row's ratio is taken
//! between windows seconds apart, not between suites minutes apart.
//!
//! The table has a row per server and workload, and for the gateway one row per reference
//! (its figures repeated, the ratios against that reference). Under it, the ratios against
//! nginx, HAProxy, the minimal ticket server, the memory store and the old binary are
//! shown with their targets ([`report::targets`]). Everything goes to
//! `<out>/results.csv`.
//!
//! What a workload needs (the `upstream` key, the session API, the Redis store) is probed
//! first; a workload the gateway cannot run is skipped with a note instead of failing the
//! run, and so is a reference that fails to warm up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::http1::Conn;
use crate::load::{measure, Sample};
use crate::peers::{self, Peer, PeerKind};
use crate::procs::{self, Gateway, GatewayConfig, Launcher, TicketServer};
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

/// Which peers to run on the proxied path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerChoice {
    /// nginx.
    Nginx,
    /// HAProxy.
    Haproxy,
    /// Neither.
    None,
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
    /// Measured repetitions per workload (rounds: each side once per round).
    #[arg(long, env = "BENCH_REPS", default_value_t = 3)]
    pub reps: usize,
    /// Live tickets for the memory measurement; 0 skips it.
    #[arg(long, env = "BENCH_TICKETS", default_value_t = 1_000_000)]
    pub tickets: u64,
    /// Only these workloads (comma-separated), each with its references; `direct` means
    /// `proxied`. Unset: all.
    #[arg(long, env = "BENCH_WORKLOADS", value_enum, value_delimiter = ',')]
    pub workloads: Vec<Workload>,
    /// Another `ticket-gateway` binary (an earlier build, same command line) to measure
    /// beside this one: every gateway workload alternates it with the new one, both up on
    /// the same configuration, for new/old ratios.
    #[arg(long, env = "BENCH_AGAINST")]
    pub against: Option<PathBuf>,
    /// Peers on the proxied path (comma-separated). Unset: nginx and HAProxy, those that
    /// are installed; `none`: neither.
    #[arg(long, env = "BENCH_PEERS", value_enum, value_delimiter = ',')]
    pub peers: Vec<PeerChoice>,
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
            .map(|&(w, _)| w)
            .filter(|&w| wanted(w))
            .collect())
    }

    /// The peers to run.
    pub fn peer_kinds(&self) -> Vec<PeerKind> {
        if self.peers.contains(&PeerChoice::None) {
            return Vec::new();
        }
        let all = self.peers.is_empty();
        [
            (PeerChoice::Nginx, PeerKind::Nginx),
            (PeerChoice::Haproxy, PeerKind::Haproxy),
        ]
        .into_iter()
        .filter(|(c, _)| all || self.peers.contains(c))
        .map(|(_, k)| k)
        .collect()
    }
}

fn suite_names() -> String {
    SUITE
        .iter()
        .map(|(w, _)| w.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// A reference run whose load generator used this much of a core (%) may have measured the
/// client, not the server.
const CLIENT_SATURATED_PCT: f64 = 95.0;

/// A server a workload is compared against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reference {
    /// The hello ceiling (`GET /`, not the workload's own request).
    Hello,
    /// The workload's request sent straight to the back end.
    Direct,
    /// The minimal ticket server.
    TicketServer,
    /// nginx or HAProxy in front of the back end.
    Peer(PeerKind),
}

const LOGIN_REFERENCES: &[Reference] = &[Reference::Hello, Reference::TicketServer];
const PEERS: &[Reference] = &[
    Reference::Peer(PeerKind::Nginx),
    Reference::Peer(PeerKind::Haproxy),
];

/// The workloads run against each gateway, in order, with the references each is measured
/// with (besides the old binary, when there is one).
const SUITE: &[(Workload, &[Reference])] = &[
    (Workload::QpsIssue, LOGIN_REFERENCES),
    (Workload::QpsIssueRedeem, LOGIN_REFERENCES),
    (Workload::QvGetwebticket, LOGIN_REFERENCES),
    (Workload::QvGetwebticketAuthenticate, LOGIN_REFERENCES),
    (
        Workload::Proxied,
        &[
            Reference::Direct,
            Reference::Peer(PeerKind::Nginx),
            Reference::Peer(PeerKind::Haproxy),
        ],
    ),
    (Workload::Download, PEERS),
    (Workload::Upload, PEERS),
    (Workload::Websocket, PEERS),
    (Workload::SessionGet, &[Reference::Hello]),
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
#[derive(Debug, Clone)]
struct Side {
    /// Its name in the progress lines and in the `reference` column of the rows compared
    /// with it.
    name: &'static str,
    /// The `server` column of its own row.
    server: &'static str,
    /// The `store` column of its own row.
    store: &'static str,
    /// What it is, for the notes; `None` for the gateways.
    reference: Option<Reference>,
    workload: Workload,
    targets: Arc<Targets>,
    pids: Vec<u32>,
    deps: Vec<u32>,
}

impl Side {
    async fn measure(&self, connections: usize, window: Duration) -> Result<Sample, String> {
        measure(
            self.workload,
            &self.targets,
            connections,
            window,
            &self.pids,
            &self.deps,
        )
        .await
    }
}

struct Bench<'a> {
    opts: &'a Options,
    launcher: &'a Launcher,
    hello: SocketAddr,
    hello_pid: u32,
    /// The back end behind the gateway's `up` virtual proxy and the peers, on the load
    /// generator's CPU.
    upstream: SocketAddr,
    upstream_pid: u32,
    ticket_server: Option<TicketServer>,
    peers: Vec<Peer>,
    /// The old binary's launcher (`BENCH_AGAINST`).
    old: Option<Launcher>,
    /// Logs of every server started, emptied before each round.
    logs: Vec<PathBuf>,
    hello_samples: Vec<Sample>,
    rows: Vec<Row>,
    notes: Vec<String>,
}

/// Runs everything and prints the tables; rows also go to `<out>/results.csv`.
pub async fn run(opts: &Options, launcher: &Launcher) -> Result<(), String> {
    let selected = opts.selected()?;
    let old = match &opts.against {
        Some(path) if !path.is_file() => {
            return Err(format!("BENCH_AGAINST={}: no such binary", path.display()))
        }
        Some(path) => Some(Launcher {
            gateway: path.clone(),
            ..launcher.clone()
        }),
        None => None,
    };
    let (hello_proc, hello) = launcher.hello()?;
    let (upstream_proc, upstream) = launcher.upstream()?;
    let cpus = |c: &Option<String>| c.clone().unwrap_or_else(|| "any".to_owned());
    eprintln!(
        "bench: {} s warm-up, {} × {} s measured per side, {} connections; hello on {hello} \
         (CPU {}), back end on {upstream} (CPU {})",
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
        ticket_server: None,
        peers: Vec::new(),
        old,
        logs: Vec::new(),
        hello_samples: Vec::new(),
        rows: Vec::new(),
        notes: Vec::new(),
    };
    if let (Some(want), Some(have)) = (&launcher.loadgen_cpus, procs::own_cpus()) {
        if *want != have {
            bench.note(format!(
                "the load generator runs on CPUs {have}, but BENCH_LOADGEN_CPUS={want} (where \
                 the back end is pinned): run it through scripts/bench or taskset -c {want}"
            ));
        }
    }
    if opts.reps < 3 {
        bench.note(format!(
            "BENCH_REPS={}: every ratio is the median of fewer than three pairs, a smoke \
             run's figures, not a measurement",
            opts.reps
        ));
    }
    bench.start_references(&selected);
    match opts.store {
        Some(StoreChoice::Redis) => bench.redis_suite(&selected, None, true).await?,
        Some(StoreChoice::Memory) => {
            bench.memory_suite(&selected).await?;
        }
        None => {
            let memory = bench.memory_suite(&selected).await?;
            if selected.contains(&Workload::QpsIssueRedeem) {
                if procs::on_path("redis-server") {
                    bench
                        .redis_suite(&[Workload::QpsIssueRedeem], memory.as_ref(), false)
                        .await?;
                } else {
                    bench.note("Redis run skipped: no redis-server installed".into());
                }
            }
        }
    }
    // The references are stopped before the memory measurement starts its gateways.
    bench.ticket_server = None;
    bench.peers.clear();
    let mut rows = Vec::new();
    if !bench.hello_samples.is_empty() {
        rows.push(Row::reference(
            Workload::Hello,
            "hello",
            "-",
            &bench.hello_samples,
        ));
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
    println!();
    print!("{}", report::ratios(&rows));
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

    /// Starts the minimal ticket server and the peers the selected workloads need; one
    /// that cannot start is noted, and its comparisons left out.
    fn start_references(&mut self, selected: &[Workload]) {
        let needs = |r: Reference| {
            SUITE
                .iter()
                .any(|(w, refs)| selected.contains(w) && refs.contains(&r))
        };
        if needs(Reference::TicketServer) {
            match self.launcher.ticket_server() {
                Ok(ts) => {
                    eprintln!(
                        "bench: minimal ticket server on api={} frontend={}",
                        ts.api, ts.frontend
                    );
                    self.ticket_server = Some(ts);
                }
                Err(e) => self.note(format!("no minimal ticket server: {e}")),
            }
        }
        for kind in self.opts.peer_kinds() {
            if !needs(Reference::Peer(kind)) {
                continue;
            }
            if !procs::on_path(kind.program()) {
                self.note(format!(
                    "{} is not installed (scripts/bench installs it): its rows are skipped",
                    kind.name()
                ));
                continue;
            }
            match peers::start(self.launcher, kind, self.upstream) {
                Ok(peer) => {
                    eprintln!(
                        "bench: {} on {} (pids {:?}), access log {}",
                        kind.name(),
                        peer.addr,
                        peer.pids,
                        peer.log.display()
                    );
                    self.logs.push(peer.log.clone());
                    self.peers.push(peer);
                }
                Err(e) => self.note(format!("{} did not start: {e}", kind.name())),
            }
        }
    }

    /// Empties every log before a round, so a full run's logging does not pile up on disk.
    fn clear_logs(&self) {
        for log in &self.logs {
            procs::truncate(log);
        }
    }

    /// Runs the workloads on a memory-store gateway (and the old binary beside it) and
    /// hands it back, still running, for the Redis comparison.
    async fn memory_suite(&mut self, workloads: &[Workload]) -> Result<Option<Subject>, String> {
        let launcher = self.launcher;
        let Some(subject) = self
            .start("gateway-memory", launcher, None, Vec::new())
            .await?
        else {
            return Ok(None);
        };
        let old = self.start_old("gateway-old-memory", None, Vec::new()).await;
        self.suite(&subject, old.as_ref(), workloads, true).await;
        Ok(Some(subject))
    }

    /// With a Redis store: on `BENCH_REDIS_URL`, else on a private redis-server. With the
    /// memory-store gateway still running, each workload is then measured on both stores
    /// alternately (memory, Redis, memory, Redis, ...) for a Redis-over-memory row. `full`:
    /// with every reference, else with hello (and the old binary) only.
    async fn redis_suite(
        &mut self,
        workloads: &[Workload],
        memory: Option<&Subject>,
        full: bool,
    ) -> Result<(), String> {
        let (_redis, url, deps) = match &self.opts.redis_url {
            Some(url) => (None, url.clone(), Vec::new()),
            None => {
                let (proc, port) = self.launcher.redis()?;
                let pid = proc.pid;
                (Some(proc), format!("redis://127.0.0.1:{port}"), vec![pid])
            }
        };
        let launcher = self.launcher;
        let Some(subject) = self
            .start("gateway-redis", launcher, Some(url.clone()), deps.clone())
            .await?
        else {
            return Ok(());
        };
        let old = self.start_old("gateway-old-redis", Some(url), deps).await;
        self.suite(&subject, old.as_ref(), workloads, full).await;
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
        let side = |s: &Subject, targets: Targets, name: &'static str| Side {
            name,
            server: "gateway",
            store: s.store,
            reference: None,
            workload,
            targets: Arc::new(targets),
            pids: vec![s.gateway.proc.pid],
            deps: s.deps.clone(),
        };
        let mut sides = vec![
            side(m, prepare(workload, &m.targets).await?, "memory"),
            side(r, prepare(workload, &r.targets).await?, "Redis"),
        ];
        let label = format!("{} (memory against Redis)", workload.name());
        let samples = self.rotate(&label, &mut sides).await?;
        self.rows.push(Row::compared(
            workload,
            "gateway",
            "redis",
            "memory",
            &samples[0],
            &samples[1],
        ));
        Ok(())
    }

    /// The old binary (`BENCH_AGAINST`) on the same configuration as the new one, if asked
    /// for; one that does not start is noted and left out.
    async fn start_old(
        &mut self,
        name: &str,
        redis_url: Option<String>,
        deps: Vec<u32>,
    ) -> Option<Subject> {
        let launcher = self.old.clone()?;
        match self.start(name, &launcher, redis_url, deps).await {
            Ok(Some(old)) => {
                eprintln!(
                    "bench: old binary {} on frontend={} api={}",
                    launcher.gateway.display(),
                    old.gateway.frontend,
                    old.gateway.api
                );
                Some(old)
            }
            Ok(None) => None,
            Err(e) => {
                self.note(format!("the old binary did not start: {e}"));
                None
            }
        }
    }

    /// Starts a gateway of `launcher`'s binary with the upstream hello behind its `up`
    /// virtual proxy and probes it. `Ok(None)`: a Redis configuration the gateway refuses
    /// (noted, not an error).
    async fn start(
        &mut self,
        name: &str,
        launcher: &Launcher,
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
        let path = match launcher.write_config(name, &config) {
            Ok(p) => p,
            Err(first) => {
                config.proxy_upstream = None;
                match launcher.write_config(name, &config) {
                    Ok(p) => {
                        let why = format!("the gateway refuses `upstream`: {first}");
                        for w in SUITE.iter().map(|(w, _)| *w).filter(|w| w.is_proxied()) {
                            skipped.push((w, why.clone()));
                        }
                        p
                    }
                    Err(e) if redis => {
                        self.note(format!(
                            "{name} skipped: the gateway refuses [store] backend = \"redis\": {e}"
                        ));
                        return Ok(None);
                    }
                    Err(e) => return Err(format!("the gateway refuses its configuration: {e}")),
                }
            }
        };
        let gateway = launcher.gateway(&path)?;
        self.logs.push(gateway.log.clone());
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

    /// What a gateway side of `workload` is charged for: its own process, and what it
    /// depends on (the back end for the proxied workloads, then its redis-server).
    fn gateway_side(
        &self,
        s: &Subject,
        workload: Workload,
        targets: Targets,
        name: &'static str,
        server: &'static str,
    ) -> Side {
        let mut deps = Vec::new();
        if workload.is_proxied() {
            deps.push(self.upstream_pid);
        }
        deps.extend(&s.deps);
        Side {
            name,
            server,
            store: s.store,
            reference: None,
            workload,
            targets: Arc::new(targets),
            pids: vec![s.gateway.proc.pid],
            deps,
        }
    }

    /// The side of reference `r` for `workload`, or `None` if that reference is not
    /// running. `prepared`: the gateway's targets, ready for the workload.
    fn reference_side(&self, r: Reference, workload: Workload, prepared: &Targets) -> Option<Side> {
        let side = |name, server, workload, targets, pids, deps| Side {
            name,
            server,
            store: "-",
            reference: Some(r),
            workload,
            targets: Arc::new(targets),
            pids,
            deps,
        };
        Some(match r {
            Reference::Hello => side(
                "hello",
                "hello",
                Workload::Hello,
                prepared.clone(),
                vec![self.hello_pid],
                vec![],
            ),
            Reference::Direct => side(
                "direct",
                "upstream",
                Workload::Direct,
                prepared.clone(),
                vec![self.upstream_pid],
                vec![],
            ),
            Reference::TicketServer => {
                let ts = self.ticket_server.as_ref()?;
                let targets = Targets {
                    api: Some(ts.api),
                    frontend: Some(ts.frontend),
                    ..Targets::default()
                };
                side(
                    "ticket-server",
                    "ticket-server",
                    workload,
                    targets,
                    vec![ts.proc.pid],
                    vec![],
                )
            }
            Reference::Peer(kind) => {
                let peer = self.peers.iter().find(|p| p.kind == kind)?;
                let targets = Targets {
                    frontend: Some(peer.addr),
                    ..prepared.clone()
                };
                side(
                    kind.name(),
                    kind.name(),
                    workload,
                    targets,
                    peer.pids.clone(),
                    vec![self.upstream_pid],
                )
            }
        })
    }

    /// Runs each workload with its references; a workload whose feature is missing, or
    /// that fails, is noted and the others go on. `full`: every reference, else hello and
    /// `direct` only; the old binary in both cases.
    async fn suite(
        &mut self,
        s: &Subject,
        old: Option<&Subject>,
        workloads: &[Workload],
        full: bool,
    ) {
        for &(workload, references) in SUITE.iter().filter(|(w, _)| workloads.contains(w)) {
            let prepared = match s.skipped.iter().find(|(w, _)| *w == workload) {
                Some((_, why)) => Err(why.clone()),
                None => prepare(workload, &s.targets).await,
            };
            let prepared = match prepared {
                Ok(t) => t,
                Err(why) => {
                    self.note(format!(
                        "{} skipped ({} store): {why}",
                        workload.name(),
                        s.store
                    ));
                    continue;
                }
            };
            let mut sides: Vec<Side> = references
                .iter()
                .filter(|r| full || matches!(r, Reference::Hello | Reference::Direct))
                .filter_map(|&r| self.reference_side(r, workload, &prepared))
                .collect();
            if let Some(old) = old {
                let ready = match old.skipped.iter().find(|(w, _)| *w == workload) {
                    Some((_, why)) => Err(why.clone()),
                    None => prepare(workload, &old.targets).await,
                };
                match ready {
                    Ok(t) => sides.push(self.gateway_side(old, workload, t, "old", "gateway-old")),
                    Err(why) => self.note(format!(
                        "{} without the old binary ({} store): {why}",
                        workload.name(),
                        s.store
                    )),
                }
            }
            if sides.is_empty() {
                self.note(format!(
                    "{} skipped ({} store): none of its references is running",
                    workload.name(),
                    s.store
                ));
                continue;
            }
            sides.push(self.gateway_side(s, workload, prepared, "gateway", "gateway"));
            if let Err(e) = self.compare(s.store, workload, sides).await {
                self.note(format!(
                    "{} failed ({} store): {e}",
                    workload.name(),
                    s.store
                ));
            }
        }
    }

    /// Warms each side up, then measures every side once per round, `reps` rounds,
    /// emptying the logs before each; `label` names the comparison in the progress lines.
    /// The last side is the subject: if it fails, so does the comparison; a reference that
    /// fails to warm up is noted and left out. Returns the samples of the sides left, in
    /// their order.
    async fn rotate(
        &mut self,
        label: &str,
        sides: &mut Vec<Side>,
    ) -> Result<Vec<Vec<Sample>>, String> {
        let c = &self.opts.common;
        let (connections, reps) = (c.connections, self.opts.reps);
        let (warmup, seconds) = (
            Duration::from_secs(c.warmup),
            Duration::from_secs(c.seconds),
        );
        self.clear_logs();
        let mut i = 0;
        while i < sides.len() {
            match sides[i].measure(connections, warmup).await {
                Ok(_) => i += 1,
                Err(e) if i + 1 < sides.len() => {
                    let side = sides.remove(i);
                    self.note(format!(
                        "{label}: {} left out, its warm-up failed: {e}",
                        side.name
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        let mut samples = vec![Vec::new(); sides.len()];
        for rep in 1..=reps {
            self.clear_logs();
            let mut line = format!("bench: {label} rep {rep}/{reps}:");
            for (side, out) in sides.iter().zip(&mut samples) {
                let sample = side.measure(connections, seconds).await?;
                let unit = match side.workload {
                    Workload::Websocket => "msg/s",
                    _ => "req/s",
                };
                line += &format!(" {} {:.0} {unit},", side.name, sample.rps());
                out.push(sample);
            }
            eprintln!("{}", line.trim_end_matches(','));
        }
        Ok(samples)
    }

    /// Measures `sides` (the gateway last) in rounds and pushes the rows: one per
    /// reference (hello's samples join the one hello row), and one for the gateway against
    /// each reference.
    async fn compare(
        &mut self,
        store: &'static str,
        workload: Workload,
        mut sides: Vec<Side>,
    ) -> Result<(), String> {
        let label = format!("{} ({store})", workload.name());
        let samples = self.rotate(&label, &mut sides).await?;
        let (gateway, references) = samples.split_last().expect("the gateway side is last");
        let sides = &sides[..references.len()];
        for (side, ss) in sides.iter().zip(references) {
            self.reference_notes(store, workload, side, ss, gateway);
            match side.reference {
                Some(Reference::Hello) => self.hello_samples.extend(ss.iter().cloned()),
                _ => self
                    .rows
                    .push(Row::reference(side.workload, side.server, side.store, ss)),
            }
        }
        for (side, ss) in sides.iter().zip(references) {
            self.rows.push(Row::compared(
                workload, "gateway", store, side.name, ss, gateway,
            ));
        }
        Ok(())
    }

    /// Notes on how far a reference's figures can be trusted: a saturated client, and how
    /// busy the load generator's CPU was with `direct` and through the proxy.
    fn reference_notes(
        &mut self,
        store: &str,
        workload: Workload,
        side: &Side,
        reference: &[Sample],
        gateway: &[Sample],
    ) {
        if !matches!(side.reference, Some(Reference::Hello | Reference::Direct)) {
            return;
        }
        let busiest = reference
            .iter()
            .filter_map(Sample::client_cpu_percent)
            .fold(f64::NAN, f64::max);
        if busiest >= CLIENT_SATURATED_PCT {
            self.note(format!(
                "the load generator used {busiest:.0}% of a core during the {} reference of {} \
                 ({store} store): the ceiling may be the client's, not {}'s",
                side.name,
                workload.name(),
                if side.reference == Some(Reference::Direct) {
                    "the back end"
                } else {
                    "hello"
                },
            ));
        }
        if side.reference == Some(Reference::Direct) {
            // The load generator's CPU carries the client and the back end in both.
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
                "load generator + back end on CPU {}: {} of a core in direct, {} in proxied \
                 ({store} store)",
                self.launcher.loadgen_cpus.as_deref().unwrap_or("any"),
                busy(reference, true),
                busy(gateway, false),
            ));
        }
    }
}

/// What a workload needs just before it runs: a session cookie of the `up` virtual proxy
/// for the proxied workloads (`direct` and the peers send the same request, cookie
/// included) and the session `session-get` reads. `Err` says why the workload cannot run
/// on this gateway.
async fn prepare(workload: Workload, targets: &Targets) -> Result<Targets, String> {
    let mut t = targets.clone();
    if workload.is_proxied() {
        t.cookie = Some(session_cookie(&t).await?);
        probe_upstream(&t).await?;
    } else if workload == Workload::SessionGet {
        create_session(&t).await?;
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        options: Options,
    }

    fn options(args: &[&str]) -> Options {
        Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .unwrap()
            .options
    }

    #[test]
    fn peers_default_to_both() {
        // (Unset in the environment: the defaults come from it.)
        if std::env::var_os("BENCH_PEERS").is_none() {
            let both = [PeerKind::Nginx, PeerKind::Haproxy];
            assert_eq!(options(&[]).peer_kinds(), both);
        }
        assert_eq!(
            options(&["--peers", "haproxy"]).peer_kinds(),
            [PeerKind::Haproxy]
        );
        assert!(options(&["--peers", "none"]).peer_kinds().is_empty());
    }

    #[test]
    fn workloads_are_selected_in_suite_order() {
        let o = options(&["--workloads", "websocket,direct,qps-issue"]);
        assert_eq!(
            o.selected().unwrap(),
            [Workload::QpsIssue, Workload::Proxied, Workload::Websocket]
        );
        if std::env::var_os("BENCH_WORKLOADS").is_none() {
            assert_eq!(options(&[]).selected().unwrap().len(), SUITE.len());
        }
        assert!(options(&["--workloads", "hello"]).selected().is_err());
    }

    #[test]
    fn every_suite_workload_has_a_reference_and_targets_use_them() {
        for &(w, refs) in SUITE {
            assert!(!refs.is_empty(), "{}", w.name());
            // The proxied workloads are compared with the peers, the logins with the
            // minimal ticket server: the references the targets name.
            if w.is_proxied() {
                assert!(refs.contains(&Reference::Peer(PeerKind::Nginx)));
                assert!(report::targets(w, "nginx").0.is_some());
            }
            if report::targets(w, "ticket-server").0.is_some() {
                assert!(refs.contains(&Reference::TicketServer));
            }
        }
    }
}
