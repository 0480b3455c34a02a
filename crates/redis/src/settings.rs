use std::time::Duration;

use deadpool_redis::{Manager, Pool, Runtime, Timeouts, redis::AsyncConnectionConfig};
use serde::Deserialize;

/// The `[redis]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port/db`; the database number is part of the URL.
    pub url: String,
    /// Connections in the pool (each is multiplexed, so a few go a long way).
    pub pool_size: usize,
    /// Prepended to every key larder writes; empty in production, unique per test.
    #[serde(default)]
    pub key_prefix: String,
    /// How long one Redis operation (including waiting for a connection) may take.
    pub timeout_ms: u64,
    /// Seconds a `raw_{source}:{id}` hash is kept after its last write; 0 keeps it forever.
    pub raw_ttl_secs: u64,
    /// Seconds an event is remembered for deduplication; 0 remembers it forever. A resend after
    /// this window is accepted again (and logged again).
    pub dedupe_ttl_secs: u64,
    /// Events per Lua script call; bounds how long one call blocks Redis.
    pub events_per_script: usize,
    /// Most unflushed entries in one source's event log before ingestion answers 503 (the lake
    /// writer is down or behind); 0 for no bound.
    pub max_stream_backlog: u64,
}

impl RedisSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Whether new raw hashes expire through the ingest calls' queue instead of a TTL of their
    /// own: with a raw TTL and markers kept for good (ingest.lua says why).
    pub fn raw_hashes_queued(&self) -> bool {
        self.raw_ttl_secs > 0 && self.dedupe_ttl_secs == 0
    }

    /// Checks what the types cannot, naming the key at fault.
    ///
    /// # Errors
    /// A message naming the setting and what it must be.
    pub fn check(&self) -> Result<(), String> {
        let rest = self
            .url
            .strip_prefix("redis://")
            .ok_or("redis.url must start with redis://")?;
        let db = rest.rsplit_once('/').map(|(_, db)| db);
        if db.is_none_or(|db| db.parse::<u8>().is_err()) {
            return Err(
                "redis.url must end with the database number, e.g. redis://127.0.0.1:6379/0".into(),
            );
        }
        if self.pool_size == 0 {
            return Err("redis.pool_size must be at least 1".into());
        }
        if self.timeout_ms == 0 {
            return Err("redis.timeout_ms must be at least 1".into());
        }
        if self.events_per_script == 0 {
            return Err("redis.events_per_script must be at least 1".into());
        }
        Ok(())
    }
}

/// Builds the pool. Connections are made lazily, so this succeeds with Redis down; the
/// readiness probe tells whether Redis answers.
///
/// # Errors
/// When the URL cannot be parsed.
pub fn connect(settings: &RedisSettings) -> Result<Pool, String> {
    settings.check()?;
    let timeout = Some(settings.timeout());
    // redis-rs gives up on a reply after 500 ms by default; a large batch queued behind others
    // can take longer, and giving up on a reply that Redis will still send is what turns an
    // accepted event into a retried one. One setting bounds every wait.
    let connection = AsyncConnectionConfig::new()
        .set_response_timeout(timeout)
        .set_connection_timeout(timeout);
    let manager = Manager::new_with_config(settings.url.as_str(), connection)
        .map_err(|e| format!("redis.url: {e}"))?;
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .timeouts(Timeouts {
            wait: timeout,
            create: timeout,
            recycle: timeout,
        })
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| format!("redis: {e}"))
}
