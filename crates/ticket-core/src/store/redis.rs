//! The Redis backend: one store shared by every gateway instance.
//!
//! Several gateways behind a load balancer must agree that a ticket is used once and that
//! a session ends everywhere at the same moment, so the state lives in one Redis server
//! (standalone or a primary with replicas; Redis 6.2 or later for `GETDEL`). Redis Cluster
//! is not supported: the scripts below reach keys they discover while running.
//!
//! # Key layout
//!
//! Every key starts with [`RedisConfig::key_prefix`] (written `P` here), so several
//! gateways or test runs can share one server. `<realm>` has `%` and `:` percent-escaped,
//! so `session:<realm>:<id>` is unambiguous even for ids that hold a `:`.
//!
//! | key                          | type   | value                                        | expiry        |
//! |------------------------------|--------|----------------------------------------------|---------------|
//! | `P ticket:<id>`              | string | JSON of user key, realm, identity, target, tab-separated | `PX` ttl |
//! | `P target:<id>`              | string | the URI                                      | `PX` ttl      |
//! | `P session:<realm>:<id>`     | string | `{"idle_ms", "user_key", "session"}` as JSON | `PX` idle     |
//! | `P user:<realm>:<user_key>`  | zset   | session ids scored by creation sequence      | ≥ its members |
//! | `P realm:<realm>`            | zset   | session ids scored by creation sequence      | ≥ its members |
//! | `P seq`                      | string | the creation sequence (`INCR`)               | none          |
//!
//! The server owns the clock: lifetimes are measured by Redis, not by tokio.
//!
//! # Why each step is atomic
//!
//! - **Tickets** are inserted with `SET NX PX` (a live id is never overwritten) and taken
//!   with `GETDEL`: of any number of racing redemptions, Redis runs one `GETDEL` first and
//!   every other one finds nothing. A redemption takes the ticket and inserts its session
//!   in one script (`REDEEM_TICKET`), so the same holds for it.
//! - **Target ids** are `SET NX PX` and plain `GET`s: they may be read any number of times.
//! - **Sessions** carry their idle timeout inside the value, so touching one is a script
//!   that reads it and restarts its expiry in the same step; a session about to expire is
//!   either touched or gone, never half of each.
//! - **The indexes** may name sessions that have expired (Redis drops the session key, not
//!   the index entry). Every script that reads an index drops such members as it goes, and
//!   an insert also checks a few members of each index (walking it a few at a time), so
//!   dead entries do not pile up. An index's own expiry is kept at least as far out as any
//!   member's, so the index of a user who never returns disappears by itself.
//! - **Session limits** are one script: clean the user's index, count the live sessions,
//!   refuse or evict, and insert. Redis runs scripts one at a time, so racing logins of
//!   one user cannot pass the limit together.
//! - **Removal** (one session or all of a user's) is a script too, so a session and its
//!   index entries go together.
//!
//! # Failure
//!
//! The connection is a [`ConnectionManager`]: one multiplexed connection whose requests
//! queue in a bounded buffer, replaced by a new one when it breaks. Every operation is
//! bounded by [`RedisConfig::op_timeout`], and a failed reconnect is not retried with
//! back-off while callers wait: while Redis is down requests fail at once with
//! [`StoreError::Backend`], and once it is back the next request reconnects.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script, Value};
use serde::{Deserialize, Serialize};

use super::{start_for_ticket, Redemption, SessionLimit, Store, StoreError, SESSION_ID_ATTEMPTS};
use crate::model::{Session, Ticket};

use crate::defaults::{
    REDIS_KEY_PREFIX as DEFAULT_KEY_PREFIX, REDIS_URL, STORE_TIMEOUT as DEFAULT_OP_TIMEOUT,
};

/// Where the Redis store lives and how long it may take to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// A `redis://` (or `unix://`) URL, with credentials and database number if needed.
    pub url: String,
    /// Prepended to every key, so several deployments can share one server.
    pub key_prefix: String,
    /// The longest any one operation may take before it fails with
    /// [`StoreError::Backend`].
    pub op_timeout: Duration,
}

