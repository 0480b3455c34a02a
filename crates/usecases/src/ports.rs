//! The ports: what the use cases need from the outside, split by capability.

use async_trait::async_trait;
use larder_domain::{DistinctQuery, EntityKey, EntityState, EntityUpdate, FeatureName, Source};

/// A failure of a store, already translated from the technology's own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time; retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered, but not as expected (a bug or a misconfigured store).
    #[error("store failed: {0}")]
    Failed(String),
}

/// Everything the store must write for one accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventWrite {
    /// The natural id (`order_id`, `status_id`, restaurant `id`, `customer_id`).
    pub id: String,
    /// Fingerprint of the normalised content: equal means a resend, different an update.
    pub fingerprint: u64,
    /// The normalised record as JSON, appended to the event log.
    pub payload: String,
    /// The record as the fields of the `raw_{source}:{id}` hash.
    pub raw_fields: Vec<(String, String)>,
    /// Event time, ms since the epoch; advances the store's clock.
    pub event_time_ms: i64,
    /// Feature-view state changes, entity by entity.
    pub updates: Vec<EntityUpdate>,
}

/// What the store did with one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// New content for this id: the raw record, log entry and features were written.
    Accepted,
    /// The same content was already stored for this id: nothing was written.
    Duplicate,
}

/// The write side: raw records, the durable event log and real-time features.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Applies `writes` (all of `source`) in order, each atomically: raw record, log entry,
    /// dedupe marker and feature updates are either all written or none. Returns one outcome
    /// per write, in order; a write whose id and fingerprint are already stored is a duplicate,
    /// also within the same batch.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached; some writes of the batch may
    /// then be applied and others not, and sending the batch again is safe.
    async fn append(
        &self,
        source: Source,
        writes: &[EventWrite],
    ) -> Result<Vec<WriteOutcome>, StoreError>;
}

/// One entity to read: its view, key, and the distinct counts its features need.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRead {
    pub view: String,
    pub key: EntityKey,
    pub distinct: Vec<DistinctQuery>,
}

/// One page of the keys of a view's entities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredKeyPage {
    pub keys: Vec<String>,
    /// Where the next page starts; `None` at the end.
    pub next_cursor: Option<u64>,
}

/// The read side of feature views.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OnlineStore: Send + Sync {
    /// The newest event time the store has seen (ms), `None` before the first event.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn clock(&self) -> Result<Option<i64>, StoreError>;

    /// The state of each entity, in order, in one round trip; an unknown entity has empty fields.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn read(&self, reads: &[EntityRead]) -> Result<Vec<EntityState>, StoreError>;

    /// How many entities each view holds, in order.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn entity_counts(&self, views: &[String]) -> Result<Vec<u64>, StoreError>;

    /// One page of the keys of `view`'s entities, walking the store without blocking it (no
    /// `KEYS`): about `limit` keys examined, starting at `cursor` (0 for the first page).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn scan(
        &self,
        view: &FeatureName,
        cursor: u64,
        limit: usize,
    ) -> Result<StoredKeyPage, StoreError>;
}

/// Whether a backing service answers, for the readiness probe.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Readiness: Send + Sync {
    /// # Errors
    /// [`StoreError::Unavailable`] when the service does not answer.
    async fn ping(&self) -> Result<(), StoreError>;
}
