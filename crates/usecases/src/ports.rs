//! The ports: what the use cases need from the outside, split by capability.

use async_trait::async_trait;
use std::sync::Arc;

use larder_domain::{EntityKey, EntityState, EntityUpdate, FeatureName, ReadPlan, Source};

/// A failure of a store, already translated from the technology's own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time; retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered, but not as expected (a bug or a misconfigured store).
    #[error("store failed: {0}")]
    Failed(String),
    /// The event log holds more unflushed entries than allowed (the lake writer is down or
    /// behind); nothing of the refused events was written. Retry later.
    #[error("event log backlog over {0} entries")]
    Backlogged(u64),
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

/// One entity to read: its view, key, and what its features need besides its hash (shared by
/// every entity of the view in a request).
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRead {
    pub view: String,
    pub key: EntityKey,
    pub plan: Arc<ReadPlan>,
    /// Read the entity's version ([`EntityState::version`]) alone, neither its hash nor `plan`:
    /// the reader holds everything else for some version and only checks it.
    pub version_only: bool,
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

    /// The state of each entity, in order, in one round trip; an unknown entity has empty fields
    /// and no version. Each entity's version is read before its hash, tiles and distinct sets
    /// (lookups cache those by that version, which must not be newer than them). A
    /// `version_only` read answers the version alone: no fields, tiles or distinct counts.
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

/// Where the lake lives: a directory or an S3 bucket prefix. Keys are `/`-separated relative
/// paths (`bronze/order/date=2019-01-01/….parquet`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Writes `bytes` at `key`, replacing what is there. When this returns `Ok` the object is
    /// durable and whole: readers never see a partial object.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached or the write fails.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError>;

    /// The object at `key`, or `None`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every key starting with `prefix`, sorted.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Removes `key`; removing an absent key is not an error.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// A local directory holding the same keys, for engines that scan files (a local store is
    /// its own directory; a remote one copies what is under `prefix` into `cache`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when objects cannot be read or copied.
    async fn local_copy(
        &self,
        prefix: &str,
        cache: &std::path::Path,
    ) -> Result<std::path::PathBuf, StoreError>;
}

/// One entry of the durable event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// The log's id for the entry (`1548000000000-0`): increasing, and when it was appended.
    pub id: String,
    /// The normalised record as JSON.
    pub payload: String,
}

/// What of a source waits in the event log to be flushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Entries not yet flushed, including a claimed batch not yet acknowledged.
    pub entries: u64,
    /// How long ago, by the log's clock, the oldest of them was appended; none when empty.
    pub oldest_age_ms: Option<u64>,
}

/// The durable event log, read by the lake writer.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventLog: Send + Sync {
    /// The next batch of `source` to flush, oldest first: the batch a previous run took but did
    /// not acknowledge (exactly as it was, even if `max` has shrunk since), else at most `max`
    /// new entries. The caller must hold the `lake-flush:{source}` lease, so batches never
    /// interleave.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the log cannot be reached.
    async fn claim(&self, source: Source, max: usize) -> Result<Vec<LoggedEvent>, StoreError>;

    /// Marks `ids` (a claimed batch) flushed: acknowledged and removed from the log.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the log cannot be reached.
    async fn acknowledge(&self, source: Source, ids: &[String]) -> Result<(), StoreError>;

    /// How much of `source` waits to be flushed.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the log cannot be reached.
    async fn backlog(&self, source: Source) -> Result<Backlog, StoreError>;
}

/// Exclusive, expiring leases, so that several worker processes never run the same work at once.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes `name` for `ttl_ms` unless someone holds it; returns the token that releases it.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn acquire(&self, name: &str, ttl_ms: u64) -> Result<Option<String>, StoreError>;

    /// Gives `name` back if `token` still holds it.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn release(&self, name: &str, token: &str) -> Result<(), StoreError>;
}

/// Batch-computed feature values served online beside the real-time ones.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BatchFeatureStore: Send + Sync {
    /// Sets `rtf_{feature}:{key}` to `fields` for every row, in pipelined batches.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be reached.
    async fn write(
        &self,
        feature: &str,
        rows: Vec<(String, Vec<(String, String)>)>,
    ) -> Result<u64, StoreError>;
}

/// `answers` when a store answered once per request, else a failure naming both counts (a
/// store that loses track of its answers must not have them matched to the wrong requests).
pub(crate) fn one_each<T>(answers: Vec<T>, asked: usize, what: &str) -> Result<Vec<T>, StoreError> {
    if answers.len() != asked {
        return Err(StoreError::Failed(format!(
            "store answered {} times for {asked} {what}",
            answers.len()
        )));
    }
    Ok(answers)
}
