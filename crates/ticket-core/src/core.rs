//! The policy both dialects share on top of a [`Store`]: how long tickets and target ids
//! live, how ids are made, that a ticket only redeems in the realm that issued it, and that
//! every session ended before its time is announced to every node.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::events::{EndReason, SessionEnded};
use crate::id;
use crate::model::{Identity, Session, Ticket};
use crate::store::{Redemption, SessionLimit, Store, StoreError};

/// How long short-lived entries live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// A ticket not redeemed within this is gone (Qlik: one minute).
    pub ticket: Duration,
    /// A target id, from the login redirect to the ticket request naming it. Generous, so
    /// a slow login page still gets the user where they were going.
    pub target: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            ticket: crate::defaults::TICKET_TTL,
            target: crate::defaults::TARGET_ID_TTL,
        }
    }
}

/// How many times a freshly drawn id is retried when it collides with a live one. With
/// 91 bits or more per id a single collision is already beyond belief; the loop exists so
/// that the contract (never overwrite) never turns into an error a user could see.
const ID_ATTEMPTS: usize = 4;

/// Between the realm and the URI in a target id's stored value. Neither holds one: a realm
/// is `qps/<prefix>` or `qlikview`, and a URL never holds a raw line break.
const TARGET_SEPARATOR: &str = "\n";

/// The URI of a target id's stored value, if it was made for `realm`. A value stored by an
/// earlier version (the URI alone) names no realm, and so no URI.
fn target_in(stored: &str, realm: &str) -> Option<String> {
    let (made_for, uri) = stored.split_once(TARGET_SEPARATOR)?;
    (made_for == realm).then(|| uri.to_owned())
}

/// Ticket and session operations over a shared store.
#[derive(Debug, Clone)]
pub struct Core {
    store: Arc<dyn Store>,
    lifetimes: Lifetimes,
}

impl Core {
    /// A core over `store` with the given lifetimes.
    pub fn new(store: Arc<dyn Store>, lifetimes: Lifetimes) -> Self {
        Core { store, lifetimes }
    }

