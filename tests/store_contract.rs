//! The [`Store`] contract, checked word for word against every backend.
//!
//! One macro expands the same tests once per backend, so a backend cannot drift from the
//! others unnoticed. Time is the only thing that differs: the memory store runs on
//! tokio's paused clock and `advance` moves it exactly; Redis owns its clock, so there
//! `advance` really waits (the lifetimes are kept short) and checks for an entry to
//! vanish poll for up to `grace` of real time. The lifetimes are chosen so that each test
//! reads the same on both clocks.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gateway_tests::redis_server::{RedisServer, Relay};
use ticket_core::{
    EndReason, Identity, MemoryStore, Redemption, RedisConfig, RedisStore, Session, SessionEnded,
    SessionLimit, Store, StoreError, Ticket,
};

/// A store under test, and the server behind it when there is one.
struct Backend {
    store: Arc<dyn Store>,
    _server: Option<RedisServer>,
}

async fn memory_store() -> Option<Backend> {
    Some(Backend {
        store: Arc::new(MemoryStore::new()),
        _server: None,
    })
}

/// A Redis store on its own server, under a key prefix of its own; `None` (the test
/// skips) when `redis-server` is not installed.
async fn redis_store() -> Option<Backend> {
    let server = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("starting redis-server panicked")?;
    let store = connect(&server, Duration::from_secs(2)).await;
    Some(Backend {
        store: Arc::new(store),
        _server: Some(server),
    })
}

async fn connect(server: &RedisServer, op_timeout: Duration) -> RedisStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let cfg = RedisConfig {
        url: server.url(),
        key_prefix: format!("contract{}:", NEXT.fetch_add(1, Ordering::Relaxed)),
        op_timeout,
    };
    RedisStore::connect(cfg)
        .await
        .expect("connect to the test redis-server")
}

