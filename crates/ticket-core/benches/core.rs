//! Micro-benchmarks of the ticket core: what every issued ticket pays before any HTTP.
//!
//! `cargo bench -p ticket-core`. The end-to-end figures are `scripts/bench`; these say how
//! much of them is id generation and the in-memory store.
//!
//! The store is called as the gateway calls it: through `&dyn Store`, one login of a user
//! of its own after another (issue a ticket; take it and start a session within the
//! per-user limit; touch the session on later requests), with mimalloc as the allocator.
//!
//! **Counting instructions.** With `TICKET_CORE_COUNT=<op>` the binary runs no criterion
//! benchmark: it fills a store, then performs `TICKET_CORE_N` (default 10,000) operations
//! of one kind inside the function `measured_ops`, polling each store future by hand (the
//! in-memory store never waits). Under callgrind, collect only that function and divide by
//! the count:
//!
//! ```sh
//! TICKET_CORE_COUNT=touch_session valgrind --tool=callgrind \
//!     --toggle-collect='*measured_ops*' target/release/deps/core-<hash>
//! ```
//!
//! `<op>` is one of `insert_ticket`, `take_ticket`, `insert_session`, `touch_session`,
//! `session`, or `ping` for the cost of the call itself; or `memory`, which prints the
//! resident bytes per live ticket instead.

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use ticket_core::{id, Identity, MemoryStore, Session, SessionLimit, Store, Ticket};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REALM: &str = "qps/ext";
const TICKET_TTL: Duration = Duration::from_secs(60);
const IDLE: Duration = Duration::from_secs(30 * 60);
const LIMIT: Option<SessionLimit> = Some(SessionLimit {
    max: 5,
    evict_oldest: false,
});

fn identity(n: usize) -> Identity {
    Identity::Qps {
        user_directory: "ACME".into(),
        user_id: format!("user{n}"),
        attributes: vec![("Group".into(), "Sales".into())],
    }
}

fn ticket(n: usize) -> Ticket {
    Ticket {
        realm: REALM.into(),
        identity: identity(n),
        target_uri: None,
    }
}

fn session(n: usize) -> Session {
    Session::new(REALM, id::guid(), identity(n))
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(NoopWake));
}

/// Runs a store future that never waits (every in-memory store operation).
fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    WAKER.with(
        |waker| match fut.as_mut().poll(&mut Context::from_waker(waker)) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("an in-memory store operation waited"),
        },
    )
}

/// The only function callgrind collects in counting mode.
#[inline(never)]
fn measured_ops(n: usize, mut op: impl FnMut(usize)) {
    for i in 0..n {
        op(i);
    }
}

