//! Background jobs: what can be run, and what a run looks like to a caller.

use std::{fmt, str::FromStr};

use async_trait::async_trait;
use serde::Serialize;

use crate::StoreError;

/// The jobs larder-worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobName {
    /// Event log → bronze Parquet, every source.
    LakeFlush,
    /// The original DAG's feature over the lake, into the results folder and gold.
    SimpleFeature,
    /// The latest `simple_feature` from gold into Redis.
    Materialize,
    /// Every feature view from bronze into `gold/{view}/` (change rows and tiles).
    FeatureHistory,
}

impl JobName {
    pub const ALL: [JobName; 4] = [
        JobName::LakeFlush,
        JobName::SimpleFeature,
        JobName::FeatureHistory,
        JobName::Materialize,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobName::LakeFlush => "lake-flush",
            JobName::SimpleFeature => "simple_feature",
            JobName::Materialize => "materialize",
            JobName::FeatureHistory => "feature-history",
        }
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown job `{0}`; valid jobs are lake-flush, simple_feature, feature-history, materialize"
)]
pub struct UnknownJob(pub String);

impl FromStr for JobName {
    type Err = UnknownJob;

    fn from_str(s: &str) -> Result<Self, UnknownJob> {
        JobName::ALL
            .into_iter()
            .find(|j| j.as_str() == s)
            .ok_or_else(|| UnknownJob(s.chars().take(64).collect()))
    }
}

/// One run of a job, as the API reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobRecord {
    pub id: String,
    pub name: String,
    /// `queued`, `running`, `retrying` (a transient failure; it will run again), `succeeded`,
    /// `failed` (permanently, with `error`).
    pub state: String,
    pub attempts: u32,
    pub enqueued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// What the run did: rows in, rows out, objects written.
    pub summary: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// The job queue as the API sees it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues a run of `name`; answers its record (state `queued`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the queue cannot be reached.
    async fn enqueue(&self, name: JobName) -> Result<JobRecord, StoreError>;

    /// The record of run `id`, or `None` (unknown, or older than the retention of records).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the queue cannot be reached.
    async fn status(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
}
