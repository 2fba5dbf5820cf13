//! What every handler shares: the settings, the ticket core (the one door to tickets and
//! sessions), the proxy (back-end pools and open WebSockets) and the QlikView group
//! directory. Handlers take `&State`; nothing here knows a handler.

use std::sync::{Arc, RwLock};

use ticket_core::{Core, Lifetimes, Store};

use crate::config::Settings;
use crate::groups::GroupDirectory;
use crate::proxy::Proxy;

/// The shared state of a running gateway.
#[derive(Debug)]
pub(crate) struct State {
    /// The settings it runs with.
    pub settings: Settings,
    /// Tickets, target ids and sessions.
    pub core: Core,
    /// The back ends and the WebSockets bridged to them.
    pub proxy: Proxy,
    /// The QlikView group directory; replaced whole on reload.
    groups: RwLock<Arc<GroupDirectory>>,
}

impl State {
    /// The state of a gateway over `store`, with the group directory already read.
    pub(crate) fn new(settings: Settings, store: Arc<dyn Store>, groups: GroupDirectory) -> State {
        let lifetimes = Lifetimes {
            ticket: settings.ticket_ttl,
            target: settings.target_id_ttl,
        };
        State {
            core: Core::new(store, lifetimes),
            proxy: Proxy::new(&settings),
            groups: RwLock::new(Arc::new(groups)),
            settings,
        }
    }

    /// Ends a session by any route: removes it from the store and closes its WebSockets.
    pub(crate) async fn end_session(
        &self,
        realm: &str,
        id: &str,
    ) -> Result<Option<ticket_core::Session>, ticket_core::StoreError> {
        let ended = self.core.end_session(realm, id).await?;
        self.proxy.sockets.close(realm, id);
        Ok(ended)
    }

    /// The current QlikView group directory.
    pub(crate) fn groups(&self) -> Arc<GroupDirectory> {
        match self.groups.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads `[qlikview] group_directory` again (on SIGHUP). A file that fails to parse is
    /// reported and the last good directory stays in force.
    pub(crate) fn reload_groups(&self) -> Result<(), String> {
        let Some(path) = &self.settings.qlikview.group_directory else {
            return Ok(());
        };
        let fresh = GroupDirectory::load(path)?;
        let mut slot = match self.groups.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(fresh);
        Ok(())
    }
}