impl RedisConfig {
    /// A configuration for `url` with the default prefix and timeout.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            op_timeout: DEFAULT_OP_TIMEOUT,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig::new(REDIS_URL)
    }
}

/// The Redis [`Store`]. Cheap to share behind an `Arc`; every clone of the underlying
/// connection multiplexes onto one socket.
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
    op_timeout: Duration,
    scripts: Scripts,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.keys.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

/// A store operation that Redis did not finish within the operation timeout.
#[derive(Debug, thiserror::Error)]
#[error("redis did not answer {op} within {after:?}")]
struct TimedOut {
    op: &'static str,
    after: Duration,
}

/// A value under one of our keys that does not decode: written by something else, or by
/// an incompatible version.
#[derive(Debug, thiserror::Error)]
#[error("unreadable {what} in redis: {source}")]
struct Corrupt {
    what: &'static str,
    #[source]
    source: serde_json::Error,
}

fn backend(e: RedisError) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// A lifetime in whole milliseconds for `PX`, which refuses zero.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Builds every key name from the prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    /// The prefix followed by `parts`, in one allocation (keys are built on every call).
    fn join(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(&self.prefix);
        for part in parts {
            key.push_str(part);
        }
        key
    }

    fn ticket(&self, id: &str) -> String {
        self.join(&["ticket:", id])
    }

    fn target(&self, id: &str) -> String {
        self.join(&["target:", id])
    }

    /// `P session:<realm>:`: a session's key is this followed by its id.
    fn session_base(&self, realm: &str) -> String {
        self.join(&["session:", &escape(realm), ":"])
    }

    /// `P user:<realm>:`: a user's index is this followed by the user key.
    fn user_base(&self, realm: &str) -> String {
        self.join(&["user:", &escape(realm), ":"])
    }

    fn realm(&self, realm: &str) -> String {
        self.join(&["realm:", &escape(realm)])
    }

    fn seq(&self) -> String {
        self.join(&["seq"])
    }
}

/// Percent-escapes `%` and `:` so a realm is one unambiguous key segment.
fn escape(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.bytes().any(|b| b == b'%' || b == b':') {
        segment.replace('%', "%25").replace(':', "%3A").into()
    } else {
        segment.into()
    }
}

/// What a session key holds. The idle timeout travels with the session so a touch can
/// restart the expiry without the caller knowing it; the user key lets the scripts find
/// the user's index and check that an index member still belongs to that user (a
/// caller-chosen id may be reused by someone else once the first session has ended).
#[derive(Serialize)]
struct StoredSessionRef<'a> {
    idle_ms: u64,
    user_key: &'a str,
    session: &'a Session,
}

#[derive(Deserialize)]
struct StoredSession {
    session: Session,
}

fn encode_session(session: &Session, user_key: &str, idle: Duration) -> Result<String, StoreError> {
    serde_json::to_string(&StoredSessionRef {
        idle_ms: millis(idle),
        user_key,
        session,
    })
    .map_err(|e| StoreError::Backend(Box::new(e)))
}

fn decode_session(raw: &str) -> Result<Session, StoreError> {
    serde_json::from_str::<StoredSession>(raw)
        .map(|s| s.session)
        .map_err(|source| {
            StoreError::Backend(Box::new(Corrupt {
                what: "session",
                source,
            }))
        })
}

fn decode_sessions(raw: Vec<String>) -> Result<Vec<Session>, StoreError> {
    raw.iter().map(|v| decode_session(v)).collect()
}

/// The limit and eviction arguments of the session scripts. As in the memory store, a
/// limit of zero still admits one session.
fn limit_args(limit: Option<SessionLimit>) -> (usize, bool) {
    match limit {
        Some(l) => (l.max.max(1), l.evict_oldest),
        None => (0, false),
    }
}

