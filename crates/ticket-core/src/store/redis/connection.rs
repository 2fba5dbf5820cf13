//! The command connection, and the task that keeps it: how the store notices that Redis
//! went away and reconnects without waiting for a request (see "Failure and recovery" in
//! the module above).
//!
//! One multiplexed connection carries every operation. The `redis` crate hands back its
//! driver (the future that reads and writes the socket) for the caller to run; the keeper
//! task runs it, so the keeper learns the moment the socket closes, and marks the link
//! down in the same step: from then on no operation is sent on the dead connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Client, RedisError, RedisResult};
use tokio::sync::{watch, Notify};

use super::scripts::Scripts;
use crate::store::{OwnedTask, StoreError};

/// The first pause between two failed connect attempts; each failure doubles it.
pub(super) const RETRY_MIN: Duration = Duration::from_millis(50);

/// The longest pause between two connect attempts nobody asked for. An operation that
/// finds the link down does not wait for it: it asks for an attempt at once.
pub(super) const RETRY_MAX: Duration = Duration::from_secs(1);

/// How often the keeper checks that an idle connection still answers. A server that
/// restarts closes its sockets and the keeper sees that at once; one that vanishes from
/// the network (a host lost, an address moved) closes nothing, and only a command that
/// goes unanswered shows it.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(5);

/// The future that drives a connection: it ends when the socket closes.
type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The command connection: the live one, or a way to wait for the next.
pub(super) struct Link {
    shared: Arc<Shared>,
    _keeper: OwnedTask,
}

struct Shared {
    state: watch::Sender<State>,
    /// Asks the keeper for a connect attempt now rather than at the end of its pause.
    attempt_now: Notify,
    /// Asks the keeper to check that the live connection still answers (an operation on
    /// it timed out).
    probe: Notify,
    /// Told whenever a new connection is up: Redis is back (the event subscription waits
    /// on it to subscribe again at once).
    redis_back: Arc<Notify>,
}

/// What operations see of the keeper.
#[derive(Clone, Default)]
struct State {
    /// The live connection; `None` while the link is down.
    conn: Option<MultiplexedConnection>,
    /// Connect attempts begun, and ended (either way), since the store was created.
    begun: u64,
    ended: u64,
    /// Why the last attempt failed.
    last_error: Option<Arc<str>>,
}

/// Redis could not be reached: no connection, and the attempt made for this operation
/// failed.
#[derive(Debug, thiserror::Error)]
#[error("redis is unreachable: {0}")]
struct Unreachable(Arc<str>);

impl Link {
    /// Connects to `client`'s server (failing after `op_timeout`), loads the scripts, and
    /// starts the keeper, which tells `redis_back` whenever it has connected again.
    pub(super) async fn open(
        client: Client,
        op_timeout: Duration,
        redis_back: Arc<Notify>,
    ) -> Result<Link, StoreError> {
        let (conn, driver) = match tokio::time::timeout(op_timeout, open(&client)).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => return Err(StoreError::Backend(Box::new(e))),
            Err(_) => {
                return Err(StoreError::Backend(Box::new(Unreachable(
                    format!("no connection within {op_timeout:?}").into(),
                ))))
            }
        };
        let (state, _) = watch::channel(State {
            conn: Some(conn.clone()),
            ..State::default()
        });
        let shared = Arc::new(Shared {
            state,
            attempt_now: Notify::new(),
            probe: Notify::new(),
            redis_back,
        });
        let keeper = tokio::spawn(keep(
            shared.clone(),
            client,
            op_timeout,
            Some((conn, driver)),
        ));
        Ok(Link {
            shared,
            _keeper: OwnedTask::new(keeper),
        })
    }

    /// The live connection, if there is one: the path of nearly every operation.
    pub(super) fn current(&self) -> Option<MultiplexedConnection> {
        self.shared.state.borrow().conn.clone()
    }

    /// A connection to send on when [`current`](Self::current) has none: asks the keeper
    /// for an attempt that begins after this call, and returns its connection, or its
    /// failure. The caller bounds the wait.
    pub(super) async fn reconnected(&self) -> Result<MultiplexedConnection, StoreError> {
        let wanted = {
            let state = self.shared.state.borrow();
            if let Some(conn) = &state.conn {
                return Ok(conn.clone());
            }
            // An attempt under way may have begun before the server came back: the one
            // after it is the first that surely begins after this call.
            state.begun + 1
        };
        let mut changes = self.shared.state.subscribe();
        self.shared.attempt_now.notify_one();
        let state = changes
            .wait_for(|s| s.conn.is_some() || s.ended >= wanted)
            .await
            .map_err(|_| unreachable("the connection keeper stopped".into()))?;
        match &state.conn {
            Some(conn) => Ok(conn.clone()),
            None => Err(unreachable(
                state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "no connection".into()),
            )),
        }
    }

    /// An operation timed out on the live connection: the keeper checks that the server
    /// still answers on it, and replaces it if not.
    pub(super) fn suspect(&self) {
        self.shared.probe.notify_one();
    }
}

