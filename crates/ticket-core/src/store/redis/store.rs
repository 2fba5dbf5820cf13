//! The [`Store`] implementation: each operation one command or one script, bounded by
//! the operation timeout.

use std::time::Duration;

use async_trait::async_trait;
use redis::{RedisResult, Value};
use tokio::sync::broadcast;

use super::encoding::{
    decode_session, decode_sessions, decode_ticket, encode_session, encode_ticket, limit_args,
    millis,
};
use super::{backend, RedisStore};
use crate::events::SessionEnded;
use crate::model::{Session, Ticket};
use crate::store::{
    start_for_ticket, Redemption, SessionLimit, Store, StoreError, SESSION_ID_ATTEMPTS,
};

impl RedisStore {
    /// `SET key value NX PX ttl`: `Conflict` when the key is live.
    async fn set_new(
        &self,
        op: &'static str,
        key: String,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("NX").arg("PX").arg(millis(ttl));
        let reply: Value = self
            .run(
                op,
                |mut conn| async move { cmd.query_async(&mut conn).await },
            )
            .await?;
        match reply {
            Value::Nil => Err(StoreError::Conflict),
            _ => Ok(()),
        }
    }

    /// Runs `LIST_SESSIONS` over `index`.
    async fn list(
        &self,
        op: &'static str,
        index: String,
        realm: &str,
        user_key: Option<&str>,
    ) -> Result<Vec<Session>, StoreError> {
        let mut call = self.scripts.list_sessions.key(index);
        call.arg(self.keys.session_base(realm))
            .arg(if user_key.is_some() { "1" } else { "0" })
            .arg(user_key.unwrap_or(""));
        let raw: Vec<String> = self
            .run(
                op,
                |mut conn| async move { call.invoke_async(&mut conn).await },
            )
            .await?;
        decode_sessions(raw)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn insert_ticket(
        &self,
        id: &str,
        ticket: &Ticket,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let value = encode_ticket(ticket)?;
        self.set_new("insert_ticket", self.keys.ticket(id), &value, ttl)
            .await
    }

    async fn take_ticket(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.keys.ticket(id));
        let raw: Option<String> = self
            .run("take_ticket", |mut conn| async move {
                cmd.query_async(&mut conn).await
            })
            .await?;
        raw.as_deref().map(decode_ticket).transpose()
    }

    async fn insert_target(&self, id: &str, uri: &str, ttl: Duration) -> Result<(), StoreError> {
        self.set_new("insert_target", self.keys.target(id), uri, ttl)
            .await
    }

    async fn insert_value(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        self.set_new("insert_value", self.keys.value(key), value, ttl)
            .await
    }