/// What a ticket key holds: the JSON texts of the user key, the realm, the identity and
/// the target URI, separated by tabs (which JSON text never holds raw). A redemption
/// script compares the realm's text and splices the others into the session's value
/// without decoding them (see [`REDEEM_TICKET`]).
fn encode_ticket(ticket: &Ticket) -> Result<String, StoreError> {
    let json = |r: serde_json::Result<String>| r.map_err(|e| StoreError::Backend(Box::new(e)));
    let user_key = json(serde_json::to_string(&ticket.identity.user_key()))?;
    let realm = json(serde_json::to_string(&ticket.realm))?;
    let identity = json(serde_json::to_string(&ticket.identity))?;
    let target = json(serde_json::to_string(&ticket.target_uri))?;
    Ok([user_key, realm, identity, target].join("\t"))
}

/// A ticket as [`encode_ticket`] stores it, or as earlier versions did (the [`Ticket`] as
/// one JSON object).
fn decode_ticket(raw: &str) -> Result<Ticket, StoreError> {
    let corrupt = |source| {
        StoreError::Backend(Box::new(Corrupt {
            what: "ticket",
            source,
        }))
    };
    let mut parts = raw.split('\t');
    let (Some(_user_key), Some(realm), Some(identity), Some(target), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return serde_json::from_str(raw).map_err(corrupt);
    };
    Ok(Ticket {
        realm: serde_json::from_str(realm).map_err(corrupt)?,
        identity: serde_json::from_str(identity).map_err(corrupt)?,
        target_uri: serde_json::from_str(target).map_err(corrupt)?,
    })
}

/// Shared Lua helpers, prepended to the scripts that need them.
///
/// `extend` pushes a key's expiry out to at least `ms` from now and never pulls it in, so
/// an index outlives every session it names. `sweep` checks `n` members of an index and
/// drops those whose session key is gone: the `n` at rank `cursor * n` (wrapping), so
/// successive sweeps, whose cursors count up, walk the whole index `n` members at a time.
/// (A walk by rank costs a few microseconds in Redis where `ZRANDMEMBER` on a large index
/// costs ten.) It returns the index's size before the sweep.
///
/// Numbers go to `redis.call` as text (`int`): Lua turns a number argument into text with
/// the C library's floating-point formatter, which costs Redis about a microsecond each.
const LUA_HELPERS: &str = r#"
local function int(n)
  return string.format('%d', n)
end
local function extend(key, ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, int(ms))
  end
end
local function sweep(index, base, n, cursor)
  local size = redis.call('ZCARD', index)
  if size == 0 then
    return 0
  end
  local from = (cursor * n) % size
  for _, id in ipairs(redis.call('ZRANGE', index, int(from), int(from + n - 1))) do
    if redis.call('EXISTS', base .. id) == 0 then
      redis.call('ZREM', index, id)
    end
  end
  return size
end
"#;