fn unreachable(cause: Arc<str>) -> StoreError {
    StoreError::Backend(Box::new(Unreachable(cause)))
}

/// Opens a connection and readies it: `PING` (a server still loading its data answers
/// with an error), then every script loaded, so that the first `EVALSHA` after a restart
/// does not pay for a `NOSCRIPT` round trip. The driver runs meanwhile.
///
/// The connection gets no response timeout of its own: every operation is already bounded
/// by the operation timeout (see `RedisStore::run_raw`), and a second timer per command
/// costs as much as the command.
async fn open(client: &Client) -> RedisResult<(MultiplexedConnection, Driver)> {
    let (conn, driver) = client.create_multiplexed_tokio_connection().await?;
    let mut driver: Driver = Box::pin(driver);
    let mut pipe = redis::pipe();
    pipe.cmd("PING").ignore();
    for source in Scripts::SOURCES {
        pipe.cmd("SCRIPT").arg("LOAD").arg(source).ignore();
    }
    let mut setup = conn.clone();
    tokio::select! {
        ready = pipe.query_async::<()>(&mut setup) => ready?,
        () = &mut driver => return Err(closed()),
    }
    Ok((conn, driver))
}

fn closed() -> RedisError {
    RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
}

/// The keeper: runs the live connection until it breaks, then reconnects, pausing between
/// failed attempts (from [`RETRY_MIN`], doubling, to [`RETRY_MAX`]) unless an operation
/// asks for an attempt at once. Owned by the [`Link`]: it stops when the store is dropped,
/// and the connection with it.
async fn keep(
    shared: Arc<Shared>,
    client: Client,
    op_timeout: Duration,
    mut live: Option<(MultiplexedConnection, Driver)>,
) {
    let mut pause = RETRY_MIN;
    loop {
        if let Some((conn, mut driver)) = live.take() {
            pause = RETRY_MIN;
            serve(&shared, &conn, &mut driver, op_timeout).await;
            shared.state.send_modify(|s| s.conn = None);
            tracing::warn!("lost the connection to redis; reconnecting");
        }
        let mut attempt = 0;
        shared.state.send_modify(|s| {
            s.begun += 1;
            attempt = s.begun;
        });
        match tokio::time::timeout(op_timeout, open(&client)).await {
            Ok(Ok((conn, driver))) => {
                // Connection and outcome in one change: a waiting operation wakes to find
                // the connection there.
                shared.state.send_modify(|s| {
                    s.conn = Some(conn.clone());
                    s.ended = attempt;
                    s.last_error = None;
                });
                tracing::info!("reconnected to redis");
                shared.redis_back.notify_one();
                live = Some((conn, driver));
            }
            failed => {
                let why: Arc<str> = match failed {
                    Ok(Err(e)) => e.to_string().into(),
                    _ => format!("no connection within {op_timeout:?}").into(),
                };
                tracing::debug!(error = %why, "redis connect attempt failed");
                shared.state.send_modify(|s| {
                    s.ended = attempt;
                    s.last_error = Some(why);
                });
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shared.attempt_now.notified() => {}
                }
                pause = (pause * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Runs a live connection's driver until the socket closes, or until the server stops
/// answering `PING` on it within `op_timeout` (checked every [`HEARTBEAT`], and whenever
/// an operation timed out). Returning drops nothing: the caller drops the driver, which
/// closes the socket and fails whatever was still waiting on it.
async fn serve(
    shared: &Shared,
    conn: &MultiplexedConnection,
    driver: &mut Driver,
    op_timeout: Duration,
) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            () = &mut *driver => return,
            _ = heartbeat.tick() => {}
            () = shared.probe.notified() => {}
        }
        let mut ping_conn = conn.clone();
        let ping_cmd = redis::cmd("PING");
        let ping = tokio::time::timeout(op_timeout, ping_cmd.query_async::<()>(&mut ping_conn));
        // The driver must run for the answer to arrive.
        let answered = tokio::select! {
            answer = ping => matches!(answer, Ok(Ok(()))),
            () = &mut *driver => return,
        };
        if !answered {
            tracing::warn!(
                ?op_timeout,
                "redis stopped answering on its connection; replacing it"
            );
            return;
        }
    }
}
