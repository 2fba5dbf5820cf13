//! Micro-benchmarks of the ticket core: what every issued ticket pays before any HTTP.
//!
//! `cargo bench -p ticket-core`. The end-to-end figures are `scripts/bench`; these say how
//! much of them is id generation and the in-memory store.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ticket_core::model::qps_realm;
use ticket_core::{id, Identity, MemoryStore, Store, Ticket};

fn ids(c: &mut Criterion) {
    c.bench_function("id::qps_ticket", |b| b.iter(id::qps_ticket));
    c.bench_function("id::web_ticket", |b| b.iter(id::web_ticket));
}

fn memory_store(c: &mut Criterion) {
    // The store's purge task needs a runtime; current-thread, as one request runs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = rt.block_on(async { MemoryStore::new() });
    let ticket = Ticket {
        realm: qps_realm(""),
        identity: Identity::Qps {
            user_directory: "ACME".into(),
            user_id: "jdoe".into(),
            attributes: vec![("Group".into(), "Sales".into())],
        },
        target_uri: None,
    };
    let ttl = Duration::from_secs(60);
    // Fresh ids per iteration, generated outside the timed part's concern but inside the
    // loop: insert + take is the life of one ticket.
    c.bench_function("MemoryStore insert+take ticket", |b| {
        b.iter_batched(
            id::qps_ticket,
            |key| {
                rt.block_on(async {
                    store
                        .insert_ticket(&key, &ticket, ttl)
                        .await
                        .expect("insert");
                    black_box(store.take_ticket(&key).await.expect("take"))
                })
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, ids, memory_store);
criterion_main!(benches);
