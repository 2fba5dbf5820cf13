//! The outcome of signing a request in, whatever the method: a session it may use, or why
//! it gets none. A leaf, so that every method can return it.

use ticket_core::Session;

use super::error::PageError;

/// Why a browser gets no session.
pub(crate) enum Refusal {
    /// No or a bad ticket, no or a dead session: log in.
    Login,
    /// A method that never redirects refused the request (`401`), for this reason.
    Unauthorized(&'static str),
    /// Anything else, as a page.
    Page(PageError),
}

impl From<ticket_core::StoreError> for Refusal {
    fn from(e: ticket_core::StoreError) -> Self {
        Refusal::Page(PageError::Unavailable(e))
    }
}

/// A session the request may use.
pub(crate) struct SignedIn {
    pub(crate) session: Session,
    /// Whether the request came without the session's cookie: the session started with it,
    /// or a bearer token found it. The answer then sets the cookie.
    pub(crate) new: bool,
}
