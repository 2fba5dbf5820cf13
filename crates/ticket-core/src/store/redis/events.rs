//! Session-end events between nodes: `PUBLISH` on a channel named from the key prefix,
//! and a task, owned by the store, that holds a subscription to it and hands what it hears
//! to the local receivers.
//!
//! A subscribed connection can do nothing else, so it is a second connection beside the
//! command connection, kept the same way: when it closes (Redis restarted) or stops
//! answering `PING`, the task subscribes again, at once, then after pauses growing to a
//! second, and at once whenever the command connection has just come back. Events
//! published while a node is not subscribed do not reach it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSub;
use redis::{Client, Msg, RedisResult, Value};
use tokio::sync::{broadcast, Notify};

use super::connection::{HEARTBEAT, RETRY_MAX, RETRY_MIN};
use crate::events::SessionEnded;

/// Opens a connection and subscribes it to `channel`; once this returns, every event
/// published on the channel reaches the subscription.
pub(super) async fn subscribe(client: &Client, channel: &str) -> RedisResult<PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// What the listening task needs.
pub(super) struct Listener {
    pub(super) client: Client,
    pub(super) channel: String,
    pub(super) events: broadcast::Sender<SessionEnded>,
    pub(super) op_timeout: Duration,
    /// Notified when the command connection comes back: Redis is there again, so a
    /// subscription lost meanwhile is tried again at once.
    pub(super) redis_back: Arc<Notify>,
}

impl Listener {
    /// Listens on `subscribed` until it is lost, then subscribes again, for as long as the
    /// store lives (the store owns the task and aborts it when dropped).
    pub(super) async fn run(self, subscribed: PubSub) {
        let mut live = Some(subscribed);
        let mut pause = RETRY_MIN;
        loop {
            if let Some(pubsub) = live.take() {
                pause = RETRY_MIN;
                self.forward(pubsub).await;
                tracing::warn!("lost the redis subscription to session events; subscribing again");
            }
            match tokio::time::timeout(self.op_timeout, subscribe(&self.client, &self.channel))
                .await
            {
                Ok(Ok(pubsub)) => {
                    tracing::info!("subscribed to session events again");
                    live = Some(pubsub);
                }
                failed => {
                    if let Ok(Err(e)) = failed {
                        tracing::debug!(error = %e, "subscribing to session events failed");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = self.redis_back.notified() => {}
                    }
                    pause = (pause * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Hands every event heard on `pubsub` to the local receivers, until the connection
    /// closes or a `PING` on it (every [`HEARTBEAT`]) goes unanswered within the timeout.
    async fn forward(&self, pubsub: PubSub) {
        let (mut sink, mut messages) = pubsub.split();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => self.deliver(&message),
                    None => return,
                },
                _ = heartbeat.tick() => {
                    let pong = tokio::time::timeout(self.op_timeout, sink.ping::<Value>()).await;
                    if !matches!(pong, Ok(Ok(_))) {
                        return;
                    }
                }
            }
        }
    }

    fn deliver(&self, message: &Msg) {
        let event = message
            .get_payload::<String>()
            .ok()
            .and_then(|text| serde_json::from_str::<SessionEnded>(&text).ok());
        match event {
            // An error only says that nobody on this node is listening.
            Some(event) => drop(self.events.send(event)),
            None => tracing::warn!(
                channel = message.get_channel_name(),
                "ignored an unreadable session event"
            ),
        }
    }
}
