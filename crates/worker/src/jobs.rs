//! The jobs as apalis tasks: a worker consumes `{prefix}larder-jobs`, records each run's state,
//! retries transient failures with backoff (apalis reschedules a failed task `attempt` seconds
//! later) up to a cap, and marks permanent failures failed with the reason. A cron scheduler
//! queues `simple_feature` and `materialize` on the configured schedule; a lease per tick keeps
//! several workers from queueing the same tick twice.

use std::{path::PathBuf, str::FromStr, sync::Arc};

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use larder_domain::{FeatureViews, Source};
use larder_redis::{JobRequest, RedisBatchFeatures, RedisEventLog, RedisJobQueue};
use larder_usecases::{JobName, JobQueue, Leases, ObjectStore, TrainingSetRequest};
use polars::prelude::*;
use serde_json::{Value, json};

use crate::{
    EntityTable, LakeError, build_training_set, compact_bronze, flush_source,
    materialize_simple_feature, run_feature_history, run_simple_feature, simple_feature::GOLD_KEY,
};

/// What the jobs need.
pub struct JobDeps {
    pub store: Arc<dyn ObjectStore>,
    pub views: Arc<FeatureViews>,
    pub log: Arc<RedisEventLog>,
    pub features: Arc<RedisBatchFeatures>,
    pub queue: RedisJobQueue,
    pub cache_dir: PathBuf,
    pub results_dir: PathBuf,
    pub flush_batch: usize,
    /// A bronze partition is compacted once it holds this many objects.
    pub compact_min_objects: usize,
    /// Attempts before a transient failure becomes permanent.
    pub max_attempts: usize,
}

impl JobDeps {
    /// Runs job `name` once; `id` and `params` are the run's (a training set's request).
    ///
    /// # Errors
    /// What the job failed with; [`LakeError::is_transient`] tells whether a retry can help.
    pub async fn run(&self, name: JobName, id: &str, params: &Value) -> Result<Value, LakeError> {
        match name {
            JobName::TrainingSet => {
                let request: TrainingSetRequest = serde_json::from_value(params.clone())
                    .map_err(|e| LakeError::Invalid(format!("training-set request: {e}")))?;
                request
                    .check()
                    .map_err(|e| LakeError::Invalid(e.to_string()))?;
                let entities = self.store.get(&request.entities).await?.ok_or_else(|| {
                    LakeError::Invalid(format!("no object `{}` in the lake", request.entities))
                })?;
                let (set, bytes) = build_training_set(
                    self.store.as_ref(),
                    &self.cache_dir,
                    self.views.clone(),
                    EntityTable {
                        name: request.entities,
                        bytes: entities,
                    },
                    request.features,
                    request.compression,
                    Vec::new(),
                )
                .await?;
                let out = request
                    .out
                    .unwrap_or_else(|| format!("training-sets/{id}.parquet"));
                self.store.put(&out, bytes).await?;
                Ok(
                    json!({"rows_in": set.rows, "rows_out": set.rows, "feature_columns": set.feature_columns, "objects_written": 1, "output": out}),
                )
            }
            JobName::LakeFlush => {
                let (mut rows, mut objects) = (0, Vec::new());
                for source in Source::ALL {
                    let summary = flush_source(
                        self.log.as_ref(),
                        self.log.as_ref(),
                        self.store.as_ref(),
                        source,
                        self.flush_batch,
                        1_000,
                    )
                    .await?;
                    rows += summary.rows;
                    objects.extend(summary.objects);
                }
                Ok(
                    json!({"rows_in": rows, "rows_out": rows, "objects_written": objects.len(), "objects": objects}),
                )
            }
            JobName::SimpleFeature => {
                let (_, summary) =
                    run_simple_feature(self.store.as_ref(), &self.cache_dir, &self.results_dir)
                        .await?;
                Ok(
                    json!({"rows_in": summary.orders_in, "rows_out": summary.rows_out, "objects_written": summary.objects.len(), "objects": summary.objects}),
                )
            }
            JobName::CompactBronze => {
                // One run at a time: two would do the same work (safely, see `compaction`).
                let Some(token) = self.log.acquire("compact-bronze", 3_600_000).await? else {
                    return Ok(
                        json!({"rows_in": 0, "rows_out": 0, "objects_written": 0, "note": "another worker is compacting"}),
                    );
                };
                let outcome = compact_bronze(self.store.as_ref(), self.compact_min_objects).await;
                self.log.release("compact-bronze", &token).await?;
                let total = outcome?;
                Ok(json!({
                    "rows_in": total.rows,
                    "rows_out": total.rows,
                    "objects_written": total.objects_written.len(),
                    "objects_merged": total.objects_merged,
                    "partitions": total.partitions,
                    "leftovers_deleted": total.leftovers_deleted,
                }))
            }
            JobName::FeatureHistory => {
                run_feature_history(self.store.as_ref(), &self.cache_dir, self.views.clone()).await
            }
            JobName::Materialize => {
                let Some(bytes) = self.store.get(GOLD_KEY).await? else {
                    return Ok(
                        json!({"rows_in": 0, "rows_out": 0, "objects_written": 0, "note": "no simple_feature in gold yet"}),
                    );
                };
                let frame = tokio::task::spawn_blocking(move || {
                    ParquetReader::new(std::io::Cursor::new(bytes)).finish()
                })
                .await
                .map_err(LakeError::encode)?
                .map_err(LakeError::encode)?;
                let written = materialize_simple_feature(&frame, self.features.as_ref()).await?;
                Ok(json!({"rows_in": frame.height(), "rows_out": written, "objects_written": 0}))
            }
        }
    }
}

