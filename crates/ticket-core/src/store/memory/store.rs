//! The [`Store`] implementation: every operation is a synchronous step on the maps, done
//! before the returned future is first polled to completion; nothing here waits.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::MemoryStore;
use crate::events::SessionEnded;
use crate::model::{Session, Ticket};
use crate::store::{SessionLimit, Store, StoreError};

#[async_trait]
impl Store for MemoryStore {
    async fn insert_ticket(
        &self,
        id: &str,
        ticket: &Ticket,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.maps.insert_ticket(id, ticket, ttl)
    }

    async fn take_ticket(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        Ok(self.maps.take_ticket(id))
    }

    async fn insert_target(&self, id: &str, uri: &str, ttl: Duration) -> Result<(), StoreError> {
        self.maps.targets.insert_value(id, uri, ttl)
    }

    async fn target(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.maps.targets.value(id))
    }

    async fn insert_value(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        self.maps.values.insert_value(key, value, ttl)
    }

    async fn value(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.maps.values.value(key))
    }

    async fn take_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.maps.values.take_value(key))
    }

    async fn insert_session(
        &self,
        session: &Session,
        idle: Duration,
        limit: Option<SessionLimit>,
    ) -> Result<Vec<Session>, StoreError> {
        self.maps.insert_session(session, idle, limit)
    }

    async fn touch_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.maps.touch_session(realm, id))
    }

    async fn session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.maps.session(realm, id))
    }

    async fn remove_session(&self, realm: &str, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.maps.remove_session(realm, id))
    }

    async fn sessions(&self, realm: &str) -> Result<Vec<Session>, StoreError> {
        Ok(self.maps.sessions(realm))
    }

    async fn user_sessions(&self, realm: &str, user_key: &str) -> Result<Vec<Session>, StoreError> {
        Ok(self.maps.user_sessions(realm, user_key))
    }

    async fn remove_user_sessions(
        &self,
        realm: &str,
        user_key: &str,
    ) -> Result<Vec<Session>, StoreError> {
        Ok(self.maps.remove_user_sessions(realm, user_key))
    }

    async fn count_sessions(&self, realm: &str) -> Result<usize, StoreError> {
        Ok(self.maps.count_sessions(realm))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn publish(&self, event: &SessionEnded) -> Result<(), StoreError> {
        // An error only says that nobody is listening.
        let _ = self.events.send(event.clone());
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<SessionEnded> {
        self.events.subscribe()
    }
}
