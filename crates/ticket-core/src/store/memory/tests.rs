//! Tests of the memory store's own machinery: borrowed lookups, the user index, and the
//! purge's locking, audit trail and ownership. The behaviour every backend shares is
//! checked by the contract suite in `tests/store_contract.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use super::sharded::{lock, SHARDS, SWEEP_SLOTS};
use super::users::user_index_key;
use super::{Maps, MemoryStore, Purged};
use crate::audit::fingerprint;
use crate::model::{Identity, Session, Ticket};
use crate::store::{SessionLimit, Store};

const REALM: &str = "qps/ext";
const LONG: Duration = Duration::from_secs(3600);

fn qps(dir: &str, user: &str) -> Identity {
    Identity::Qps {
        user_directory: dir.into(),
        user_id: user.into(),
        attributes: vec![("Group".into(), "Sales".into())],
    }
}

fn session(realm: &str, id: &str, identity: Identity) -> Session {
    Session::new(realm, id, identity)
}

fn limit(max: usize, evict_oldest: bool) -> Option<SessionLimit> {
    Some(SessionLimit { max, evict_oldest })
}

/// A store whose own purge task stays out of the way of a test's `purge_now`.
fn quiet_store() -> MemoryStore {
    MemoryStore::with_purge_interval(Duration::from_secs(24 * 3600))
}

