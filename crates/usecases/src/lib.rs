//! larder's use cases and the ports they need. Services take ports as `Arc<dyn Trait>` and know
//! nothing of Redis, S3 or HTTP; adapters implement the ports, binaries wire them.
//!
//! Key decision: a use case turns each event into a complete description of its effects
//! ([`EventWrite`]: raw record, log entry, fingerprint, feature-view updates from the domain's
//! definitions) and hands the store the whole batch, so the adapter can apply each event
//! atomically in one round trip; reads come back as raw entity state that the domain evaluates.

mod clock;
mod entity_cache;
mod ingest;
mod jobs;
mod lookup;
mod ports;

pub use clock::{CLOCK_REFRESH, EventClock};
pub use ingest::{IngestError, IngestService, ItemResult};
pub use jobs::{
    BadObjectKey, JobName, JobQueue, JobRecord, SetCompression, TrainingSetRequest, UnknownJob,
};
pub use lookup::{LookupError, LookupService, MAX_PAGE, OnlineAnswer, OnlineColumn, OnlineRequest};
pub use ports::{
    Backlog, BatchFeatureStore, EntityRead, EventLog, EventStore, EventWrite, Leases, LoggedEvent,
    ObjectStore, OnlineStore, Readiness, StoreError, StoredKeyPage, WriteOutcome,
};

#[cfg(any(test, feature = "mocks"))]
pub use jobs::MockJobQueue;
#[cfg(any(test, feature = "mocks"))]
pub use ports::{
    MockBatchFeatureStore, MockEventLog, MockEventStore, MockLeases, MockObjectStore,
    MockOnlineStore, MockReadiness,
};

/// A small set of views for unit tests: `restaurant` (avg_ticket, orders_24h, customers_30d).
#[cfg(test)]
fn test_views() -> larder_domain::FeatureViews {
    let config = serde_json::json!({"view": [{
        "name": "restaurant", "key": "merchant_id",
        "sources": {"restaurant": "id", "order": "merchant_id"},
        "feature": [
            {"name": "avg_ticket", "agg": "last", "source": "restaurant", "field": "average_ticket"},
            {"name": "orders_24h", "agg": "count", "source": "order", "window": "24h"},
            {"name": "customers_30d", "agg": "count_distinct", "source": "order", "field": "customer_id", "window": "30d"}
        ]
    }]});
    larder_domain::FeatureViews::from_config(serde_json::from_value(config).expect("view config"))
        .expect("valid views")
}