/// Inserts a session, within a per-user limit: the function both the session API's insert
/// and a redemption call, prepended to their scripts with [`LUA_HELPERS`].
///
/// Arguments: the session key, the user's index, the realm index, the sequence counter,
/// the value to store, the idle time in milliseconds (as text), the limit (`0`: none),
/// whether to evict (`true`/`false`), the session key base, the session id, the user key.
///
/// With a limit, walks the user's index oldest first, dropping members whose session has
/// ended or now belongs to someone else, and counts the live ones. Then, in this order:
/// refuses with `limit` if the new session would pass the limit and eviction is off;
/// refuses with `conflict` if the id is live; ends the oldest sessions to make room; and
/// stores the new session under the next sequence number in both indexes. Returns `ok`
/// and the stored values of the evicted sessions, oldest first. Without a limit the user's
/// index is only swept for dead members, a few at a time.
///
/// Every command a script calls costs Redis a microsecond or two beyond its own work, and
/// this runs for every login, so it calls as few as it can: the realm index is swept on
/// one insert in four, eight members at a time (two per insert, which keeps the dead
/// members of an index at most as many as the live ones), and a user index that did not
/// exist gets its expiry without first being asked for one.
const INSERT_SESSION_FN: &str = r#"
local function insert_session(key, user_index, realm_index, seq_key, value, idle_ms, max, evict, base, id, user_key)
  local idle = tonumber(idle_ms)
  local seq = redis.call('INCR', seq_key)
  local score = int(seq)
  local live = {}
  local new_user = false
  if max > 0 then
    local members = redis.call('ZRANGE', user_index, '0', '-1')
    new_user = #members == 0
    for _, member in ipairs(members) do
      local v = redis.call('GET', base .. member)
      if v and cjson.decode(v)['user_key'] == user_key then
        live[#live + 1] = {member, v}
      else
        redis.call('ZREM', user_index, member)
        if not v then
          redis.call('ZREM', realm_index, member)
        end
      end
    end
  else
    new_user = sweep(user_index, base, 3, seq) == 0
  end
  local excess = 0
  if max > 0 then
    excess = #live + 1 - max
  end
  if excess > 0 and not evict then
    return 'limit', {}
  end
  -- Before ending anyone's session, make sure the new one can be stored; without
  -- evictions the `SET NX` below finds out by itself.
  if excess > 0 and redis.call('EXISTS', key) == 1 then
    return 'conflict', {}
  end
  local evicted = {}
  for i = 1, excess do
    local member, v = live[i][1], live[i][2]
    redis.call('DEL', base .. member)
    redis.call('ZREM', user_index, member)
    redis.call('ZREM', realm_index, member)
    evicted[#evicted + 1] = v
  end
  if seq % 4 == 0 then
    sweep(realm_index, base, 8, seq / 4)
  end
  if not redis.call('SET', key, value, 'PX', idle_ms, 'NX') then
    return 'conflict', {}
  end
  redis.call('ZADD', user_index, score, id)
  redis.call('ZADD', realm_index, score, id)
  if new_user then
    redis.call('PEXPIRE', user_index, idle_ms)
  else
    extend(user_index, idle)
  end
  extend(realm_index, idle)
  return 'ok', evicted
end
"#;

/// Inserts a session for the session API: [`INSERT_SESSION_FN`].
///
/// KEYS: session key, user index, realm index, sequence counter.
/// ARGV: stored value, idle ms, limit (`0`: none), evict (`1`/`0`), session key base,
/// session id, user key.
///
/// Returns the evicted values, or the error `LIMIT` or `CONFLICT`.
const INSERT_SESSION: &str = r#"
local status, evicted = insert_session(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2],
  tonumber(ARGV[3]), ARGV[4] == '1', ARGV[5], ARGV[6], ARGV[7])
if status == 'limit' then
  return redis.error_reply('LIMIT the user already has the maximum number of sessions')
elseif status == 'conflict' then
  return redis.error_reply('CONFLICT a session with this id already exists')
end
return evicted
"#;

/// Redeems a ticket into a session in one step, saving a login a round trip.
///
/// KEYS: ticket key, session key, realm index, sequence counter.
/// ARGV: the realm as JSON, the session id as JSON, idle ms, limit (`0`: none), evict
/// (`1`/`0`), session key base, session id, user index base.
///
/// Returns `{status, ticket, evicted…}`:
/// - `conflict`: a live session has the id; the ticket is left alone (nothing else).
/// - `none`: no ticket under the key (nothing else).
/// - `realm`: the ticket is another realm's; it is consumed.
/// - `legacy`: the ticket is in the form earlier versions stored (plain JSON); it is
///   consumed, and the caller starts the session itself.
/// - `limit`: the user holds the most sessions allowed; the ticket is consumed.
/// - `ok`: the session is stored; the values it evicted follow the ticket.
///
/// The session's value is spliced from the JSON texts the ticket was stored as (see
/// [`encode_ticket`]) rather than decoded and encoded again: Lua's JSON library cannot
/// tell an empty array from an empty object.
const REDEEM_TICKET: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'conflict'}
end
local raw = redis.call('GETDEL', KEYS[1])
if not raw then
  return {'none'}
