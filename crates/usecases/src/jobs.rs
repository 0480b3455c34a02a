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
    /// The small objects of each bronze date partition merged into one.
    CompactBronze,
    /// A point-in-time training set from gold (takes a [`TrainingSetRequest`]).
    TrainingSet,
}

impl JobName {
    pub const ALL: [JobName; 6] = [
        JobName::LakeFlush,
        JobName::SimpleFeature,
        JobName::FeatureHistory,
        JobName::CompactBronze,
        JobName::Materialize,
        JobName::TrainingSet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobName::LakeFlush => "lake-flush",
            JobName::SimpleFeature => "simple_feature",
            JobName::Materialize => "materialize",
            JobName::FeatureHistory => "feature-history",
            JobName::CompactBronze => "compact-bronze",
            JobName::TrainingSet => "training-set",
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
    "unknown job `{0}`; valid jobs are lake-flush, simple_feature, feature-history, compact-bronze, materialize, training-set"
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

/// What a `training-set` run builds: object keys inside the lake, so a request cannot make the
/// worker read or write outside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TrainingSetRequest {
    /// The entity table (`.parquet` or `.csv`).
    pub entities: String,
    /// `view:feature` names or whole views.
    pub features: Vec<String>,
    /// Where the Parquet output goes; `training-sets/{run id}.parquet` when absent.
    pub out: Option<String>,
    /// How the output is compressed (requests queued before the option was added: Snappy).
    #[serde(default)]
    pub compression: SetCompression,
}

/// How a training set's Parquet file is compressed. Snappy by default: a 1 M-row set took about
/// 0.15 s less to write than with zstd's fastest level, for a file two thirds larger, and every
/// Parquet reader reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetCompression {
    #[default]
    Snappy,
    /// zstd's fastest level: the smallest file, the slowest write.
    Zstd,
    /// LZ4 (`LZ4_RAW`): Spark reads it from 3.5 on.
    Lz4,
    None,
}

impl SetCompression {
    pub const NAMES: &str = "snappy, zstd, lz4 or none";
}

impl FromStr for SetCompression {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "snappy" => Ok(Self::Snappy),
            "zstd" => Ok(Self::Zstd),
            "lz4" => Ok(Self::Lz4),
            "none" => Ok(Self::None),
            other => Err(format!("`{other}` is not {}", Self::NAMES)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct BadObjectKey {
    pub field: &'static str,
    pub reason: &'static str,
}

impl TrainingSetRequest {
    /// Checks that the keys stay inside the lake and name what they should.
    ///
    /// # Errors
    /// The first bad key, naming its field.
    pub fn check(&self) -> Result<(), BadObjectKey> {
        check_key("entities", &self.entities)?;
        let lower = self.entities.to_ascii_lowercase();
        if !(lower.ends_with(".parquet") || lower.ends_with(".csv")) {
            return Err(BadObjectKey {
                field: "entities",
                reason: "must name a .parquet or .csv object",
            });
        }
        if let Some(out) = &self.out {
            check_key("out", out)?;
            if !out.ends_with(".parquet") {
                return Err(BadObjectKey {
                    field: "out",
                    reason: "must end in .parquet",
                });
            }
            if out.starts_with("bronze/") || out.starts_with("gold/") {
                return Err(BadObjectKey {
                    field: "out",
                    reason: "must not write into bronze/ or gold/",
                });
            }
        }
        Ok(())
    }
}

fn check_key(field: &'static str, key: &str) -> Result<(), BadObjectKey> {
    let reason = if key.is_empty() || key.len() > 512 {
        "must be 1 to 512 characters"
    } else if key.starts_with('/') || key.contains('\\') || key.contains("://") {
        "must be a key relative to the lake root"
    } else if key
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        "must not contain empty, `.` or `..` segments"
    } else if key.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(BadObjectKey { field, reason })
}

/// The job queue as the API sees it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues a run of `name` with its parameters (`null` for jobs without); answers its record
    /// (state `queued`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the queue cannot be reached.
    async fn enqueue(
        &self,
        name: JobName,
        params: serde_json::Value,
    ) -> Result<JobRecord, StoreError>;

    /// The record of run `id`, or `None` (unknown, or older than the retention of records).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the queue cannot be reached.
    async fn status(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_compression_is_named_in_lowercase_and_snappy_when_a_request_names_none() {
        for (name, compression) in [
            ("snappy", SetCompression::Snappy),
            ("zstd", SetCompression::Zstd),
            ("lz4", SetCompression::Lz4),
            ("none", SetCompression::None),
        ] {
            assert_eq!(name.parse::<SetCompression>(), Ok(compression));
            assert_eq!(serde_json::to_value(compression).unwrap(), name);
        }
        let error = "gzip".parse::<SetCompression>().unwrap_err();
        assert!(
            error.contains("gzip") && error.contains("snappy"),
            "{error}"
        );
        // A request queued before the option existed.
        let queued = serde_json::json!({"entities": "e.csv", "features": ["v"], "out": null});
        let request: TrainingSetRequest = serde_json::from_value(queued).unwrap();
        assert_eq!(request.compression, SetCompression::Snappy);
    }
}
