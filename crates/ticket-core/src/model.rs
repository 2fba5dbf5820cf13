//! What a ticket or a session is for.

use serde::{Deserialize, Serialize};

/// The user a ticket or session stands for, in the shape its dialect gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    /// A Qlik Sense user: directory, id, and the attributes posted with the ticket, in
    /// order and with repeats, as they go into `X-Qlik-Security`.
    Qps {
        /// `UserDirectory`, trimmed.
        user_directory: String,
        /// `UserId`, trimmed.
        user_id: String,
        /// `Attributes` as `(key, value)` pairs; keys repeat, values may be empty.
        attributes: Vec<(String, String)>,
    },
    /// A QlikView user: the id as the portal sent it (it may hold `DOMAIN\`), and groups.
    QlikView {
        /// `UserId`, as sent (trimmed).
        user_id: String,
        /// Group names or SIDs, trimmed.
        groups: Vec<String>,
        /// `GroupsIsNames`: `true` for names (DMS), `false` for Windows SIDs (NTFS).
        groups_is_names: bool,
    },
}

/// An issued, not yet redeemed ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Where the ticket may be redeemed: `qps/<prefix>` for a Qlik Sense virtual proxy,
    /// `qlikview` for the QlikView site. A ticket is bound to the realm that issued it.
    pub realm: String,
    /// Who it is for.
    pub identity: Identity,
    /// The URL the user first asked for, when the caller named a known target id.
    pub target_uri: Option<String>,
}

/// A live session, found again by `(realm, id)` from the browser's cookie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The realm the session belongs to (see [`Ticket::realm`]).
    pub realm: String,
    /// The session id: a GUID when the gateway makes it, any string when a caller of the
    /// session API chooses it.
    pub id: String,
    /// Who is logged in.
    pub identity: Identity,
    /// The session's anti-CSRF token: drawn from a CSPRNG when the session starts (see
    /// [`Session::new`]), kept with it, and the same on every node. Empty for a session
    /// stored by a version that had no tokens.
    #[serde(default)]
    pub csrf_token: String,
}

impl Identity {
    /// `(user directory, user id)`: a QlikView user has no directory (`""`).
    pub fn user(&self) -> (&str, &str) {
        match self {
            Identity::Qps {
                user_directory,
                user_id,
                ..
            } => (user_directory, user_id),
            Identity::QlikView { user_id, .. } => ("", user_id),
        }
    }

    /// The key sessions are grouped by per user: directory and id for Qlik Sense (compared
    /// case-insensitively, as Qlik does), the id for QlikView.
    pub fn user_key(&self) -> String {
        match self {
            Identity::Qps {
                user_directory,
                user_id,
                ..
            } => format!(
                "{}\\{}",
                user_directory.to_lowercase(),
                user_id.to_lowercase()
            ),
            Identity::QlikView { user_id, .. } => user_id.to_lowercase(),
        }
    }
}

impl Session {
    /// A session `(realm, id)` for `identity`, with a fresh CSRF token
    /// ([`id::csrf_token`](crate::id::csrf_token)).
    pub fn new(realm: impl Into<String>, id: impl Into<String>, identity: Identity) -> Session {
        Session {
            realm: realm.into(),
            id: id.into(),
            identity,
            csrf_token: crate::id::csrf_token(),
        }
    }

    /// See [`Identity::user_key`].
    pub fn user_key(&self) -> String {
        self.identity.user_key()
    }
}

/// The realm name of a Qlik Sense virtual proxy (`""` is the default one).
pub fn qps_realm(prefix: &str) -> String {
    format!("qps/{prefix}")
}

/// The realm name of the QlikView site.
pub const QLIKVIEW_REALM: &str = "qlikview";
