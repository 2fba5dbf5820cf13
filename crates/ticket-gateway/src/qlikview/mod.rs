//! The QlikView web server dialect (`/QvAJAXZfc/…`).
//!
//! - [`webticket`]: `POST GetWebTicket.aspx`: a trusted portal asks for a web ticket.
//! - [`authenticate`]: `GET Authenticate.aspx`: the browser redeems it into a session
//!   ([`session`]).
//! - [`accesspoint`]: `POST AccessPoint.aspx`: logout and other AccessPoint commands.
//! - [`pages`]: `opendoc.htm`, `/QlikView/…` and the rest, behind the session.
//! - [`xml`], [`trust`]: the reader, and who may ask (groups come from [`crate::groups`]).
//! - [`error`]: every failure, rendered in one place.

pub(crate) mod accesspoint;
pub(crate) mod authenticate;
pub(crate) mod error;
pub(crate) mod pages;
pub(crate) mod session;
pub(crate) mod trust;
pub(crate) mod webticket;
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub mod xml;

/// The realm QlikView tickets and sessions live in.
pub(crate) const REALM: &str = ticket_core::model::QLIKVIEW_REALM;