/// Polls `$check` until it holds or `$grace` of real time has passed; with a zero grace
/// (tokio's paused clock) it checks exactly once. Evaluates to whether it held.
macro_rules! eventually {
    ($grace:expr, $check:expr) => {{
        let deadline = std::time::Instant::now() + $grace;
        loop {
            if $check {
                break true;
            }
            if std::time::Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }};
}

const REALM: &str = "qps/ext";
const LONG: Duration = Duration::from_secs(30 * 60);
/// The lifetime used by the expiry tests: short, because Redis really waits it out.
const TTL: Duration = Duration::from_millis(1000);

fn user(name: &str) -> Identity {
    Identity::Qps {
        user_directory: "ACME".into(),
        user_id: name.into(),
        attributes: vec![("Group".into(), "Sales".into())],
    }
}

fn user_key(name: &str) -> String {
    user(name).user_key()
}

fn ticket(name: &str) -> Ticket {
    Ticket {
        realm: REALM.into(),
        identity: user(name),
        target_uri: Some("http://localhost/hub/".into()),
    }
}

/// A session with a fresh CSRF token: reading one back equal to what was stored proves
/// the token survived too.
fn session(realm: &str, id: &str, name: &str) -> Session {
    Session::new(realm, id, user(name))
}

fn ids(sessions: &[Session]) -> Vec<&str> {
    sessions.iter().map(|s| s.id.as_str()).collect()
}

/// A session id no test has used.
fn fresh_id() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("fresh-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn limit(max: usize, evict_oldest: bool) -> Option<SessionLimit> {
    Some(SessionLimit { max, evict_oldest })
}

/// Expands the contract for one backend.
///
/// - `make`: an async fn returning `Option<Backend>` (`None` skips the test);
/// - `advance`: an async fn moving the backend's clock forward by a duration;
/// - `grace`: how long checks for expiry may poll (zero on a paused clock);
/// - `timed`: the test attribute for tests that move the clock.
macro_rules! store_contract {
    ($name:ident, make = $make:path, advance = $advance:path, grace = $grace:expr, timed = #[$timed:meta]) => {
        mod $name {
            use super::*;

            const GRACE: Duration = $grace;

            async fn advance(by: Duration) {
                $advance(by).await
            }

            #[tokio::test]
            async fn a_ticket_is_taken_once() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_ticket("T1", &ticket("jdoe"), LONG).await.unwrap();
                assert_eq!(s.take_ticket("T1").await.unwrap(), Some(ticket("jdoe")));
                assert_eq!(s.take_ticket("T1").await.unwrap(), None);
            }

            #[tokio::test]
            async fn an_unknown_ticket_reads_as_none() {
                let Some(b) = $make().await else { return };
                assert_eq!(b.store.take_ticket("never-issued").await.unwrap(), None);
            }

            #[tokio::test]
            async fn a_live_ticket_is_never_overwritten() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_ticket("T1", &ticket("jdoe"), LONG).await.unwrap();
                assert!(matches!(
                    s.insert_ticket("T1", &ticket("mallory"), LONG).await,
                    Err(StoreError::Conflict)
                ));
                assert_eq!(s.take_ticket("T1").await.unwrap(), Some(ticket("jdoe")));
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sixteen_concurrent_takes_have_exactly_one_winner() {
                let Some(b) = $make().await else { return };
                for n in 0..200 {
                    let id = format!("race-{n}");
                    b.store
                        .insert_ticket(&id, &ticket("jdoe"), LONG)
                        .await
                        .unwrap();
                    let start = Arc::new(tokio::sync::Barrier::new(16));
                    let racers: Vec<_> = (0..16)
                        .map(|_| {
                            let (store, id, start) = (b.store.clone(), id.clone(), start.clone());
                            tokio::spawn(async move {
                                start.wait().await;
                                store.take_ticket(&id).await.unwrap().is_some()
                            })
                        })
                        .collect();
                    let mut winners = 0;
                    for r in racers {
                        winners += usize::from(r.await.unwrap());
                    }
                    assert_eq!(winners, 1, "ticket {id} was taken {winners} times");
                }
            }

            #[tokio::test]
            async fn a_ticket_redeems_into_a_session_once() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_ticket("T1", &ticket("jdoe"), LONG).await.unwrap();
                let Redemption::Started {
                    ticket: t,
                    session: started,
                    evicted,
                } = s
                    .redeem_ticket("T1", REALM, LONG, limit(5, false), fresh_id)
                    .await
                    .unwrap()
                else {
                    panic!("no session")
                };
                assert_eq!(t, ticket("jdoe"));
                assert!(evicted.is_empty());
                assert_eq!(started.realm, REALM);
                assert_eq!(started.identity, user("jdoe"));
                assert_eq!(
                    s.session(REALM, &started.id).await.unwrap(),
                    Some(started.clone()),
                    "the session is live, under the id returned"
                );
                assert_eq!(
                    ids(&s.user_sessions(REALM, &user_key("jdoe")).await.unwrap()),
                    [started.id.as_str()]
                );
                assert_eq!(
                    ids(&s.sessions(REALM).await.unwrap()),
                    [started.id.as_str()]
                );
                assert_eq!(
                    s.redeem_ticket("T1", REALM, LONG, None, fresh_id)
                        .await
                        .unwrap(),
                    Redemption::NoTicket,
                    "spent"
                );
                assert_eq!(s.take_ticket("T1").await.unwrap(), None);
            }

            #[tokio::test]
            async fn a_ticket_redeemed_in_another_realm_is_consumed_without_a_session() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_ticket("T1", &ticket("jdoe"), LONG).await.unwrap();
                assert_eq!(
                    s.redeem_ticket("T1", "qps/other", LONG, None, fresh_id)
                        .await
                        .unwrap(),
                    Redemption::WrongRealm(ticket("jdoe"))
                );
                assert!(s.sessions("qps/other").await.unwrap().is_empty());
                assert_eq!(
                    s.redeem_ticket("T1", REALM, LONG, None, fresh_id)
                        .await
                        .unwrap(),
                    Redemption::NoTicket
                );
            }

            #[tokio::test]
            async fn a_redemption_keeps_the_session_limit() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                for n in 0..2 {
                    s.insert_session(
                        &session(REALM, &format!("s{n}"), "jdoe"),
                        LONG,
                        limit(2, false),
                    )
                    .await
                    .unwrap();
                }
                s.insert_ticket("T1", &ticket("jdoe"), LONG).await.unwrap();
                assert_eq!(
                    s.redeem_ticket("T1", REALM, LONG, limit(2, false), fresh_id)
                        .await
                        .unwrap(),
                    Redemption::LimitReached(ticket("jdoe")),
                );
                assert_eq!(
                    s.take_ticket("T1").await.unwrap(),
                    None,
                    "spent all the same"
                );
                s.insert_ticket("T2", &ticket("jdoe"), LONG).await.unwrap();
                let Redemption::Started {
                    session: started,
                    evicted,
                    ..
                } = s
                    .redeem_ticket("T2", REALM, LONG, limit(2, true), fresh_id)
                    .await
                    .unwrap()
                else {
                    panic!("no session")
                };
                assert_eq!(ids(&evicted), ["s0"]);
                assert_eq!(
                    ids(&s.user_sessions(REALM, &user_key("jdoe")).await.unwrap()),
                    ["s1", started.id.as_str()]
                );
            }

            #[tokio::test]
            async fn a_redemption_never_overwrites_a_live_session() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_session(&session(REALM, "taken", "mallory"), LONG, None)
                    .await
                    .unwrap();
                s.insert_ticket("T1", &ticket("jdoe"), LONG).await.unwrap();
                assert!(matches!(
                    s.redeem_ticket("T1", REALM, LONG, None, || "taken".to_owned())
                        .await,
                    Err(StoreError::Conflict)
                ));
                assert_eq!(
                    s.session(REALM, "taken").await.unwrap().map(|s| s.identity),
                    Some(user("mallory"))
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sixteen_concurrent_redemptions_start_one_session() {
                let Some(b) = $make().await else { return };
                for n in 0..50 {
                    let id = format!("race-{n}");
                    let name = format!("u{n}");
                    b.store
                        .insert_ticket(&id, &ticket(&name), LONG)
                        .await
                        .unwrap();
                    let start = Arc::new(tokio::sync::Barrier::new(16));
                    let racers: Vec<_> = (0..16)
                        .map(|_| {
                            let (store, id, start) = (b.store.clone(), id.clone(), start.clone());
                            tokio::spawn(async move {
                                start.wait().await;
                                let r = store.redeem_ticket(
                                    &id,
                                    REALM,
                                    LONG,
                                    limit(5, false),
                                    fresh_id,
                                );
                                matches!(r.await.unwrap(), Redemption::Started { .. })
                            })
                        })
                        .collect();
                    let mut winners = 0;
                    for r in racers {
                        winners += usize::from(r.await.unwrap());
                    }
                    assert_eq!(winners, 1, "ticket {id} was redeemed {winners} times");
                    assert_eq!(
                        b.store
                            .user_sessions(REALM, &user_key(&name))
                            .await
                            .unwrap()
                            .len(),
                        1
                    );
                }
            }

            #[tokio::test]
            async fn a_target_id_reads_many_times() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_target("g1", "http://localhost/hub/", LONG)
                    .await
                    .unwrap();
                for _ in 0..5 {
                    assert_eq!(
                        s.target("g1").await.unwrap().as_deref(),
                        Some("http://localhost/hub/")
                    );
                }
                assert!(matches!(
                    s.insert_target("g1", "http://elsewhere/", LONG).await,
                    Err(StoreError::Conflict)
                ));
                assert_eq!(
                    s.target("g1").await.unwrap().as_deref(),
                    Some("http://localhost/hub/")
                );
                assert_eq!(s.target("g2").await.unwrap(), None);
            }

            #[tokio::test]
            async fn a_value_reads_many_times_and_is_taken_once() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_value("oidc:abc", "state", LONG).await.unwrap();
                for _ in 0..3 {
                    assert_eq!(s.value("oidc:abc").await.unwrap().as_deref(), Some("state"));
                }
                assert_eq!(
                    s.take_value("oidc:abc").await.unwrap().as_deref(),
                    Some("state")
                );
                assert_eq!(s.take_value("oidc:abc").await.unwrap(), None);
                assert_eq!(s.value("oidc:abc").await.unwrap(), None);
                assert_eq!(s.value("never-stored").await.unwrap(), None);
                assert_eq!(s.take_value("never-stored").await.unwrap(), None);
            }

            #[tokio::test]
            async fn a_live_value_is_never_overwritten() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_value("k", "first", LONG).await.unwrap();
                assert!(matches!(
                    s.insert_value("k", "second", LONG).await,
                    Err(StoreError::Conflict)
                ));
                assert_eq!(s.value("k").await.unwrap().as_deref(), Some("first"));
                // Taken, the key is free again.
                s.take_value("k").await.unwrap();
                s.insert_value("k", "second", LONG).await.unwrap();
                assert_eq!(s.value("k").await.unwrap().as_deref(), Some("second"));
            }

            #[tokio::test]
            async fn values_and_target_ids_live_apart() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_target("g1", "http://localhost/hub/", LONG)
                    .await
                    .unwrap();
                s.insert_value("g1", "state", LONG).await.unwrap();
                assert_eq!(s.value("g1").await.unwrap().as_deref(), Some("state"));
                assert_eq!(
                    s.target("g1").await.unwrap().as_deref(),
                    Some("http://localhost/hub/")
                );
                s.take_value("g1").await.unwrap();
                assert!(s.target("g1").await.unwrap().is_some());
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sixteen_concurrent_value_takes_have_exactly_one_winner() {
                let Some(b) = $make().await else { return };
                for n in 0..100 {
                    let key = format!("race-{n}");
                    b.store.insert_value(&key, "state", LONG).await.unwrap();
                    let start = Arc::new(tokio::sync::Barrier::new(16));
                    let racers: Vec<_> = (0..16)
                        .map(|_| {
                            let (store, key, start) = (b.store.clone(), key.clone(), start.clone());
                            tokio::spawn(async move {
                                start.wait().await;
                                store.take_value(&key).await.unwrap().is_some()
                            })
                        })
                        .collect();
                    let mut winners = 0;
                    for r in racers {
                        winners += usize::from(r.await.unwrap());
                    }
                    assert_eq!(winners, 1, "value {key} was taken {winners} times");
                }
            }

            #[tokio::test]
            async fn a_session_is_inserted_touched_read_and_removed() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                let a = session(REALM, "s1", "jdoe");
                assert!(s.insert_session(&a, LONG, None).await.unwrap().is_empty());
                assert_eq!(s.touch_session(REALM, "s1").await.unwrap(), Some(a.clone()));
                assert_eq!(s.session(REALM, "s1").await.unwrap(), Some(a.clone()));
                assert_eq!(
                    s.session("qps/", "s1").await.unwrap(),
                    None,
                    "another realm"
                );
                assert_eq!(s.remove_session(REALM, "s1").await.unwrap(), Some(a));
                assert_eq!(s.session(REALM, "s1").await.unwrap(), None);
                assert_eq!(s.touch_session(REALM, "s1").await.unwrap(), None);
                assert_eq!(s.remove_session(REALM, "s1").await.unwrap(), None);
                assert!(s
                    .user_sessions(REALM, &user_key("jdoe"))
                    .await
                    .unwrap()
                    .is_empty());
                assert!(s.sessions(REALM).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn a_sessions_csrf_token_survives_every_read() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                let a = session(REALM, "s1", "jdoe");
                assert_eq!(a.csrf_token.len(), 32);
                s.insert_session(&a, LONG, limit(2, true)).await.unwrap();
                let token = |x: Option<Session>| x.map(|x| x.csrf_token);
                let a_token = Some(a.csrf_token.clone());
                assert_eq!(token(s.touch_session(REALM, "s1").await.unwrap()), a_token);
                assert_eq!(token(s.session(REALM, "s1").await.unwrap()), a_token);
                assert_eq!(s.sessions(REALM).await.unwrap(), std::slice::from_ref(&a));
                assert_eq!(
                    s.user_sessions(REALM, &user_key("jdoe")).await.unwrap(),
                    std::slice::from_ref(&a)
                );

                // A redeemed ticket's session gets a token of its own, kept the same way.
                s.insert_ticket("T1", &ticket("jdoe"), LONG).await.unwrap();
                let Redemption::Started {
                    session: started, ..
                } = s
                    .redeem_ticket("T1", REALM, LONG, limit(2, true), fresh_id)
                    .await
                    .unwrap()
                else {
                    panic!("no session")
                };
                assert_eq!(started.csrf_token.len(), 32);
                assert_ne!(started.csrf_token, a.csrf_token);
                assert_eq!(
                    s.session(REALM, &started.id).await.unwrap().as_ref(),
                    Some(&started)
                );

                // Evicted and removed sessions come back with theirs.
                let evicted = s
                    .insert_session(&session(REALM, "s3", "jdoe"), LONG, limit(2, true))
                    .await
                    .unwrap();
                assert_eq!(evicted, [a]);
                assert_eq!(
                    s.remove_session(REALM, &started.id).await.unwrap(),
                    Some(started)
                );
            }

            #[tokio::test]
            async fn a_duplicate_session_id_conflicts() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                let a = session(REALM, "s1", "jdoe");
                s.insert_session(&a, LONG, None).await.unwrap();
                for l in [None, limit(5, false), limit(5, true)] {
                    assert!(matches!(
                        s.insert_session(&session(REALM, "s1", "mallory"), LONG, l)
                            .await,
                        Err(StoreError::Conflict)
                    ));
                }
                assert_eq!(s.session(REALM, "s1").await.unwrap(), Some(a));
                assert!(s
                    .user_sessions(REALM, &user_key("mallory"))
                    .await
                    .unwrap()
                    .is_empty());
                // The same id in another realm is another session.
                s.insert_session(&session("qps/", "s1", "mallory"), LONG, None)
                    .await
                    .unwrap();
            }

            #[tokio::test]
            async fn realms_with_separators_stay_apart() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                let x = session("qps/a:b", "c", "jdoe");
                let y = session("qps/a", "b:c", "jdoe");
                s.insert_session(&x, LONG, None).await.unwrap();
                s.insert_session(&y, LONG, None).await.unwrap();
                assert_eq!(s.session("qps/a:b", "c").await.unwrap(), Some(x.clone()));
                assert_eq!(s.session("qps/a", "b:c").await.unwrap(), Some(y.clone()));
                assert_eq!(s.sessions("qps/a:b").await.unwrap(), vec![x]);
                assert_eq!(s.sessions("qps/a").await.unwrap(), vec![y]);
            }

            #[tokio::test]
            async fn sessions_list_oldest_first() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                for (id, who) in [("a", "jdoe"), ("b", "other"), ("c", "JDOE"), ("d", "jdoe")] {
                    s.insert_session(&session(REALM, id, who), LONG, None)
                        .await
                        .unwrap();
                }
                s.insert_session(&session("qps/", "e", "jdoe"), LONG, None)
                    .await
                    .unwrap();
                // Touching does not reorder: age is creation order.
                s.touch_session(REALM, "a").await.unwrap();
                let mine = s.user_sessions(REALM, &user_key("jdoe")).await.unwrap();
                assert_eq!(ids(&mine), ["a", "c", "d"]);
                assert_eq!(ids(&s.sessions(REALM).await.unwrap()), ["a", "b", "c", "d"]);
                assert_eq!(ids(&s.sessions("qps/").await.unwrap()), ["e"]);
                assert!(s.sessions("qlikview").await.unwrap().is_empty());
                assert!(s.user_sessions(REALM, "nobody").await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn sessions_are_counted_per_realm() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                assert_eq!(s.count_sessions(REALM).await.unwrap(), 0);
                for (realm, id, who) in [
                    (REALM, "a", "jdoe"),
                    (REALM, "b", "other"),
                    (REALM, "c", "jdoe"),
                    ("qps/", "a", "jdoe"),
                ] {
                    s.insert_session(&session(realm, id, who), LONG, None)
                        .await
                        .unwrap();
                }
                assert_eq!(s.count_sessions(REALM).await.unwrap(), 3);
                assert_eq!(s.count_sessions("qps/").await.unwrap(), 1);
                assert_eq!(s.count_sessions("qlikview").await.unwrap(), 0);
                s.remove_session(REALM, "b").await.unwrap();
                assert_eq!(s.count_sessions(REALM).await.unwrap(), 2);
                s.remove_user_sessions(REALM, &user_key("jdoe"))
                    .await
                    .unwrap();
                assert_eq!(s.count_sessions(REALM).await.unwrap(), 0);
                assert_eq!(s.count_sessions("qps/").await.unwrap(), 1);
            }

            #[tokio::test]
            async fn removing_a_users_sessions_ends_them_all() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                for (id, who) in [("a", "jdoe"), ("b", "other"), ("c", "jdoe")] {
                    s.insert_session(&session(REALM, id, who), LONG, None)
                        .await
                        .unwrap();
                }
                s.insert_session(&session("qps/", "a", "jdoe"), LONG, None)
                    .await
                    .unwrap();
                let gone = s
                    .remove_user_sessions(REALM, &user_key("jdoe"))
                    .await
                    .unwrap();
                assert_eq!(ids(&gone), ["a", "c"]);
                assert_eq!(s.session(REALM, "a").await.unwrap(), None);
                assert_eq!(s.touch_session(REALM, "c").await.unwrap(), None);
                assert!(s
                    .user_sessions(REALM, &user_key("jdoe"))
                    .await
                    .unwrap()
                    .is_empty());
                assert_eq!(ids(&s.sessions(REALM).await.unwrap()), ["b"]);
                assert!(
                    s.session("qps/", "a").await.unwrap().is_some(),
                    "another realm"
                );
                assert!(s
                    .remove_user_sessions(REALM, &user_key("jdoe"))
                    .await
                    .unwrap()
                    .is_empty());
            }

            #[tokio::test]
            async fn a_full_limit_refuses_and_changes_nothing() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                for id in ["s1", "s2"] {
                    let evicted = s
                        .insert_session(&session(REALM, id, "jdoe"), LONG, limit(2, false))
                        .await
                        .unwrap();
                    assert!(evicted.is_empty());
                }
                assert!(matches!(
                    s.insert_session(&session(REALM, "s3", "jdoe"), LONG, limit(2, false))
                        .await,
                    Err(StoreError::LimitReached)
                ));
                assert_eq!(s.session(REALM, "s3").await.unwrap(), None);
                let mine = s.user_sessions(REALM, &user_key("jdoe")).await.unwrap();
                assert_eq!(ids(&mine), ["s1", "s2"]);
                // The limit is per user.
                s.insert_session(&session(REALM, "o1", "other"), LONG, limit(2, false))
                    .await
                    .unwrap();
            }

            #[tokio::test]
            async fn a_full_limit_evicts_the_oldest() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                let first = session(REALM, "s1", "jdoe");
                s.insert_session(&first, LONG, limit(2, true))
                    .await
                    .unwrap();
                s.insert_session(&session(REALM, "s2", "jdoe"), LONG, limit(2, true))
                    .await
                    .unwrap();
                let evicted = s
                    .insert_session(&session(REALM, "s3", "jdoe"), LONG, limit(2, true))
                    .await
                    .unwrap();
                assert_eq!(evicted, vec![first]);
                assert_eq!(s.session(REALM, "s1").await.unwrap(), None);
                let mine = s.user_sessions(REALM, &user_key("jdoe")).await.unwrap();
                assert_eq!(ids(&mine), ["s2", "s3"]);
                assert_eq!(ids(&s.sessions(REALM).await.unwrap()), ["s2", "s3"]);
            }

            #[tokio::test]
            async fn a_conflicting_insert_evicts_nothing() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                for id in ["s1", "s2"] {
                    s.insert_session(&session(REALM, id, "jdoe"), LONG, limit(2, true))
                        .await
                        .unwrap();
                }
                assert!(matches!(
                    s.insert_session(&session(REALM, "s2", "jdoe"), LONG, limit(2, true))
                        .await,
                    Err(StoreError::Conflict)
                ));
                let mine = s.user_sessions(REALM, &user_key("jdoe")).await.unwrap();
                assert_eq!(ids(&mine), ["s1", "s2"]);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn racing_inserts_never_pass_the_limit() {
                let Some(b) = $make().await else { return };
                let start = Arc::new(tokio::sync::Barrier::new(20));
                let racers: Vec<_> = (0..20)
                    .map(|n| {
                        let (store, start) = (b.store.clone(), start.clone());
                        tokio::spawn(async move {
                            start.wait().await;
                            let s = session(REALM, &format!("s{n}"), "jdoe");
                            store.insert_session(&s, LONG, limit(5, false)).await
                        })
                    })
                    .collect();
                let (mut admitted, mut refused) = (0, 0);
                for r in racers {
                    match r.await.unwrap() {
                        Ok(evicted) => {
                            assert!(evicted.is_empty());
                            admitted += 1;
                        }
                        Err(StoreError::LimitReached) => refused += 1,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                assert_eq!((admitted, refused), (5, 15));
                let live = b
                    .store
                    .user_sessions(REALM, &user_key("jdoe"))
                    .await
                    .unwrap();
                assert_eq!(live.len(), 5);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn racing_evictions_keep_the_limit() {
                let Some(b) = $make().await else { return };
                let start = Arc::new(tokio::sync::Barrier::new(20));
                let racers: Vec<_> = (0..20)
                    .map(|n| {
                        let (store, start) = (b.store.clone(), start.clone());
                        tokio::spawn(async move {
                            start.wait().await;
                            let s = session(REALM, &format!("s{n}"), "jdoe");
                            store.insert_session(&s, LONG, limit(5, true)).await
                        })
                    })
                    .collect();
                let mut evicted = Vec::new();
                for r in racers {
                    evicted.extend(r.await.unwrap().unwrap());
                }
                let live = b
                    .store
                    .user_sessions(REALM, &user_key("jdoe"))
                    .await
                    .unwrap();
                assert_eq!(live.len(), 5);
                assert_eq!(evicted.len(), 15);
                let distinct: HashSet<_> = evicted.iter().map(|s| s.id.as_str()).collect();
                assert_eq!(distinct.len(), 15, "a session was evicted twice");
                assert!(live.iter().all(|s| !distinct.contains(s.id.as_str())));
            }

            #[$timed]
            async fn tickets_expire_after_their_ttl() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_ticket("early", &ticket("jdoe"), TTL)
                    .await
                    .unwrap();
                s.insert_ticket("late", &ticket("jdoe"), TTL).await.unwrap();
                advance(TTL * 4 / 10).await;
                assert!(s.take_ticket("early").await.unwrap().is_some());
                advance(TTL * 8 / 10).await;
                // Taking is the only way to read a ticket, so no polling: once the TTL has
                // passed on our side it has passed on the server's.
                assert_eq!(s.take_ticket("late").await.unwrap(), None);
            }

            #[$timed]
            async fn target_ids_expire_after_their_ttl() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_target("g1", "http://localhost/hub/", TTL)
                    .await
                    .unwrap();
                advance(TTL * 4 / 10).await;
                assert!(s.target("g1").await.unwrap().is_some());
                advance(TTL * 8 / 10).await;
                assert!(eventually!(GRACE, s.target("g1").await.unwrap().is_none()));
            }

            #[$timed]
            async fn values_expire_after_their_ttl() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_value("read", "a", TTL).await.unwrap();
                s.insert_value("taken", "b", TTL).await.unwrap();
                advance(TTL * 4 / 10).await;
                assert!(s.value("read").await.unwrap().is_some());
                advance(TTL * 8 / 10).await;
                assert!(eventually!(GRACE, s.value("read").await.unwrap().is_none()));
                // Taking is a read too: once the TTL has passed on our side it has passed
                // on the server's.
                assert_eq!(s.take_value("taken").await.unwrap(), None);
            }

            #[$timed]
            async fn sessions_slide_on_touch_and_end_when_idle() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_session(&session(REALM, "s1", "jdoe"), TTL, None)
                    .await
                    .unwrap();
                // Three touches half an idle time apart: alive well past one idle time.
                for _ in 0..3 {
                    advance(TTL / 2).await;
                    assert!(s.touch_session(REALM, "s1").await.unwrap().is_some());
                }
                // Reading does not touch.
                advance(TTL / 2).await;
                assert!(s.session(REALM, "s1").await.unwrap().is_some());
                advance(TTL * 7 / 10).await;
                assert!(eventually!(
                    GRACE,
                    s.session(REALM, "s1").await.unwrap().is_none()
                ));
                assert_eq!(s.touch_session(REALM, "s1").await.unwrap(), None);
                assert_eq!(s.remove_session(REALM, "s1").await.unwrap(), None);
            }

            #[$timed]
            async fn ended_sessions_leave_lists_and_limits() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                for id in ["s1", "s2"] {
                    s.insert_session(&session(REALM, id, "jdoe"), TTL, limit(2, false))
                        .await
                        .unwrap();
                }
                s.insert_session(&session(REALM, "o1", "other"), LONG, None)
                    .await
                    .unwrap();
                advance(TTL * 12 / 10).await;
                assert!(eventually!(
                    GRACE,
                    s.user_sessions(REALM, &user_key("jdoe"))
                        .await
                        .unwrap()
                        .is_empty()
                ));
                assert_eq!(ids(&s.sessions(REALM).await.unwrap()), ["o1"]);
                assert_eq!(s.count_sessions(REALM).await.unwrap(), 1);
                // Ended sessions count against no limit and are not evicted again.
                for id in ["s3", "s4"] {
                    let evicted = s
                        .insert_session(&session(REALM, id, "jdoe"), LONG, limit(2, true))
                        .await
                        .unwrap();
                    assert!(evicted.is_empty());
                }
                assert!(s
                    .remove_user_sessions(REALM, &user_key("jdoe"))
                    .await
                    .unwrap()
                    .iter()
                    .all(|x| x.id == "s3" || x.id == "s4"));
            }

            #[$timed]
            async fn an_expired_key_may_be_used_again() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                s.insert_ticket("T1", &ticket("jdoe"), TTL).await.unwrap();
                s.insert_target("g1", "http://localhost/a", TTL)
                    .await
                    .unwrap();
                s.insert_value("v1", "a", TTL).await.unwrap();
                s.insert_session(&session(REALM, "s1", "jdoe"), TTL, None)
                    .await
                    .unwrap();
                advance(TTL * 12 / 10).await;
                assert!(eventually!(GRACE, s.target("g1").await.unwrap().is_none()));
                s.insert_ticket("T1", &ticket("other"), TTL).await.unwrap();
                s.insert_target("g1", "http://localhost/b", TTL)
                    .await
                    .unwrap();
                s.insert_value("v1", "b", TTL).await.unwrap();
                assert_eq!(s.value("v1").await.unwrap().as_deref(), Some("b"));
                let theirs = session(REALM, "s1", "other");
                s.insert_session(&theirs, TTL, limit(1, false))
                    .await
                    .unwrap();
                assert_eq!(s.take_ticket("T1").await.unwrap(), Some(ticket("other")));
                assert_eq!(
                    s.target("g1").await.unwrap().as_deref(),
                    Some("http://localhost/b")
                );
                assert_eq!(s.session(REALM, "s1").await.unwrap(), Some(theirs.clone()));
                // The first user's index still names "s1": it must not reach the new owner's.
                let gone = s
                    .remove_user_sessions(REALM, &user_key("jdoe"))
                    .await
                    .unwrap();
                assert!(gone.is_empty());
                assert!(s.session(REALM, "s1").await.unwrap().is_some());
                assert!(s
                    .user_sessions(REALM, &user_key("jdoe"))
                    .await
                    .unwrap()
                    .is_empty());
                let listed = s.user_sessions(REALM, &user_key("other")).await.unwrap();
                assert_eq!(listed, [theirs]);
            }

            #[tokio::test]
            async fn published_events_reach_every_receiver_in_order() {
                let Some(b) = $make().await else { return };
                let s = &b.store;
                let mut first = s.subscribe();
                let mut second = s.subscribe();
                let events: Vec<SessionEnded> = [
                    ("s1", EndReason::LoggedOut),
                    ("s2", EndReason::Closed),
                    ("s3", EndReason::Evicted),
                ]
                .into_iter()
                .map(|(id, reason)| SessionEnded {
                    realm: REALM.into(),
                    id: id.into(),
                    reason,
                })
                .collect();
                for e in &events {
                    s.publish(e).await.unwrap();
                }
                for rx in [&mut first, &mut second] {
                    for e in &events {
                        let heard = tokio::time::timeout(Duration::from_secs(1), rx.recv())
                            .await
                            .expect("an event within a second")
                            .unwrap();
                        assert_eq!(&heard, e);
                    }
                }
                // A receiver hears what is published after it subscribed, not before.
                let mut late = s.subscribe();
                assert!(late.try_recv().is_err());
            }

            #[tokio::test]
            async fn the_backend_answers_ping() {
                let Some(b) = $make().await else { return };
                b.store.ping().await.unwrap();
            }
        }
    };
}