/// Counting mode: see the module documentation.
fn count(op: &str) {
    let n: usize = std::env::var("TICKET_CORE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _enter = rt.enter();
    let memory = MemoryStore::new();
    let store: &dyn Store = &memory;
    // Entries already there, so the maps are not tiny when measuring.
    let prefill = if op == "memory" { 0 } else { n };
    for i in 0..prefill {
        ready(store.insert_ticket(&id::qps_ticket(), &ticket(i), TICKET_TTL)).expect("insert");
        ready(store.insert_session(&session(i), IDLE, LIMIT)).expect("session");
    }
    match op {
        "insert_ticket" => {
            let ids: Vec<String> = (0..n).map(|_| id::qps_ticket()).collect();
            let tickets: Vec<Ticket> = (0..n).map(|i| ticket(prefill + i)).collect();
            measured_ops(n, |i| {
                ready(store.insert_ticket(&ids[i], &tickets[i], TICKET_TTL)).expect("insert");
            });
        }
        "take_ticket" => {
            let ids: Vec<String> = (0..n).map(|_| id::qps_ticket()).collect();
            for (i, id) in ids.iter().enumerate() {
                ready(store.insert_ticket(id, &ticket(prefill + i), TICKET_TTL)).expect("insert");
            }
            measured_ops(n, |i| {
                let t = ready(store.take_ticket(&ids[i])).expect("take");
                assert!(black_box(t).is_some());
            });
        }
        "insert_session" => {
            let sessions: Vec<Session> = (0..n).map(|i| session(prefill + i)).collect();
            measured_ops(n, |i| {
                let evicted = ready(store.insert_session(&sessions[i], IDLE, LIMIT));
                assert!(black_box(evicted).expect("insert").is_empty());
            });
        }
        "touch_session" | "session" => {
            let sessions: Vec<Session> = (0..n).map(|i| session(prefill + i)).collect();
            for s in &sessions {
                ready(store.insert_session(s, IDLE, LIMIT)).expect("insert");
            }
            let touch = op == "touch_session";
            measured_ops(n, |i| {
                let s = &sessions[i];
                let found = if touch {
                    ready(store.touch_session(&s.realm, &s.id))
                } else {
                    ready(store.session(&s.realm, &s.id))
                };
                assert!(black_box(found).expect("read").is_some());
            });
        }
        // The floor under every figure: the boxed future of a `dyn Store` call and this
        // loop, with a store operation that does nothing.
        "ping" => measured_ops(n, |_| ready(store.ping()).expect("ping")),
        "memory" => ticket_memory(store),
        other => panic!("TICKET_CORE_COUNT: unknown operation {other:?}"),
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// `TICKET_CORE_COUNT=memory`: resident bytes per live ticket with `TICKET_CORE_N` live
/// tickets (default 1,000,000), QPS and then QlikView web tickets (`TICKET_CORE_KIND=qps`
/// or `qlikview` for one alone), as the gateway issues them; the store only, without the
/// gateway around it.
fn ticket_memory(store: &dyn Store) {
    let n: usize = std::env::var("TICKET_CORE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let long = Duration::from_secs(3600);
    let web = |i: usize| Ticket {
        realm: "qlikview".into(),
        identity: Identity::QlikView {
            user_id: format!("ACME\\user{i}"),
            groups: vec!["Sales".into()],
            groups_is_names: true,
        },
        target_uri: None,
    };
    let kind = std::env::var("TICKET_CORE_KIND").unwrap_or_default();
    for (name, new_id, make) in [
        (
            "QPS",
            id::qps_ticket as fn() -> String,
            ticket as fn(usize) -> Ticket,
        ),
        ("QlikView web", id::web_ticket, web),
    ] {
        // `qps` or `qlikview` alone: one kind per process, so one fill leaves no freed memory
        // behind in the other's figure.
        if !kind.is_empty() && !name.to_lowercase().starts_with(&kind) {
            continue;
        }
        let user_data = {
            let t = make(n / 2);
            let s = |s: &str| s.len();
            let identity = match &t.identity {
                Identity::Qps {
                    user_directory,
                    user_id,
                    attributes,
                } => {
                    s(user_directory)
                        + s(user_id)
                        + attributes.iter().map(|(k, v)| s(k) + s(v)).sum::<usize>()
                }
                Identity::QlikView {
                    user_id, groups, ..
                } => s(user_id) + groups.iter().map(|g| s(g)).sum::<usize>(),
            };
            s(&t.realm) + identity + new_id().len()
        };
        // Settle as `gateway-bench memory` does: a first batch, so the maps' first table
        // sizes and the allocator's arenas are not counted per ticket; and a pause before
        // each reading, for the allocator to return what table growth freed.
        let settle = 10_000;
        for i in 0..settle {
            ready(store.insert_ticket(&new_id(), &make(i), long)).expect("insert");
        }
        std::thread::sleep(Duration::from_millis(300));
        let before = rss();
        for i in settle..settle + n {
            ready(store.insert_ticket(&new_id(), &make(i), long)).expect("insert");
        }
        std::thread::sleep(Duration::from_millis(300));
        let after = rss();
        println!(
            "memory: {n} live {name} tickets: {:.0} bytes of RSS per live ticket ({user_data} bytes of user data and id each)",
            after.saturating_sub(before) as f64 / n as f64
        );
    }
}

fn ids(c: &mut Criterion) {
    c.bench_function("id::qps_ticket", |b| b.iter(id::qps_ticket));
    c.bench_function("id::web_ticket", |b| b.iter(id::web_ticket));
    // Drawn for every session a login starts.
    c.bench_function("id::csrf_token", |b| b.iter(id::csrf_token));
}

fn memory_store(c: &mut Criterion) {
    // The store's purge task needs a runtime; current-thread, as one request runs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _enter = rt.enter();
    let memory = MemoryStore::new();
    let store: &dyn Store = &memory;
    let one = ticket(0);
    // Fresh ids per iteration, generated outside the timed part's concern but inside the
    // loop: insert + take is the life of one ticket.
    c.bench_function("MemoryStore insert+take ticket", |b| {
        b.iter_batched(
            id::qps_ticket,
            |key| {
                ready(store.insert_ticket(&key, &one, TICKET_TTL)).expect("insert");
                black_box(ready(store.take_ticket(&key)).expect("take"))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    // A new user's login: the session goes in under the per-user limit. Sessions inserted
    // in one batch are removed again while the next is set up (not timed), so the map
    // does not grow without end.
    let inserted = std::cell::RefCell::new(Vec::<Session>::new());
    let mut n = 0;
    c.bench_function("MemoryStore insert_session (limit, new user)", |b| {
        b.iter_batched(
            || {
                for s in inserted.borrow_mut().drain(..) {
                    ready(store.remove_session(&s.realm, &s.id)).expect("remove");
                }
                n += 1;
                session(n)
            },
            |s| {
                let evicted = ready(store.insert_session(&s, IDLE, LIMIT)).expect("insert");
                black_box(evicted);
                inserted.borrow_mut().push(s);
            },
            criterion::BatchSize::SmallInput,
        );
    });
    let live: Vec<Session> = (0..10_000).map(|i| session(1_000_000 + i)).collect();
    for s in &live {
        ready(store.insert_session(s, IDLE, LIMIT)).expect("insert");
    }
    let mut i = 0;
    c.bench_function("MemoryStore touch_session", |b| {
        b.iter(|| {
            i = (i + 1) % live.len();
            let s = &live[i];
            black_box(ready(store.touch_session(&s.realm, &s.id)).expect("touch"))
        })
    });
    c.bench_function("MemoryStore session", |b| {
        b.iter(|| {
            i = (i + 1) % live.len();
            let s = &live[i];
            black_box(ready(store.session(&s.realm, &s.id)).expect("read"))
        })
    });
    // What every `/metrics` scrape asks, here of the 10,000 live sessions above.
    c.bench_function("MemoryStore count_sessions (10,000 live)", |b| {
        b.iter(|| black_box(ready(store.count_sessions(REALM)).expect("count")))
    });
    // The life of an OpenID Connect login's state: kept, then taken by the callback.
    let state = r#"{"nonce":"n-0123456789","verifier":"v-0123456789abcdef","target":"/hub/"}"#;
    c.bench_function("MemoryStore insert+take value", |b| {
        b.iter_batched(
            id::guid,
            |key| {
                ready(store.insert_value(&key, state, TICKET_TTL)).expect("insert");
                black_box(ready(store.take_value(&key)).expect("take"))
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, ids, memory_store);

fn main() {
    if let Ok(op) = std::env::var("TICKET_CORE_COUNT") {
        count(&op);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
