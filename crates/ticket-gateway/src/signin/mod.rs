//! What signing in by other means than a ticket rests on, shared by the dialects: JWT
//! verification ([`jwt`]), the OpenID Connect relying party ([`oidc`]), the claims both
//! read users from ([`claims`]) and users with passwords ([`passwords`]).

pub(crate) mod claims;
pub(crate) mod jwt;
pub(crate) mod oidc;
pub(crate) mod passwords;