store_contract!(
    memory,
    make = memory_store,
    advance = tokio::time::advance,
    grace = Duration::ZERO,
    timed = #[tokio::test(start_paused = true)]
);

store_contract!(
    redis,
    make = redis_store,
    advance = tokio::time::sleep,
    grace = Duration::from_secs(2),
    timed = #[tokio::test]
);

/// Redis alone: a server that is away, and keys an earlier version wrote.
mod redis_faults {
    use super::*;

    #[tokio::test]
    async fn connecting_to_nothing_fails_within_the_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cfg = RedisConfig {
            url: format!("redis://127.0.0.1:{port}/"),
            key_prefix: "nothing:".into(),
            op_timeout: Duration::from_secs(2),
        };
        let started = std::time::Instant::now();
        assert!(matches!(
            RedisStore::connect(cfg).await,
            Err(StoreError::Backend(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn requests_fail_fast_while_redis_is_down_and_work_once_it_is_back() {
        let Some(mut server) = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("starting redis-server panicked")
        else {
            return;
        };
        let op_timeout = Duration::from_secs(2);
        let store = connect(&server, op_timeout).await;
        store
            .insert_ticket("T1", &ticket("jdoe"), LONG)
            .await
            .unwrap();

        server.stop();
        for _ in 0..5 {
            let started = std::time::Instant::now();
            assert!(matches!(store.ping().await, Err(StoreError::Backend(_))));
            assert!(matches!(
                store.take_ticket("T1").await,
                Err(StoreError::Backend(_))
            ));
            assert!(
                started.elapsed() < op_timeout,
                "a request waited {:?} on a server that is down",
                started.elapsed()
            );
        }

        let mut server = tokio::task::spawn_blocking(move || {
            server.restart();
            server
        })
        .await
        .expect("restarting redis-server panicked");
        // The server is ready; the store reconnects on the next requests by itself.
        assert!(
            eventually!(Duration::from_secs(5), store.ping().await.is_ok()),
            "the store did not reconnect"
        );
        store
            .insert_ticket("T2", &ticket("jdoe"), LONG)
            .await
            .unwrap();
        assert_eq!(store.take_ticket("T2").await.unwrap(), Some(ticket("jdoe")));
        server.stop();
    }

    /// The reported defect: once Redis had restarted, the first request on every node
    /// failed, however long after (idle nodes, `/readyz` included). Four nodes sit idle
    /// through a restart on the same port; the very first operation of each succeeds,
    /// whether it comes at once or after a while, and whether it is a plain command or a
    /// script the new server has never seen.
    #[tokio::test]
    async fn the_first_operation_after_a_restart_succeeds_on_every_node() {
        let Some(server) = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("starting redis-server panicked")
        else {
            return;
        };
        let op_timeout = Duration::from_secs(2);
        let mut nodes = Vec::new();
        for _ in 0..4 {
            nodes.push(connect(&server, op_timeout).await);
        }
        for node in &nodes {
            node.ping().await.unwrap();
        }
        let server = tokio::task::spawn_blocking(move || {
            let mut server = server;
            server.restart();
            server
        })
        .await
        .expect("restarting redis-server panicked");

        // At once.
        nodes[0]
            .ping()
            .await
            .expect("the first ping after the restart");
        nodes[1]
            .insert_session(&session(REALM, "s1", "jdoe"), LONG, limit(5, false))
            .await
            .expect("the first script after the restart");
        // After the nodes sat idle for a while.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        nodes[2].ping().await.expect("the first ping after idling");
        assert_eq!(
            nodes[3]
                .take_ticket("never-issued")
                .await
                .expect("the first command after idling"),
            None
        );
        assert_eq!(
            nodes[1].session(REALM, "s1").await.unwrap().map(|s| s.id),
            Some("s1".to_owned()),
            "stored on the new server"
        );
        drop(server);
    }

    /// Nodes reconnect by themselves once Redis is back, before anyone asks: an idle
    /// node's connection is there when its first request comes.
    #[tokio::test]
    async fn idle_nodes_reconnect_in_the_background() {
        let Some(server) = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("starting redis-server panicked")
        else {
            return;
        };
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(connect(&server, Duration::from_secs(2)).await);
        }
        let server = tokio::task::spawn_blocking(move || {
            let mut server = server;
            server.restart();
            server
        })
        .await
        .expect("restarting redis-server panicked");
        let command_connections = || async {
            let list = server.command(&["CLIENT", "LIST"]).await.unwrap();
            list.unwrap_or_default()
                .lines()
                .filter(|l| l.contains(" sub=0 psub=0") && !l.contains("cmd=client|list"))
                .count()
        };
        assert!(
            eventually!(
                Duration::from_secs(3),
                command_connections().await >= nodes.len()
            ),
            "the idle nodes did not reconnect: {:?}",
            server.command(&["CLIENT", "LIST"]).await
        );
    }

    /// A server that has forgotten the scripts (`SCRIPT FLUSH`, or a restart) answers
    /// `EVALSHA` with `NOSCRIPT`; the script is loaded and called again, and the caller
    /// never sees it.
    #[tokio::test]
    async fn forgotten_scripts_are_loaded_again() {
        let Some(server) = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("starting redis-server panicked")
        else {
            return;
        };
        let store = connect(&server, Duration::from_secs(2)).await;
        server.command(&["SCRIPT", "FLUSH"]).await.unwrap();
        store
            .insert_session(&session(REALM, "s1", "jdoe"), LONG, limit(5, false))
            .await
            .unwrap();
        assert!(store.touch_session(REALM, "s1").await.unwrap().is_some());
    }

    /// An answer that does not come within the timeout is reported, not retried: the
    /// command went out and may yet be applied. Here the server holds writes back for a
    /// while; the insert fails after its timeout, and the server runs it once the pause
    /// ends, exactly once (the sequence counter moved once: a retry would have moved it
    /// twice). The pause is shorter than the timeout twice over, so the keeper's check of
    /// the connection (a `PING` queued behind the held script) is answered and the
    /// connection stays.
    #[tokio::test]
    async fn a_timeout_after_sending_is_reported_once_and_not_retried() {
        let Some(server) = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("starting redis-server panicked")
        else {
            return;
        };
        let op_timeout = Duration::from_millis(400);
        let store = connect(&server, op_timeout).await;
        server
            .command(&["CLIENT", "PAUSE", "600", "WRITE"])
            .await
            .unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            store
                .insert_session(&session(REALM, "s1", "jdoe"), LONG, None)
                .await,
            Err(StoreError::Backend(_))
        ));
        let took = started.elapsed();
        assert!(took < op_timeout + Duration::from_millis(200), "{took:?}");
        // Watched from another connection, which reads are not held back on.
        let seq = format!("{}seq", store.key_prefix());
        let key = format!("{}session:{REALM}:s1", store.key_prefix());
        assert!(
            eventually!(
                Duration::from_secs(3),
                server.command(&["EXISTS", &key]).await.unwrap().as_deref() == Some("1")
            ),
            "the held insert ran once the pause ended"
        );
        assert_eq!(
            server.command(&["GET", &seq]).await.unwrap().as_deref(),
            Some("1")
        );
        assert!(store.session(REALM, "s1").await.unwrap().is_some());
        assert_eq!(
            server.command(&["GET", &seq]).await.unwrap().as_deref(),
            Some("1")
        );
    }

    /// A connection that silently stops answering (its server's host gone from the
    /// network, nothing closed) is noticed and replaced: the operation that timed out on
    /// it has the keeper check it, the check goes unanswered too, and the keeper connects
    /// anew. Without that, every operation would time out until the kernel gave up on the
    /// socket, many minutes later.
    #[tokio::test]
    async fn a_connection_that_stops_answering_is_replaced() {
        let Some(server) = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("starting redis-server panicked")
        else {
            return;
        };
        let relay = Relay::start(server.port()).await;
        let cfg = RedisConfig {
            url: relay.url(),
            key_prefix: "relayed:".into(),
            op_timeout: Duration::from_millis(300),
        };
        let store = RedisStore::connect(cfg).await.unwrap();
        store.ping().await.unwrap();
        relay.freeze();
        assert!(matches!(store.ping().await, Err(StoreError::Backend(_))));
        assert!(
            eventually!(Duration::from_secs(3), store.ping().await.is_ok()),
            "the frozen connection was never replaced"
        );
        store
            .insert_ticket("T1", &ticket("jdoe"), LONG)
            .await
            .unwrap();
    }

    /// The store owns its tasks: once it is dropped, its connections (commands and
    /// subscription) close, because the tasks that held them have stopped.
    #[tokio::test]
    async fn dropping_the_store_closes_its_connections() {
        let Some(server) = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("starting redis-server panicked")
        else {
            return;
        };
        let clients = || async {
            let list = server.command(&["CLIENT", "LIST"]).await.unwrap();
            list.unwrap_or_default()
                .lines()
                .filter(|l| !l.contains("cmd=client|list"))
                .count()
        };
        let store = connect(&server, Duration::from_secs(2)).await;
        store.ping().await.unwrap();
        assert_eq!(
            clients().await,
            2,
            "a command connection and a subscription"
        );
        drop(store);
        assert!(
            eventually!(Duration::from_secs(2), clients().await == 0),
            "connections left after the store was dropped: {:?}",
            server.command(&["CLIENT", "LIST"]).await
        );
    }

    /// A session stored by a version without CSRF tokens still reads, touches and ends,
    /// with an empty token: nodes of two versions share one Redis while a site upgrades.
    #[tokio::test]
    async fn a_session_stored_before_csrf_tokens_still_reads() {
        let Some(server) = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("starting redis-server panicked")
        else {
            return;
        };
        let store = connect(&server, Duration::from_secs(2)).await;
        let prefix = store.key_prefix().to_owned();
        let value = r#"{"idle_ms":600000,"user_key":"acme\\jdoe","session":{"realm":"qps/ext","id":"old","identity":{"Qps":{"user_directory":"ACME","user_id":"jdoe","attributes":[]}}}}"#;
        server
            .command(&["SET", &format!("{prefix}session:{REALM}:old"), value])
            .await
            .unwrap();
        server
            .command(&["ZADD", &format!("{prefix}realm:{REALM}"), "1", "old"])
            .await
            .unwrap();
        let read = store.touch_session(REALM, "old").await.unwrap().unwrap();
        assert_eq!(read.csrf_token, "");
        assert_eq!(
            read.identity,
            Identity::Qps {
                user_directory: "ACME".into(),
                user_id: "jdoe".into(),
                attributes: Vec::new(),
            }
        );
        assert_eq!(ids(&store.sessions(REALM).await.unwrap()), ["old"]);
        assert!(store.remove_session(REALM, "old").await.unwrap().is_some());
    }

    /// A ticket stored by an earlier version (the ticket as one JSON object) still redeems:
    /// nodes of two versions share one Redis while a site is upgraded.
    #[tokio::test]
    async fn a_ticket_stored_by_an_earlier_version_still_redeems() {
        let Some(server) = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("starting redis-server panicked")
        else {
            return;
        };
        let store = connect(&server, Duration::from_secs(2)).await;
        let legacy = serde_json::to_string(&ticket("jdoe")).unwrap();
        for id in ["L1", "L2"] {
            let key = format!("{}ticket:{id}", store.key_prefix());
            server.command(&["SET", &key, &legacy]).await.unwrap();
        }
        assert_eq!(store.take_ticket("L1").await.unwrap(), Some(ticket("jdoe")));
        let Redemption::Started {
            ticket: t,
            session: started,
            ..
        } = store
            .redeem_ticket("L2", REALM, LONG, limit(5, false), fresh_id)
            .await
            .unwrap()
        else {
            panic!("no session")
        };
        assert_eq!(t, ticket("jdoe"));
        assert_eq!(
            store.session(REALM, &started.id).await.unwrap(),
            Some(started)
        );
    }

    /// Counting reads no session: a value this version cannot decode is counted all the
    /// same (where listing fails on it), and index members whose session is gone are
    /// dropped as they are found.
    #[tokio::test]
    async fn counting_reads_no_session_and_drops_dead_index_members() {
        let Some(server) = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("starting redis-server panicked")
        else {
            return;
        };
        let store = connect(&server, Duration::from_secs(2)).await;
        store
            .insert_session(&session(REALM, "s1", "jdoe"), LONG, None)
            .await
            .unwrap();
        let prefix = store.key_prefix().to_owned();
        let index = format!("{prefix}realm:{REALM}");
        let foreign = format!("{prefix}session:{REALM}:foreign");
        server
            .command(&["SET", &foreign, "{not json"])
            .await
            .unwrap();
        for (score, id) in [("100", "foreign"), ("101", "dead")] {
            server.command(&["ZADD", &index, score, id]).await.unwrap();
        }
        assert_eq!(store.count_sessions(REALM).await.unwrap(), 2);
        assert_eq!(
            server.command(&["ZCARD", &index]).await.unwrap().as_deref(),
            Some("2"),
            "the dead member is gone, the live ones stay"
        );
        assert!(matches!(
            store.sessions(REALM).await,
            Err(StoreError::Backend(_))
        ));
    }
}
