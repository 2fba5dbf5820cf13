//! Anonymous access (the QMC's "Allow anonymous" and "Always anonymous"): a visitor
//! without a session gets one of its own, as user `NONE\anonymous<GUID>`, with no
//! attributes. Each is a user of its own, so the per-user session limit never applies.

use ticket_core::{Identity, Session, StoreError};

use super::session;
use crate::config::VirtualProxy;
use crate::conn::Conn;
use crate::state::State;

/// The user directory of anonymous users.
pub(crate) const DIRECTORY: &str = "NONE";
/// What every anonymous user id starts with.
pub(crate) const USER_PREFIX: &str = "anonymous";

/// Whether `session` is an anonymous one.
pub(crate) fn is(session: &Session) -> bool {
    let (directory, user) = session.identity.user();
    directory == DIRECTORY && user.starts_with(USER_PREFIX)
}

/// Starts an anonymous session.
pub(crate) async fn start(
    state: &State,
    vp: &VirtualProxy,
    conn: &Conn,
) -> Result<Session, StoreError> {
    let identity = Identity::Qps {
        user_directory: DIRECTORY.to_owned(),
        user_id: format!("{USER_PREFIX}{}", ticket_core::id::guid()),
        attributes: Vec::new(),
    };
    let (session, evicted) = state
        .core
        .start_session(&vp.realm, identity, vp.session_inactivity_timeout, None)
        .await?;
    session::started(vp, &session, evicted, conn);
    Ok(session)
}
