//! `larder-worker`: flushes the event log into the lake continuously, runs queued jobs (apalis on
//! Redis: `lake-flush`, `simple_feature`, `materialize`, `feature-history`, `compact-bronze`,
//! `training-set`) and queues `simple_feature` and `materialize`, `feature-history` and
//! `compact-bronze` on their cron schedules. Any number of workers may run: leases keep each source's
//! flush and each cron tick to one process.

use std::{path::PathBuf, sync::Arc, time::Duration};

use larder_api::{Settings, init_telemetry};
use larder_domain::Source;
use larder_redis::{RedisBatchFeatures, RedisEventLog, RedisJobQueue, RedisOnlineStore};
use larder_usecases::{EventLog, JobName, Readiness};
use larder_worker::{JobDeps, batches_due, flush_source, run_job_worker, run_schedule};

// mimalloc: faster than glibc's malloc for Polars' many allocations, and it returns freed
// memory to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    init_telemetry(&settings.log);
    let pool = larder_redis::connect(&settings.redis).map_err(anyhow::Error::msg)?;
    RedisOnlineStore::new(pool.clone(), &settings.redis)
        .ping()
        .await?;
    let deps = Arc::new(JobDeps {
        views: Arc::new(settings.features.load_views()?),
        store: larder_s3::open_store(&settings.lake.root, &settings.s3).await?,
        log: Arc::new(RedisEventLog::new(pool.clone(), &settings.redis)),
        features: Arc::new(RedisBatchFeatures::new(pool.clone(), &settings.redis)),
        queue: RedisJobQueue::new(pool, &settings.redis)?,
        cache_dir: PathBuf::from(&settings.lake.cache_dir),
        results_dir: PathBuf::from(&settings.batch.results_dir),
        flush_batch: settings.worker.flush_batch,
        compact_min_objects: settings.worker.compact_min_objects,
        max_attempts: settings.worker.max_attempts,
    });
    tracing::info!(lake = %settings.lake.root, "larder-worker started");
    // Worker names must be unique per process: apalis re-queues the tasks of a name on register.
    let name = format!("larder-worker-{}", std::process::id());
    tokio::select! {
        () = consume_jobs(name, deps.clone()) => {}
        result = run_schedule(
            "worker.simple_feature_cron",
            &settings.worker.simple_feature_cron,
            vec![JobName::SimpleFeature, JobName::Materialize],
            deps.clone(),
        ) => result.map_err(|e| anyhow::anyhow!(e))?,
        result = optional_schedule("worker.feature_history_cron", &settings.worker.feature_history_cron, JobName::FeatureHistory, deps.clone()) => result?,
        result = optional_schedule("worker.compact_cron", &settings.worker.compact_cron, JobName::CompactBronze, deps.clone()) => result?,
        () = flush_continuously(&deps, Duration::from_millis(settings.worker.flush_interval_ms), settings.worker.flush_max_wait_ms) => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("larder-worker stopping"),
    }
    Ok(())
}

/// Runs queued jobs until the process stops. apalis ends a worker whose poll of Redis fails
/// (a timeout while Redis is saturated, a restart); the worker then starts again under the same
/// name, which re-queues what it was running, and the lake flush beside it never stops.
async fn consume_jobs(name: String, deps: Arc<JobDeps>) {
    loop {
        match run_job_worker(name.clone(), deps.clone()).await {
            Ok(()) => tracing::warn!("job worker stopped; starting it again"),
            Err(error) => tracing::warn!(%error, "job worker failed; starting it again"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A schedule that may be off (empty): queues `job` on it, never returns when it is off.
async fn optional_schedule(
    setting: &str,
    schedule: &str,
    job: JobName,
    deps: Arc<JobDeps>,
) -> anyhow::Result<()> {
    if schedule.trim().is_empty() {
        return std::future::pending().await;
    }
    run_schedule(setting, schedule, vec![job], deps)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

/// lake-flush without being asked: every source with batches due ([`batches_due`]), then a pause
/// when none was.
async fn flush_continuously(deps: &JobDeps, pause: Duration, max_wait_ms: u64) {
    loop {
        let mut flushed = 0;
        for source in Source::ALL {
            let due = match deps.log.backlog(source).await {
                Ok(backlog) => batches_due(backlog, deps.flush_batch, max_wait_ms),
                Err(error) => {
                    tracing::warn!(%source, %error, "cannot read the log's backlog; will retry");
                    continue;
                }
            };
            if due == 0 {
                continue;
            }
            match flush_source(
                deps.log.as_ref(),
                deps.log.as_ref(),
                deps.store.as_ref(),
                source,
                deps.flush_batch,
                due.min(20),
            )
            .await
            {
                Ok(summary) => flushed += summary.rows,
                Err(error) => {
                    tracing::warn!(%source, %error, transient = error.is_transient(), "lake flush failed; will retry")
                }
            }
        }
        if flushed == 0 {
            tokio::time::sleep(pause).await;
        }
    }
}