    /// The configured lifetimes.
    pub fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    /// Issues a ticket for `identity`, redeemable once in `realm` within the ticket
    /// lifetime. `new_id` draws the id in the dialect's format ([`id::qps_ticket`] or
    /// [`id::web_ticket`]). A `target_id` that names a live target made for the same
    /// realm ([`new_target`](Self::new_target)) fills [`Ticket::target_uri`]; an unknown
    /// one, or one made for another realm, leaves it empty.
    pub async fn issue_ticket(
        &self,
        realm: &str,
        identity: Identity,
        target_id: Option<&str>,
        new_id: fn() -> String,
    ) -> Result<(String, Ticket), StoreError> {
        let target_uri = match target_id {
            Some(t) if !t.is_empty() => self
                .store
                .target(t)
                .await?
                .and_then(|stored| target_in(&stored, realm)),
            _ => None,
        };
        let ticket = Ticket {
            realm: realm.to_owned(),
            identity,
            target_uri,
        };
        for _ in 0..ID_ATTEMPTS {
            let id = new_id();
            match self
                .store
                .insert_ticket(&id, &ticket, self.lifetimes.ticket)
                .await
            {
                Err(StoreError::Conflict) => continue,
                other => return other.map(|()| (id, ticket)),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Consumes the ticket `id`. Returns it only if it was live and issued for `realm`; a
    /// ticket presented in the wrong realm is consumed all the same, so a leaked ticket
    /// cannot be tried in one place after another.
    pub async fn redeem(&self, realm: &str, id: &str) -> Result<Option<Ticket>, StoreError> {
        Ok(self
            .store
            .take_ticket(id)
            .await?
            .filter(|t| t.realm == realm))
    }

    /// Consumes the ticket `id` and, if it was issued for `realm`, starts a session for its
    /// user under a new GUID, ending after `idle` without use, within the per-user `limit`:
    /// see [`Store::redeem_ticket`]. A ticket presented in the wrong realm is consumed all
    /// the same, as with [`Core::redeem`].
    pub async fn redeem_into_session(
        &self,
        realm: &str,
        id: &str,
        idle: Duration,
        limit: Option<SessionLimit>,
    ) -> Result<Redemption, StoreError> {
        let redemption = self
            .store
            .redeem_ticket(id, realm, idle, limit, id::guid)
            .await?;
        if let Redemption::Started { evicted, .. } = &redemption {
            self.announce(evicted, EndReason::Evicted).await;
        }
        Ok(redemption)
    }

    /// Remembers `uri` under a new target id, for tickets issued in `realm` only, and
    /// returns the id.
    ///
    /// A target id travels through the authentication module in the clear. Bound to the
    /// virtual proxy that made it, it cannot send a user who logs in through one proxy to
    /// the address another proxy's login page was asked for.
    pub async fn new_target(&self, realm: &str, uri: &str) -> Result<String, StoreError> {
        let value = [realm, TARGET_SEPARATOR, uri].concat();
        for _ in 0..ID_ATTEMPTS {
            let id = id::guid();
            match self
                .store
                .insert_target(&id, &value, self.lifetimes.target)
                .await
            {
                Err(StoreError::Conflict) => continue,
                other => return other.map(|()| id),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Starts a session for `identity` in `realm` under a new GUID, ending after `idle`
    /// without use, within the per-user `limit` (see [`Store::insert_session`]). Returns the
    /// session and any sessions evicted to make room, which are announced
    /// ([`EndReason::Evicted`]).
    pub async fn start_session(
        &self,
        realm: &str,
        identity: Identity,
        idle: Duration,
        limit: Option<SessionLimit>,
    ) -> Result<(Session, Vec<Session>), StoreError> {
        let mut session = Session::new(realm, String::new(), identity);
        for _ in 0..ID_ATTEMPTS {
            session.id = id::guid();
            match self.store.insert_session(&session, idle, limit).await {
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
                Ok(evicted) => {
                    self.announce(&evicted, EndReason::Evicted).await;
                    return Ok((session, evicted));
                }
            }
        }
        Err(StoreError::Conflict)
    }

    /// Stores a session whose id the caller chose (the session API), within the per-user
    /// `limit`; see [`Store::insert_session`]. Returns the sessions evicted to make room,
    /// which are announced ([`EndReason::Evicted`]).
    pub async fn insert_session(
        &self,
        session: &Session,
        idle: Duration,
        limit: Option<SessionLimit>,
    ) -> Result<Vec<Session>, StoreError> {
        let evicted = self.store.insert_session(session, idle, limit).await?;
        self.announce(&evicted, EndReason::Evicted).await;
        Ok(evicted)
    }

    /// The live session `(realm, id)`, its inactivity timeout restarted.
    pub async fn touch_session(
        &self,
        realm: &str,
        id: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.store.touch_session(realm, id).await
    }

    /// The live session `(realm, id)`, untouched.
    pub async fn session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        self.store.session(realm, id).await
    }

    /// Ends the session `(realm, id)` at once and announces it with `reason`; returns it if
    /// it was live (an unknown or expired session is not announced).
    pub async fn end_session(
        &self,
        realm: &str,
        id: &str,
        reason: EndReason,
    ) -> Result<Option<Session>, StoreError> {
        let ended = self.store.remove_session(realm, id).await?;
        self.announce(ended.as_slice(), reason).await;
        Ok(ended)
    }

    /// Every live session of a realm, oldest first.
    pub async fn sessions(&self, realm: &str) -> Result<Vec<Session>, StoreError> {
        self.store.sessions(realm).await
    }

    /// How many live sessions a realm holds, without reading them.
    pub async fn count_sessions(&self, realm: &str) -> Result<usize, StoreError> {
        self.store.count_sessions(realm).await
    }

    /// Every live session of one user ([`Identity::user_key`]) in a realm, oldest first.
    pub async fn user_sessions(
        &self,
        realm: &str,
        user_key: &str,
    ) -> Result<Vec<Session>, StoreError> {
        self.store.user_sessions(realm, user_key).await
    }

    /// Ends every live session of one user in a realm and announces each with `reason`;
    /// returns them, oldest first.
    pub async fn end_user_sessions(
        &self,
        realm: &str,
        user_key: &str,
        reason: EndReason,
    ) -> Result<Vec<Session>, StoreError> {
        let ended = self.store.remove_user_sessions(realm, user_key).await?;
        self.announce(&ended, reason).await;
        Ok(ended)
    }

    /// The session-end events of every node sharing the store, this one's included, from
    /// now on: one per session ended by [`end_session`](Self::end_session),
    /// [`end_user_sessions`](Self::end_user_sessions) or an eviction, so that each node
    /// closes that session's WebSockets. See [`crate::events`] for what delivery promises.
    pub fn session_events(&self) -> broadcast::Receiver<SessionEnded> {
        self.store.subscribe()
    }

    /// Keeps `value` under `key` for `ttl`: short-lived state that any node may need to
    /// finish what another began, such as an OpenID Connect login in progress (its state,
    /// nonce, PKCE verifier and the page first asked for) or the session a JWT started.
    /// Fails with [`StoreError::Conflict`] while the key is live: nothing is overwritten.
    pub async fn put_value(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        self.store.insert_value(key, value, ttl).await
    }

    /// The live value under `key`, left in place: it may be read any number of times.
    pub async fn value(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store.value(key).await
    }

    /// Removes and returns the live value under `key`, once: of racing takes exactly one
    /// gets it, as with tickets (a login's callback replayed, or raced on two nodes, finds
    /// nothing the second time).
    pub async fn take_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store.take_value(key).await
    }

    /// Whether the store answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// Publishes one [`SessionEnded`] per session in `ended`. A failure is logged, not
    /// returned: the sessions have ended in the store whatever becomes of the notice, and
    /// an error here would tell a user whose logout worked that it failed. The other nodes
    /// then find the sessions gone on their next request; only their open WebSockets
    /// linger.
    async fn announce(&self, ended: &[Session], reason: EndReason) {
        for session in ended {
            let event = SessionEnded {
                realm: session.realm.clone(),
                id: session.id.clone(),
                reason,
            };
            if let Err(e) = self.store.publish(&event).await {
                tracing::warn!(error = %e, realm = %session.realm,
                    session = %crate::audit::fingerprint(&session.id), ?reason,
                    "could not tell the other nodes that a session ended");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn user() -> Identity {
        Identity::Qps {
            user_directory: "ACME".into(),
            user_id: "jdoe".into(),
            attributes: vec![("Group".into(), "Sales".into())],
        }
    }

    fn core() -> Core {
        Core::new(Arc::new(MemoryStore::new()), Lifetimes::default())
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticket_redeems_once_and_only_in_its_realm() {
        let core = core();
        let (id, _) = core
            .issue_ticket("qps/ext", user(), None, id::qps_ticket)
            .await
            .unwrap();
        assert_eq!(
            core.redeem("qps/ext", &id).await.unwrap().unwrap().identity,
            user()
        );
        assert!(core.redeem("qps/ext", &id).await.unwrap().is_none());

        let (id, _) = core
            .issue_ticket("qps/ext", user(), None, id::qps_ticket)
            .await
            .unwrap();
        assert!(core.redeem("qps/", &id).await.unwrap().is_none());
        assert!(
            core.redeem("qps/ext", &id).await.unwrap().is_none(),
            "consumed by the wrong realm"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticket_expires_after_its_lifetime() {
        let core = core();
        let (early, _) = core
            .issue_ticket("r", user(), None, id::qps_ticket)
            .await
            .unwrap();
        let (late, _) = core
            .issue_ticket("r", user(), None, id::qps_ticket)
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(core.redeem("r", &early).await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(core.redeem("r", &late).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_known_target_id_fills_the_target_uri() {
        let core = core();
        let target = core
            .new_target("r", "http://localhost:8080/ext/hub/")
            .await
            .unwrap();
        let (_, t) = core
            .issue_ticket("r", user(), Some(&target), id::qps_ticket)
            .await
            .unwrap();
        assert_eq!(
            t.target_uri.as_deref(),
            Some("http://localhost:8080/ext/hub/")
        );
        // Reusable while it lives.
        let (_, t) = core
            .issue_ticket("r", user(), Some(&target), id::qps_ticket)
            .await
            .unwrap();
        assert!(t.target_uri.is_some());
        let (_, t) = core
            .issue_ticket("r", user(), Some("no-such-target"), id::qps_ticket)
            .await
            .unwrap();
        assert_eq!(t.target_uri, None);
        tokio::time::advance(Duration::from_secs(30 * 60)).await;
        let (_, t) = core
            .issue_ticket("r", user(), Some(&target), id::qps_ticket)
            .await
            .unwrap();
        assert_eq!(t.target_uri, None);
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_slide_on_touch_and_end_when_idle() {
        let core = core();
        let idle = Duration::from_secs(30 * 60);
        let (s, _) = core.start_session("r", user(), idle, None).await.unwrap();
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(29 * 60)).await;
            assert!(core.touch_session("r", &s.id).await.unwrap().is_some());
        }
        tokio::time::advance(idle).await;
        assert!(core.touch_session("r", &s.id).await.unwrap().is_none());
    }

    fn ended(id: &str, reason: EndReason) -> SessionEnded {
        SessionEnded {
            realm: "r".into(),
            id: id.into(),
            reason,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_ended_session_is_announced_once_with_its_reason() {
        let core = core();
        let mut events = core.session_events();
        let idle = Duration::from_secs(30 * 60);
        let mut started = Vec::new();
        for _ in 0..3 {
            started.push(core.start_session("r", user(), idle, None).await.unwrap().0);
        }
        assert!(events.try_recv().is_err(), "starting announces nothing");

        let a = &started[0].id;
        assert!(core
            .end_session("r", a, EndReason::Closed)
            .await
            .unwrap()
            .is_some());
        assert_eq!(events.try_recv().unwrap(), ended(a, EndReason::Closed));
        for id in [a.as_str(), "unknown"] {
            assert!(core
                .end_session("r", id, EndReason::LoggedOut)
                .await
                .unwrap()
                .is_none());
        }
        assert!(
            events.try_recv().is_err(),
            "nothing ended, nothing announced"
        );

        let gone = core
            .end_user_sessions("r", &user().user_key(), EndReason::LoggedOut)
            .await
            .unwrap();
        assert_eq!(gone.len(), 2);
        for s in &started[1..] {
            assert_eq!(
                events.try_recv().unwrap(),
                ended(&s.id, EndReason::LoggedOut)
            );
        }
        assert!(events.try_recv().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn evicted_sessions_are_announced_however_the_new_one_starts() {
        let core = core();
        let mut events = core.session_events();
        let idle = Duration::from_secs(30 * 60);
        let one = Some(SessionLimit {
            max: 1,
            evict_oldest: true,
        });
        let (first, evicted) = core.start_session("r", user(), idle, one).await.unwrap();
        assert!(evicted.is_empty());
        assert!(events.try_recv().is_err());

        // A login.
        let (second, evicted) = core.start_session("r", user(), idle, one).await.unwrap();
        assert_eq!(evicted, std::slice::from_ref(&first));
        assert_eq!(
            events.try_recv().unwrap(),
            ended(&first.id, EndReason::Evicted)
        );

        // The session API.
        let chosen = Session::new("r", "portal-1", user());
        let evicted = core.insert_session(&chosen, idle, one).await.unwrap();
        assert_eq!(evicted, std::slice::from_ref(&second));
        assert_eq!(
            events.try_recv().unwrap(),
            ended(&second.id, EndReason::Evicted)
        );

        // A redeemed ticket.
        let (ticket, _) = core
            .issue_ticket("r", user(), None, id::qps_ticket)
            .await
            .unwrap();
        let Redemption::Started { evicted, .. } = core
            .redeem_into_session("r", &ticket, idle, one)
            .await
            .unwrap()
        else {
            panic!("no session started");
        };
        assert_eq!(evicted, [chosen]);
        assert_eq!(
            events.try_recv().unwrap(),
            ended("portal-1", EndReason::Evicted)
        );
        assert!(events.try_recv().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_id_fills_the_target_uri_only_in_the_realm_that_made_it() {
        let core = core();
        let uri = "http://localhost:8080/ext/hub/?a=1\tb";
        let target = core.new_target("qps/ext", uri).await.unwrap();
        let issue = |realm: &'static str| {
            let (core, target) = (core.clone(), target.clone());
            async move {
                core.issue_ticket(realm, user(), Some(&target), id::qps_ticket)
                    .await
                    .unwrap()
                    .1
                    .target_uri
            }
        };
        assert_eq!(issue("qps/ext").await.as_deref(), Some(uri));
        for other in ["qps/", "qps/ex", "qps/ext2", "qlikview"] {
            assert_eq!(issue(other).await, None, "{other}");
        }
        // A realm that is a prefix of another, or a URI that looks like a realm, changes
        // nothing.
        let tricky = core
            .new_target("qps/", "qps/ext\nhttp://evil/")
            .await
            .unwrap();
        let (_, t) = core
            .issue_ticket("qps/ext", user(), Some(&tricky), id::qps_ticket)
            .await
            .unwrap();
        assert_eq!(t.target_uri, None);
        // A value stored by an earlier version (the URI alone) fills nothing.
        core.store
            .insert_target("legacy", "http://localhost/hub/", Duration::from_secs(60))
            .await
            .unwrap();
        let (_, t) = core
            .issue_ticket("qps/ext", user(), Some("legacy"), id::qps_ticket)
            .await
            .unwrap();
        assert_eq!(t.target_uri, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_reads_until_taken_once_or_expired() {
        let core = core();
        let ttl = Duration::from_secs(300);
        let login = r#"{"nonce":"n","verifier":"v","target":"/hub/"}"#;
        core.put_value("oidc:state:abc", login, ttl).await.unwrap();
        assert!(matches!(
            core.put_value("oidc:state:abc", "other", ttl).await,
            Err(StoreError::Conflict)
        ));
        for _ in 0..3 {
            assert_eq!(
                core.value("oidc:state:abc").await.unwrap().as_deref(),
                Some(login)
            );
        }
        assert_eq!(
            core.take_value("oidc:state:abc").await.unwrap().as_deref(),
            Some(login)
        );
        assert_eq!(core.take_value("oidc:state:abc").await.unwrap(), None);
        assert_eq!(core.value("oidc:state:abc").await.unwrap(), None);

        core.put_value("jwt:x", "session-1", ttl).await.unwrap();
        tokio::time::advance(ttl).await;
        assert_eq!(core.value("jwt:x").await.unwrap(), None);
        assert_eq!(core.take_value("jwt:x").await.unwrap(), None);
        core.put_value("jwt:x", "session-2", ttl).await.unwrap();
        assert_eq!(
            core.value("jwt:x").await.unwrap().as_deref(),
            Some("session-2")
        );
    }
}
