//! What signing in by other means than a ticket rests on, read from the files the settings
//! name and shared by the dialects: JWT verification ([`jwt`]) and users with passwords
//! ([`passwords`]).

pub(crate) mod jwt;
pub(crate) mod passwords;