/// The apalis handler of one queued run.
async fn run_queued(
    request: JobRequest,
    deps: Data<Arc<JobDeps>>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let attempt = attempt.current().max(1);
    deps.queue.started(&request.id, attempt).await?;
    let outcome = match JobName::from_str(&request.name) {
        Ok(name) => deps.run(name, &request.id, &request.params).await,
        Err(unknown) => Err(LakeError::Encode(unknown.to_string())),
    };
    match outcome {
        Ok(summary) => {
            deps.queue.succeeded(&request.id, &summary).await?;
            tracing::info!(job = %request.name, id = %request.id, "job succeeded");
            Ok(())
        }
        Err(error) if error.is_transient() && attempt < deps.max_attempts => {
            tracing::warn!(job = %request.name, id = %request.id, attempt, %error, "job failed; will retry");
            deps.queue
                .failed(&request.id, &error.to_string(), true)
                .await?;
            Err(error.into())
        }
        Err(error) => {
            tracing::error!(job = %request.name, id = %request.id, attempt, %error, "job failed for good");
            deps.queue
                .failed(&request.id, &error.to_string(), false)
                .await?;
            Err(AbortError::new(error).into())
        }
    }
}

/// Consumes the job queue until the process stops.
///
/// # Errors
/// When the worker cannot run.
pub async fn run_job_worker(name: String, deps: Arc<JobDeps>) -> Result<(), BoxDynError> {
    let storage = deps.queue.storage().await?;
    WorkerBuilder::new(name)
        .backend(storage)
        .data(deps)
        .build(run_queued)
        .run()
        .await?;
    Ok(())
}

/// What one schedule queues on each tick, in order.
#[derive(Clone)]
struct Scheduled {
    deps: Arc<JobDeps>,
    jobs: Vec<JobName>,
}

async fn on_tick(tick: Tick, scheduled: Data<Scheduled>) -> Result<(), BoxDynError> {
    let names: Vec<&str> = scheduled.jobs.iter().map(|j| j.as_str()).collect();
    let lease = format!("cron:{}:{}", names.join("+"), tick.get_timestamp());
    if scheduled
        .deps
        .log
        .acquire(&lease, 3_600_000)
        .await?
        .is_some()
    {
        for job in &scheduled.jobs {
            scheduled.deps.queue.enqueue(*job, Value::Null).await?;
        }
    }
    Ok(())
}

/// Queues `jobs` in order on `schedule` (6 fields, seconds first) until the process stops;
/// `setting` names the schedule in errors.
///
/// # Errors
/// When the schedule does not parse or the scheduler cannot run.
pub async fn run_schedule(
    setting: &str,
    schedule: &str,
    jobs: Vec<JobName>,
    deps: Arc<JobDeps>,
) -> Result<(), BoxDynError> {
    let schedule = cron::Schedule::from_str(schedule).map_err(|e| format!("{setting}: {e}"))?;
    WorkerBuilder::new(format!("larder-cron-{setting}"))
        .backend(CronScheduler::new(schedule))
        .data(Scheduled { deps, jobs })
        .build(on_tick)
        .run()
        .await?;
    Ok(())
}