end
local user_key_json, realm_json, identity_json = string.match(raw, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t')
if not user_key_json then
  return {'legacy', raw}
end
if realm_json ~= ARGV[1] then
  return {'realm', raw}
end
local user_key = cjson.decode(user_key_json)
local value = '{"idle_ms":' .. ARGV[3] .. ',"user_key":' .. user_key_json ..
  ',"session":{"realm":' .. realm_json .. ',"id":' .. ARGV[2] ..
  ',"identity":' .. identity_json .. '}}'
local status, evicted = insert_session(KEYS[2], ARGV[8] .. user_key, KEYS[3], KEYS[4], value,
  ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6], ARGV[7], user_key)
if status ~= 'ok' then
  return {status, raw}
end
local out = {'ok', raw}
for _, v in ipairs(evicted) do
  out[#out + 1] = v
end
return out
"#;

/// Returns a live session and restarts its idle timeout, in one step.
///
/// KEYS: session key, realm index. ARGV: user index base.
/// Reads the value; if present, restarts its expiry with the idle time stored inside it
/// and keeps both of its indexes alive at least as long. Returns the value or nil.
const TOUCH_SESSION: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then
  return false
end
local stored = cjson.decode(v)
local idle = tonumber(string.format('%d', stored['idle_ms']))
redis.call('PEXPIRE', KEYS[1], int(idle))
extend(KEYS[2], idle)
extend(ARGV[1] .. stored['user_key'], idle)
return v
"#;

/// Ends one session and drops it from both indexes.
///
/// KEYS: session key, realm index. ARGV: user index base, session id.
/// Returns the removed value or nil.
const REMOVE_SESSION: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then
  return false
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', ARGV[1] .. cjson.decode(v)['user_key'], ARGV[2])
return v
"#;

/// Lists the live sessions an index names, oldest first, dropping the dead members.
///
/// KEYS: an index. ARGV: session key base, `1` to keep only the user key in ARGV[3]
/// (for a user's index) or `0` for any (for a realm's index), user key.
const LIST_SESSIONS: &str = r#"
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '0', '-1')) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v and (ARGV[2] ~= '1' or cjson.decode(v)['user_key'] == ARGV[3]) then
    out[#out + 1] = v
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"#;

/// Ends every live session of one user.
///
/// KEYS: user index, realm index. ARGV: session key base, user key.
/// Deletes each member's session if it still belongs to the user, drops the members from
/// the realm index (dead ones too), deletes the user's index, and returns the removed
/// values oldest first.
const REMOVE_USER_SESSIONS: &str = r#"
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '0', '-1')) do
  local key = ARGV[1] .. id
  local v = redis.call('GET', key)
  if v and cjson.decode(v)['user_key'] == ARGV[2] then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[2], id)
    out[#out + 1] = v
  elseif not v then
    redis.call('ZREM', KEYS[2], id)
  end
end
redis.call('DEL', KEYS[1])
return out
"#;

/// The scripts, hashed once; `EVALSHA` loads them again after a server restart.
struct Scripts {
    insert_session: Script,
    redeem_ticket: Script,
    touch_session: Script,
    remove_session: Script,
    list_sessions: Script,
    remove_user_sessions: Script,
}

impl Scripts {
    fn sources() -> [String; 6] {
        [
            format!("{LUA_HELPERS}{INSERT_SESSION_FN}{INSERT_SESSION}"),
            format!("{LUA_HELPERS}{INSERT_SESSION_FN}{REDEEM_TICKET}"),
            format!("{LUA_HELPERS}{TOUCH_SESSION}"),
            REMOVE_SESSION.to_owned(),
            LIST_SESSIONS.to_owned(),
            REMOVE_USER_SESSIONS.to_owned(),
        ]
    }

    fn new() -> Self {
        let [insert, redeem, touch, remove, list, remove_user] = Self::sources();
        Scripts {
            insert_session: Script::new(&insert),
            redeem_ticket: Script::new(&redeem),
            touch_session: Script::new(&touch),
            remove_session: Script::new(&remove),
            list_sessions: Script::new(&list),
            remove_user_sessions: Script::new(&remove_user),
        }
    }
}

impl RedisStore {
    /// Connects to the server in `cfg.url`, checks that it answers `PING`, and loads the
    /// scripts (so a server that cannot run them fails here, not on the first login).
    pub async fn connect(cfg: RedisConfig) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(cfg.url.as_str()).map_err(backend)?;
        // No back-off retries: a request waiting on a reconnect would wait out the
        // back-off. One attempt per failure, and the next request tries again. Responses
        // get no timeout of the client's own: every operation is already bounded by
        // `op_timeout` (see `bounded`), and a second timer per command costs as much as
        // the command.
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(cfg.op_timeout)
            .set_number_of_retries(0);
        let conn = bounded(
            "connect",
            cfg.op_timeout,
            ConnectionManager::new_with_config(client, manager),
        )
        .await?;
        let store = RedisStore {
            conn,
            keys: Keys {
                prefix: cfg.key_prefix,
            },
            op_timeout: cfg.op_timeout,
            scripts: Scripts::new(),
        };
        let mut pipe = redis::pipe();
        pipe.cmd("PING").ignore();
        for source in Scripts::sources() {
            pipe.cmd("SCRIPT").arg("LOAD").arg(source).ignore();
        }
        let mut conn = store.conn.clone();
        store
            .bounded(
                "connect",
                async move { pipe.query_async::<()>(&mut conn).await },
            )
            .await?;
        Ok(store)
    }

    /// The key prefix in use.
    pub fn key_prefix(&self) -> &str {
        &self.keys.prefix
    }

    async fn bounded<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = redis::RedisResult<T>> + Send,
    ) -> Result<T, StoreError> {
        bounded(op, self.op_timeout, fut).await
    }

    /// `SET key value NX PX ttl`: `Conflict` when the key is live.
    async fn set_new(
        &self,
        op: &'static str,
        key: String,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("NX").arg("PX").arg(millis(ttl));
        let reply: Value = self
            .bounded(op, async move { cmd.query_async(&mut conn).await })
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
        let mut conn = self.conn.clone();
        let mut call = self.scripts.list_sessions.key(index);
        call.arg(self.keys.session_base(realm))
            .arg(if user_key.is_some() { "1" } else { "0" })
            .arg(user_key.unwrap_or(""));
        let raw: Vec<String> = self
            .bounded(op, async move { call.invoke_async(&mut conn).await })
            .await?;
        decode_sessions(raw)
    }
}

