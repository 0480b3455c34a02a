//! The ports: what the use cases need from the outside, split by capability.

use async_trait::async_trait;
use larder_domain::{EntityKey, FeatureName, Source};

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
    /// Real-time feature hashes to set from this event.
    pub features: Vec<FeatureWrite>,
}

/// Fields to set on one real-time feature hash `rtf_{feature}:{key}`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureWrite {
    pub feature: &'static str,
    pub key: String,
    pub fields: Vec<(&'static str, String)>,
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

/// One page of `(feature, key)` pairs present in the online store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredFeaturePage {
    pub entries: Vec<(String, String)>,
    /// Where the next page starts; `None` at the end.
    pub next_cursor: Option<u64>,
}

/// The read side of real-time features.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OnlineStore: Send + Sync {
    /// The stored fields of `rtf_{feature}:{key}`, or `None` when it does not exist.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn read(
        &self,
        feature: &FeatureName,
        key: &EntityKey,
    ) -> Result<Option<Vec<(String, String)>>, StoreError>;

    /// One page of stored feature hashes, walking the store without blocking it (no `KEYS`):
    /// at most about `limit` entries, starting at `cursor` (0 for the first page).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn scan(&self, cursor: u64, limit: usize) -> Result<StoredFeaturePage, StoreError>;
}

/// Whether a backing service answers, for the readiness probe.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Readiness: Send + Sync {
    /// # Errors
    /// [`StoreError::Unavailable`] when the service does not answer.
    async fn ping(&self) -> Result<(), StoreError>;
}
