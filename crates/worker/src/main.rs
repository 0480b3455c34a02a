//! `larder-worker`: flushes the event log into the lake continuously and computes and
//! materializes `simple_feature` on its schedule. Several workers may run: leases keep each
//! source's flush and each run of a batch job to one process at a time.

use std::{path::PathBuf, sync::Arc, time::Duration};

use larder_api::{Settings, init_telemetry};
use larder_domain::Source;
use larder_redis::{RedisBatchFeatures, RedisEventLog, RedisOnlineStore};
use larder_usecases::{Leases, Readiness};
use larder_worker::{flush_source, materialize_simple_feature, run_simple_feature};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    init_telemetry(&settings.log);
    let pool = larder_redis::connect(&settings.redis).map_err(anyhow::Error::msg)?;
    RedisOnlineStore::new(pool.clone(), &settings.redis)
        .ping()
        .await?;
    let log = Arc::new(RedisEventLog::new(pool.clone(), &settings.redis));
    let features = RedisBatchFeatures::new(pool, &settings.redis);
    let store = larder_s3::open_store(&settings.lake.root, &settings.s3).await?;
    tracing::info!(lake = %settings.lake.root, "larder-worker started");

    let every = Duration::from_secs(settings.worker.simple_feature_every_secs);
    let mut next_batch = tokio::time::Instant::now();
    loop {
        let mut flushed = 0;
        for source in Source::ALL {
            match flush_source(
                log.as_ref(),
                log.as_ref(),
                store.as_ref(),
                source,
                settings.worker.flush_batch,
                20,
            )
            .await
            {
                Ok(summary) => flushed += summary.rows,
                Err(error) => {
                    tracing::warn!(%source, %error, transient = error.is_transient(), "lake flush failed; will retry")
                }
            }
        }
        if tokio::time::Instant::now() >= next_batch {
            next_batch += every;
            if let Some(token) = log
                .acquire("simple_feature", every.as_millis() as u64)
                .await?
            {
                let cache = PathBuf::from(&settings.lake.cache_dir);
                match run_simple_feature(
                    store.as_ref(),
                    &cache,
                    &PathBuf::from(&settings.batch.results_dir),
                )
                .await
                {
                    Ok((frame, mut summary)) => {
                        summary.materialized = materialize_simple_feature(&frame, &features)
                            .await
                            .unwrap_or_else(|error| {
                                tracing::warn!(%error, "materialize failed");
                                0
                            });
                        tracing::info!(
                            orders = summary.orders_in,
                            cpfs = summary.rows_out,
                            materialized = summary.materialized,
                            "simple_feature done"
                        );
                    }
                    Err(error) => {
                        tracing::warn!(%error, "simple_feature failed; next run in {every:?}")
                    }
                }
                // The lease expires on its own after `every`, so another worker skips this tick.
                let _ = token;
            }
        }
        if flushed == 0 {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(settings.worker.flush_interval_ms)) => {}
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    }
    tracing::info!("larder-worker stopping");
    Ok(())
}
