//! Redis adapters of larder's ports, on a deadpool-redis connection pool.
//!
//! Key decision: every accepted event is applied by one Lua script (`ingest.lua`) that checks the
//! dedupe marker and writes the raw hash, the event-log stream entry and the real-time feature
//! hashes, so an event is either fully stored or not at all. A request's events go to Redis as
//! chunks of script calls in one pipeline: one round trip per request, not per event.

mod batch_features;
mod encode;
mod error;
mod event_log;
mod event_store;
mod jobs;
mod keys;
mod online_store;
mod settings;
mod shared;

pub use batch_features::RedisBatchFeatures;
pub use event_log::RedisEventLog;
pub use event_store::RedisEventStore;
pub use jobs::{JobRequest, RedisJobQueue};
pub use keys::KeySpace;
pub use online_store::RedisOnlineStore;
pub use settings::{RedisSettings, connect};

pub use deadpool_redis::Pool;