/// Runs `fut` within `limit`; a timeout or a Redis error becomes [`StoreError::Backend`].
async fn bounded<T>(
    op: &'static str,
    limit: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(backend(e)),
        Err(_) => Err(StoreError::Backend(Box::new(TimedOut { op, after: limit }))),
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
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.keys.ticket(id));
        let raw: Option<String> = self
            .bounded(
                "take_ticket",
                async move { cmd.query_async(&mut conn).await },
            )
            .await?;
        raw.as_deref().map(decode_ticket).transpose()
    }

    async fn insert_target(&self, id: &str, uri: &str, ttl: Duration) -> Result<(), StoreError> {
        self.set_new("insert_target", self.keys.target(id), uri, ttl)
            .await
    }

    async fn target(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.target(id));
        self.bounded("target", async move { cmd.query_async(&mut conn).await })
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
        let mut conn = self.conn.clone();
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
        let reply: Result<Vec<String>, StoreError> =
            match tokio::time::timeout(self.op_timeout, call.invoke_async(&mut conn)).await {
                Ok(Ok(evicted)) => Ok(evicted),
                Ok(Err(e)) if e.code() == Some("LIMIT") => Err(StoreError::LimitReached),
                Ok(Err(e)) if e.code() == Some("CONFLICT") => Err(StoreError::Conflict),
                Ok(Err(e)) => Err(backend(e)),
                Err(_) => Err(StoreError::Backend(Box::new(TimedOut {
                    op: "insert_session",
                    after: self.op_timeout,
                }))),
            };
        decode_sessions(reply?)
    }

    async fn touch_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let mut call = self
            .scripts
            .touch_session
            .key([self.keys.session_base(realm).as_str(), id].concat());
        call.key(self.keys.realm(realm))
            .arg(self.keys.user_base(realm));
        let raw: Option<String> = self
            .bounded("touch_session", async move {
                call.invoke_async(&mut conn).await
            })
            .await?;
        raw.as_deref().map(decode_session).transpose()
    }

    async fn session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("GET");
        cmd.arg([self.keys.session_base(realm).as_str(), id].concat());
        let raw: Option<String> = self
            .bounded("session", async move { cmd.query_async(&mut conn).await })
            .await?;
        raw.as_deref().map(decode_session).transpose()
    }

    async fn remove_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let mut call = self
            .scripts
            .remove_session
            .key(format!("{}{id}", self.keys.session_base(realm)));
        call.key(self.keys.realm(realm))
            .arg(self.keys.user_base(realm))
            .arg(id);
        let raw: Option<String> = self
            .bounded("remove_session", async move {
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

    async fn remove_user_sessions(
        &self,
        realm: &str,
        user_key: &str,
    ) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let mut call = self
            .scripts
            .remove_user_sessions
            .key(format!("{}{user_key}", self.keys.user_base(realm)));
        call.key(self.keys.realm(realm))
            .arg(self.keys.session_base(realm))
            .arg(user_key);
        let raw: Vec<String> = self
            .bounded("remove_user_sessions", async move {
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
        for _ in 0..SESSION_ID_ATTEMPTS {
            let session_id = new_id();
            let mut conn = self.conn.clone();
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
                .arg(self.keys.user_base(realm));
            let reply: Vec<String> = self
                .bounded("redeem_ticket", async move {
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
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        self.bounded(
            "ping",
            async move { cmd.query_async::<()>(&mut conn).await },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Identity;

    fn keys() -> Keys {
        Keys {
            prefix: "p:".into(),
        }
    }

    #[test]
    fn keys_follow_the_documented_layout() {
        let k = keys();
        assert_eq!(k.ticket("ABC"), "p:ticket:ABC");
        assert_eq!(k.target("g"), "p:target:g");
        assert_eq!(k.session_base("qps/ext"), "p:session:qps/ext:");
        assert_eq!(k.user_base("qlikview"), "p:user:qlikview:");
        assert_eq!(k.realm("qps/"), "p:realm:qps/");
        assert_eq!(k.seq(), "p:seq");
    }

    #[test]
    fn a_realm_is_one_unambiguous_segment() {
        let k = keys();
        assert_eq!(k.session_base("a:b"), "p:session:a%3Ab:");
        assert_eq!(k.realm("50%:x"), "p:realm:50%25%3Ax");
        assert_ne!(
            format!("{}{}", k.session_base("a:b"), "c"),
            format!("{}{}", k.session_base("a"), "b:c")
        );
    }

    #[test]
    fn lifetimes_are_whole_positive_milliseconds() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(60)), 60_000);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn a_stored_session_round_trips_and_carries_what_the_scripts_read() {
        let session = Session {
            realm: "qps/ext".into(),
            id: "s:1".into(),
            identity: Identity::Qps {
                user_directory: "ACME".into(),
                user_id: "Jdoe".into(),
                attributes: vec![("Group".into(), "Ventes é".into())],
            },
        };
        let raw = encode_session(&session, &session.user_key(), Duration::from_secs(1800))
            .expect("encodes");
        let json: serde_json::Value = serde_json::from_str(&raw).expect("JSON");
        assert_eq!(json["idle_ms"], 1_800_000);
        assert_eq!(json["user_key"], "acme\\jdoe");
        assert_eq!(decode_session(&raw).expect("decodes"), session);
        assert!(matches!(
            decode_session("not json"),
            Err(StoreError::Backend(_))
        ));
    }

    #[test]
    fn the_default_configuration_bounds_operations_at_two_seconds() {
        let cfg = RedisConfig::default();
        assert_eq!(cfg.op_timeout, Duration::from_secs(2));
        assert_eq!(cfg.key_prefix, DEFAULT_KEY_PREFIX);
    }
}
