//! larder's use cases and the ports they need. Services take ports as `Arc<dyn Trait>` and know
//! nothing of Redis, S3 or HTTP; adapters implement the ports, binaries wire them.
//!
//! Key decision: a use case turns each event into a complete description of its effects
//! ([`EventWrite`]: raw record, log entry, fingerprint, feature updates) and hands the store the
//! whole batch, so the adapter can apply each event atomically in one round trip.

mod ingest;
mod lookup;
mod ports;
mod realtime;

pub use ingest::{IngestError, IngestService, ItemResult};
pub use lookup::{FeaturePage, FeatureValue, LookupError, LookupService};
pub use ports::{
    EventStore, EventWrite, FeatureWrite, OnlineStore, Readiness, StoreError, StoredFeaturePage,
    WriteOutcome,
};
pub use realtime::RealtimeFeatures;

#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockEventStore, MockOnlineStore, MockReadiness};