#[test]
fn the_user_index_key_is_realm_then_user_key() {
    for identity in [
        qps("ACME", "JDoe"),
        qps("", ""),
        qps("Ünïcode", "ΟΔΟΣ"),
        qps("a\\b", "C"),
        Identity::QlikView {
            user_id: "ACME\\JDoe".into(),
            groups: vec![],
            groups_is_names: true,
        },
        Identity::QlikView {
            user_id: "İSTANBUL ΣΑΣ".into(),
            groups: vec![],
            groups_is_names: false,
        },
    ] {
        let (key, realm_len) = user_index_key(REALM, &identity);
        assert_eq!(&key[..realm_len], REALM);
        assert_eq!(&key[realm_len..], identity.user_key(), "{identity:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn borrowed_lookups_find_what_owned_inserts_stored() {
    let store = quiet_store();
    let s = session(
        REALM,
        "0b1c6f7e-aaaa-bbbb-cccc-1234567890ab",
        qps("ACME", "JDoe"),
    );
    store
        .insert_session(&s, LONG, limit(5, false))
        .await
        .unwrap();
    store
        .insert_ticket("QzSPXzBmJKjhucPF", &ticket(REALM, qps("ACME", "x")), LONG)
        .await
        .unwrap();
    store
        .insert_target("g-1", "http://localhost/hub/", LONG)
        .await
        .unwrap();
    // Keys rebuilt from other buffers than the ones inserted.
    let realm = format!("qps/{}", "ext");
    let id = s.id.to_uppercase().to_lowercase();
    assert_eq!(store.session(&realm, &id).await.unwrap().as_ref(), Some(&s));
    assert_eq!(
        store.touch_session(&realm, &id).await.unwrap().as_ref(),
        Some(&s)
    );
    assert_eq!(store.session("qps/", &id).await.unwrap(), None);
    assert_eq!(store.session(&realm, &id[1..]).await.unwrap(), None);
    let user_key = qps("acme", "jdoe").user_key();
    assert_eq!(
        store.user_sessions(&realm, &user_key).await.unwrap(),
        std::slice::from_ref(&s)
    );
    assert!(store
        .user_sessions("qps/", &user_key)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .take_ticket(String::from("QzSPXzBmJKjhucPF").as_str())
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.target(&format!("g-{}", 1)).await.unwrap().as_deref(),
        Some("http://localhost/hub/")
    );
    assert_eq!(store.remove_session(&realm, &id).await.unwrap(), Some(s));
    assert_eq!(store.len(), (0, 1, 0, 0));
    assert_eq!(store.maps.users.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_user_index_forgets_every_ended_session() {
    let store = quiet_store();
    let users = || store.maps.users.len();
    // Ended by logout, with and without a limit.
    for (id, l) in [("a", None), ("b", limit(2, false))] {
        let s = session(REALM, id, qps("ACME", "jdoe"));
        store.insert_session(&s, LONG, l).await.unwrap();
    }
    assert_eq!(users(), 1);
    store.remove_session(REALM, "a").await.unwrap().unwrap();
    store.remove_session(REALM, "b").await.unwrap().unwrap();
    assert_eq!(users(), 0);
    // Evicted.
    for id in ["c", "d"] {
        let s = session(REALM, id, qps("ACME", "jdoe"));
        store
            .insert_session(&s, LONG, limit(1, true))
            .await
            .unwrap();
    }
    assert_eq!(users(), 1, "d");
    // Timed out and purged.
    let short = Duration::from_secs(60);
    store
        .insert_session(&session(REALM, "e", qps("ACME", "other")), short, None)
        .await
        .unwrap();
    // Timed out, and its id reused by another user before the purge came.
    store
        .insert_session(&session(REALM, "f", qps("ACME", "third")), short, None)
        .await
        .unwrap();
    tokio::time::advance(short).await;
    store
        .insert_session(&session(REALM, "f", qps("ACME", "fourth")), LONG, None)
        .await
        .unwrap();
    assert_eq!(store.purge_now().sessions, 1, "e");
    let user = |name: &str| qps("ACME", name).user_key();
    assert!(store
        .user_sessions(REALM, &user("third"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .remove_user_sessions(REALM, &user("jdoe"))
            .await
            .unwrap()
            .len(),
        1,
        "d"
    );
    assert_eq!(
        store
            .remove_user_sessions(REALM, &user("fourth"))
            .await
            .unwrap()
            .len(),
        1,
        "f"
    );
    assert_eq!(users(), 0);
    assert!(store.is_empty());
}

fn ticket(realm: &str, identity: Identity) -> Ticket {
    Ticket {
        realm: realm.into(),
        identity,
        target_uri: None,
    }
}

/// An audit event as a test sees it: its fields, the thread it was emitted on, and how
/// many of the store's shards were locked at that moment.
#[derive(Debug)]
struct Seen {
    fields: BTreeMap<String, String>,
    thread: ThreadId,
    locked_shards: usize,
}

/// A subscriber that records `audit` events, checking the store's locks as each one
/// is emitted.
struct Capture {
    maps: Arc<Maps>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
}

fn locked<T>(shards: &[Mutex<T>]) -> usize {
    shards.iter().filter(|s| s.try_lock().is_err()).count()
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() != "audit" {
            return;
        }
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let m = &self.maps;
        let locked_shards = locked(&m.tickets.shards)
            + locked(&m.targets.shards)
            + locked(&m.sessions.shards)
            + locked(&m.users.shards);
        lock(&self.seen).push(Seen {
            fields,
            thread: std::thread::current().id(),
            locked_shards,
        });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A global subscriber that wants no event but keeps every call site's interest at
/// "sometimes". tracing caches per call site whether anyone listens; a call site first
/// reached on a thread of another test, with no subscriber of its own, would otherwise
/// be cached as "never" and hide its events from the scoped subscribers of these tests.
struct Undecided;

impl tracing::Subscriber for Undecided {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Makes events reach the scoped subscribers of these tests, whatever the other tests
/// of this binary do; see [`Undecided`].
fn capture_reliably() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Undecided);
        tracing::callsite::rebuild_interest_cache();
    });
}

/// A metrics recorder that keeps counter totals by name and labels.
#[derive(Default)]
struct Counters(Mutex<Vec<(String, Arc<AtomicU64>)>>);

impl Counters {
    fn get(&self, key: &str) -> u64 {
        lock(&self.0)
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .sum()
    }
}

struct Total(Arc<AtomicU64>);

impl metrics::CounterFn for Total {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={:?}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let total = Arc::new(AtomicU64::new(0));
        lock(&self.0).push((name, total.clone()));
        metrics::Counter::from_arc(Arc::new(Total(total)))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[tokio::test(start_paused = true)]
async fn the_purge_reports_expiry_with_every_lock_released() {
    let store = quiet_store();
    let ttl = Duration::from_secs(60);
    let web = "9F0C1A77D2B44E8E9A61C0F3B7D25E4A1C9B0E6F";
    let long = "a-rather-long-caller-chosen-ticket-id";
    store
        .insert_ticket("QzSPXzBmJKjhucPF", &ticket(REALM, qps("ACME", "jdoe")), ttl)
        .await
        .unwrap();
    store
        .insert_ticket(long, &ticket(REALM, qps("ACME", "mdoe")), ttl)
        .await
        .unwrap();
    let qv = Identity::QlikView {
        user_id: "ACME\\qv".into(),
        groups: vec!["Sales".into()],
        groups_is_names: true,
    };
    store
        .insert_ticket(web, &ticket("qlikview", qv), ttl)
        .await
        .unwrap();
    store
        .insert_ticket("StillLiveTicketX", &ticket(REALM, qps("ACME", "x")), LONG)
        .await
        .unwrap();
    let s = session(REALM, "s1", qps("ACME", "jdoe"));
    store
        .insert_session(&s, ttl, limit(5, false))
        .await
        .unwrap();
    store
        .insert_target("g1", "http://localhost/", ttl)
        .await
        .unwrap();
    store
        .insert_value("oidc:state", "pending", ttl)
        .await
        .unwrap();
    tokio::time::advance(ttl).await;

    capture_reliably();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let capture = Capture {
        maps: store.maps.clone(),
        seen: seen.clone(),
    };
    let counters = Counters::default();
    let purged = metrics::with_local_recorder(&counters, || {
        tracing::subscriber::with_default(capture, || store.purge_now())
    });
    assert_eq!(
        purged,
        Purged {
            tickets: 3,
            targets: 1,
            sessions: 1,
            values: 1,
        }
    );
    let seen = std::mem::take(&mut *lock(&seen));
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.iter().all(|e| e.locked_shards == 0), "{seen:?}");
    let field = |e: &Seen, f: &str| e.fields.get(f).cloned().unwrap_or_default();
    let expired = |user: &str| {
        seen.iter()
            .find(|e| field(e, "event") == "ticket_expired" && field(e, "user_id") == user)
            .unwrap_or_else(|| panic!("no ticket_expired for {user}: {seen:?}"))
    };
    let jdoe = expired("jdoe");
    assert_eq!(field(jdoe, "vp"), "ext");
    assert_eq!(field(jdoe, "dialect"), "qps");
    assert_eq!(field(jdoe, "user_directory"), "ACME");
    assert_eq!(
        field(jdoe, "ticket"),
        fingerprint("QzSPXzBmJKjhucPF").as_str()
    );
    assert_eq!(
        field(expired("mdoe"), "ticket"),
        fingerprint("(long id)").as_str()
    );
    let web_event = expired("ACME\\qv");
    assert_eq!(field(web_event, "vp"), "");
    assert_eq!(field(web_event, "dialect"), "qlikview");
    assert_eq!(field(web_event, "ticket"), fingerprint(web).as_str());
    let ended = seen
        .iter()
        .find(|e| field(e, "event") == "session_ended")
        .expect("session_ended");
    assert_eq!(field(ended, "reason"), "inactivity timeout");
    assert_eq!(field(ended, "vp"), "ext");
    assert_eq!(field(ended, "session"), fingerprint("s1").as_str());

    let metric = "ticket_gateway_tickets_expired_total";
    assert_eq!(
        counters.get(&format!(r#"{metric}{{dialect="qps",vp="ext"}}"#)),
        2
    );
    assert_eq!(
        counters.get(&format!(r#"{metric}{{dialect="qlikview",vp=""}}"#)),
        1
    );

    assert_eq!(store.len(), (1, 0, 0, 0));
    assert_eq!(store.maps.users.len(), 0);
    assert!(store
        .take_ticket("StillLiveTicketX")
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.purge_now(), Purged::default());
}

#[tokio::test(start_paused = true)]
async fn a_sweep_takes_large_shards_in_many_short_holds() {
    let store = quiet_store();
    // Enough that every shard has several times SWEEP_SLOTS slots.
    let n = SHARDS * SWEEP_SLOTS * 2;
    let t = ticket(REALM, qps("ACME", "jdoe"));
    let ids: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let ttl = if i % 2 == 0 {
            Duration::from_secs(10)
        } else {
            LONG
        };
        store.insert_ticket(id, &t, ttl).await.unwrap();
    }
    assert!(lock(&store.maps.tickets.shards[0]).num_buckets() > 2 * SWEEP_SLOTS);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(store.purge_now().tickets, n / 2);
    assert_eq!(store.len().0, n / 2);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store.take_ticket(id).await.unwrap().is_some(),
            i % 2 == 1,
            "{id}"
        );
    }
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_background_sweep_runs_off_the_runtime_thread_and_reports_to_its_subscriber() {
    capture_reliably();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = MemoryStore::with_purge_interval(Duration::from_secs(5));
    let capture = Capture {
        maps: store.maps.clone(),
        seen: seen.clone(),
    };
    let _scoped = tracing::subscriber::set_default(capture);
    store
        .insert_ticket(
            "QzSPXzBmJKjhucPF",
            &ticket(REALM, qps("ACME", "jdoe")),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    // Paused time stands still while a blocking task runs, so each sleep ends only
    // after any sweep in flight has finished.
    for _ in 0..100 {
        if store.len().0 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(store.len().0, 0, "the purge task never swept");
    // Once the ticket is gone, its report may still be in flight: purge_now waits for it.
    assert_eq!(store.purge_now(), Purged::default());
    let seen = std::mem::take(&mut *lock(&seen));
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].fields.get("event").map(String::as_str),
        Some("ticket_expired")
    );
    assert_ne!(seen[0].thread, std::thread::current().id());
    assert_eq!(seen[0].locked_shards, 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_store_ends_its_purge_task() {
    let store = MemoryStore::with_purge_interval(Duration::from_secs(5));
    let maps = Arc::downgrade(&store.maps);
    tokio::task::yield_now().await;
    drop(store);
    // The task holds the maps only while a sweep runs, and none was due.
    assert_eq!(maps.strong_count(), 0);
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(maps.strong_count(), 0);
}
