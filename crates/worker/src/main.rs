//! `larder-worker`: will run the lake-flush and batch-feature jobs (the lake issue). For now it
//! loads the same settings as the API, checks that Redis answers, and waits for a stop signal, so
//! deployments can already run it beside the API.

use larder_api::{Settings, init_telemetry};
use larder_redis::RedisOnlineStore;
use larder_usecases::Readiness;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    init_telemetry(&settings.log);
    let pool = larder_redis::connect(&settings.redis).map_err(anyhow::Error::msg)?;
    RedisOnlineStore::new(pool, &settings.redis).ping().await?;
    tracing::info!("larder-worker connected to Redis; no jobs are defined yet, idling");
    tokio::signal::ctrl_c().await?;
    tracing::info!("larder-worker stopping");
    Ok(())
}
