//! larder's background work: flushing the event log into the Parquet lake (bronze), computing
//! batch features with Polars (the original `simple_feature`), and materializing them into
//! Redis to be served beside the real-time features.
//!
//! Key decision: every step is idempotent by construction — a lake object is named after the
//! stream-id range it holds and the log is acknowledged only after the object is durable, batch
//! outputs are replaced whole — so a crash or retry anywhere re-does work and never duplicates
//! or loses a row. Polars runs on blocking threads, never on an async executor.

mod bronze;
mod compaction;
mod cores;
mod history;
mod jobs;
mod lake_flush;
mod names;
mod parquet_file;
pub mod simple_feature;
mod training_set;

pub use bronze::{bronze_key, lake_scan_args, read_bronze, to_parquet};
pub use compaction::{CompactionSummary, compact_bronze};
pub use history::{GOLD_TABLES, compute_feature_history, gold_key, run_feature_history};
pub use jobs::{JobDeps, run_job_worker, run_schedule};
pub use lake_flush::{FlushSummary, LakeError, batches_due, flush_source};
pub use simple_feature::{
    SimpleFeatureSummary, compute_simple_feature, materialize_simple_feature, run_simple_feature,
};
pub use training_set::{
    EVENT_TIMESTAMP, EntityTable, TrainingSet, TrainingSetError, build_training_set,
    compute_training_set, read_entity_table,
};
