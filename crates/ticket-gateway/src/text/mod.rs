//! Text at the byte level, shared by every layer: one scanner ([`scan`]) and the escapers
//! built on it ([`escape`]: JSON strings, HTML).

pub(crate) mod escape;
pub(crate) mod scan;
