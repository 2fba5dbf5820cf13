//! Where the Redis store lives and how long it may take to answer.

use std::time::Duration;

use crate::defaults::{
    REDIS_KEY_PREFIX as DEFAULT_KEY_PREFIX, REDIS_URL, STORE_TIMEOUT as DEFAULT_OP_TIMEOUT,
};

/// Where the Redis store lives and how long it may take to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// A `redis://` (or `unix://`) URL, with credentials and database number if needed.
    pub url: String,
    /// Prepended to every key, so several deployments can share one server.
    pub key_prefix: String,
    /// The longest any one operation may take before it fails with
    /// [`StoreError::Backend`](crate::store::StoreError::Backend).
    pub op_timeout: Duration,
}

impl RedisConfig {
    /// A configuration for `url` with the default prefix and timeout.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            op_timeout: DEFAULT_OP_TIMEOUT,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig::new(REDIS_URL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_bounds_operations_at_two_seconds() {
        let cfg = RedisConfig::default();
        assert_eq!(cfg.op_timeout, Duration::from_secs(2));
        assert_eq!(cfg.key_prefix, DEFAULT_KEY_PREFIX);
    }
}