    async fn value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.value(key));
        self.run("value", |mut conn| async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    async fn take_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.keys.value(key));
        self.run("take_value", |mut conn| async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    async fn target(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.target(id));
        self.run("target", |mut conn| async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    async fn insert_session(
        &self,
        session: &Session,
        idle: Duration,
        limit: Option<SessionLimit>,
    ) -> Result<Vec<Session>, StoreError> {
        let user_key = session.user_key();
        let value = encode_session(session, &user_key, idle)?;
        let realm = &session.realm;
        let base = self.keys.session_base(realm);
        let (max, evict) = limit_args(limit);
        let mut call = self
            .scripts
            .insert_session
            .key([&base, session.id.as_str()].concat());
        call.key([self.keys.user_base(realm).as_str(), &user_key].concat())
            .key(self.keys.realm(realm))
            .key(self.keys.seq())
            .arg(value)
            .arg(millis(idle))
            .arg(max)
            .arg(if evict { "1" } else { "0" })
            .arg(base)
            .arg(&session.id)
            .arg(&user_key);
        let reply: RedisResult<Vec<String>> = self
            .run_raw("insert_session", |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        match reply {
            Ok(evicted) => decode_sessions(evicted),
            Err(e) if e.code() == Some("LIMIT") => Err(StoreError::LimitReached),
            Err(e) if e.code() == Some("CONFLICT") => Err(StoreError::Conflict),
            Err(e) => Err(backend(e)),
        }
    }

    async fn touch_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let mut call = self
            .scripts
            .touch_session
            .key([self.keys.session_base(realm).as_str(), id].concat());
        call.key(self.keys.realm(realm))
            .arg(self.keys.user_base(realm));
        let raw: Option<String> = self
            .run("touch_session", |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        raw.as_deref().map(decode_session).transpose()
    }

    async fn session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg([self.keys.session_base(realm).as_str(), id].concat());
        let raw: Option<String> = self
            .run("session", |mut conn| async move {
                cmd.query_async(&mut conn).await
            })
            .await?;
        raw.as_deref().map(decode_session).transpose()
    }

    async fn remove_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let mut call = self
            .scripts
            .remove_session
            .key(format!("{}{id}", self.keys.session_base(realm)));
        call.key(self.keys.realm(realm))
            .arg(self.keys.user_base(realm))
            .arg(id);
        let raw: Option<String> = self
            .run("remove_session", |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        raw.as_deref().map(decode_session).transpose()
    }

    async fn sessions(&self, realm: &str) -> Result<Vec<Session>, StoreError> {
        self.list("sessions", self.keys.realm(realm), realm, None)
            .await
    }

    async fn user_sessions(&self, realm: &str, user_key: &str) -> Result<Vec<Session>, StoreError> {
        let index = format!("{}{user_key}", self.keys.user_base(realm));
        self.list("user_sessions", index, realm, Some(user_key))
            .await
    }

    async fn count_sessions(&self, realm: &str) -> Result<usize, StoreError> {
        let mut call = self.scripts.count_sessions.key(self.keys.realm(realm));
        call.arg(self.keys.session_base(realm));
        self.run("count_sessions", |mut conn| async move {
            call.invoke_async(&mut conn).await
        })
        .await
    }

    async fn remove_user_sessions(
        &self,
        realm: &str,
        user_key: &str,
    ) -> Result<Vec<Session>, StoreError> {
        let mut call = self
            .scripts
            .remove_user_sessions
            .key(format!("{}{user_key}", self.keys.user_base(realm)));
        call.key(self.keys.realm(realm))
            .arg(self.keys.session_base(realm))
            .arg(user_key);
        let raw: Vec<String> = self
            .run("remove_user_sessions", |mut conn| async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        decode_sessions(raw)
    }

    async fn redeem_ticket(
        &self,
        id: &str,
        realm: &str,
        idle: Duration,
        limit: Option<SessionLimit>,
        new_id: fn() -> String,
    ) -> Result<Redemption, StoreError> {
        let json = |v: &str| serde_json::to_string(v).map_err(|e| StoreError::Backend(Box::new(e)));
        let realm_json = json(realm)?;
        let base = self.keys.session_base(realm);
        let (max, evict) = limit_args(limit);
        let csrf_token = crate::id::csrf_token();
        let csrf_json = json(&csrf_token)?;
        for _ in 0..SESSION_ID_ATTEMPTS {
            let session_id = new_id();
            let mut call = self.scripts.redeem_ticket.key(self.keys.ticket(id));
            call.key([&base, session_id.as_str()].concat())
                .key(self.keys.realm(realm))
                .key(self.keys.seq())
                .arg(&realm_json)
                .arg(json(&session_id)?)
                .arg(millis(idle))
                .arg(max)
                .arg(if evict { "1" } else { "0" })
                .arg(&base)
                .arg(&session_id)
                .arg(self.keys.user_base(realm))
                .arg(&csrf_json);
            let reply: Vec<String> = self
                .run("redeem_ticket", |mut conn| async move {
                    call.invoke_async(&mut conn).await
                })
                .await?;
            let mut reply = reply.into_iter();
            let status = reply.next().unwrap_or_default();
            let ticket = reply.next().as_deref().map(decode_ticket).transpose()?;
            return Ok(match (status.as_str(), ticket) {
                ("conflict", _) => continue,
                ("none", _) => Redemption::NoTicket,
                ("realm", Some(ticket)) => Redemption::WrongRealm(ticket),
                ("limit", Some(ticket)) => Redemption::LimitReached(ticket),
                ("ok", Some(ticket)) => Redemption::Started {
                    session: Session {
                        realm: realm.to_owned(),
                        id: session_id,
                        identity: ticket.identity.clone(),
                        csrf_token,
                    },
                    ticket,
                    evicted: decode_sessions(reply.collect())?,
                },
                // Stored by an earlier version, in a form the script cannot splice: the
                // ticket is consumed; the session is started in a second step.
                ("legacy", Some(ticket)) => {
                    return start_for_ticket(self, ticket, realm, idle, limit, new_id).await
                }
                (other, _) => {
                    return Err(StoreError::Backend(
                        format!("unexpected reply from redeem_ticket: {other:?}").into(),
                    ))
                }
            });
        }
        Err(StoreError::Conflict)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let cmd = redis::cmd("PING");
        self.run("ping", |mut conn| async move {
            cmd.query_async::<()>(&mut conn).await
        })
        .await
    }

    async fn publish(&self, event: &SessionEnded) -> Result<(), StoreError> {
        let payload = serde_json::to_string(event).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.keys.session_events()).arg(payload);
        self.run("publish", |mut conn| async move {
            cmd.query_async::<()>(&mut conn).await
        })
        .await
    }

    fn subscribe(&self) -> broadcast::Receiver<SessionEnded> {
        self.events.subscribe()
    }
}
