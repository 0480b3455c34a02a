//! `larder training-set`: builds a point-in-time training set in this process, from the lake
//! and feature views the configuration names (the same settings as larder-worker).

use std::{path::PathBuf, sync::Arc, time::Instant};

use anyhow::Context;
use larder_api::Settings;
use larder_s3::{S3Location, S3Settings, open_object, put_object, s3_client};
use tokio::io::AsyncReadExt;

/// What a run built.
pub struct Summary {
    pub rows: usize,
    pub feature_columns: usize,
    pub seconds: f64,
}

async fn read(path: &str, s3: &S3Settings) -> anyhow::Result<Vec<u8>> {
    if path.starts_with("s3://") {
        let location = S3Location::parse(path)?;
        let mut object = open_object(&s3_client(s3).await, &location).await?;
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("reading {path}"))
}

async fn write(path: &str, bytes: Vec<u8>, s3: &S3Settings) -> anyhow::Result<()> {
    if path.starts_with("s3://") {
        let location = S3Location::parse(path)?;
        return Ok(put_object(&s3_client(s3).await, &location, bytes).await?);
    }
    let path = PathBuf::from(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Reads `entities` (a local path or `s3://` URI), adds `features` as of each row's
/// `event_timestamp` from the configured lake's gold tables, writes Parquet to `out`.
///
/// # Errors
/// Bad settings, an unreadable input, unknown features, a missing column, unreadable gold.
pub async fn run(entities: &str, features: Vec<String>, out: &str) -> anyhow::Result<Summary> {
    let settings = Settings::load()?;
    let started = Instant::now();
    let views = Arc::new(settings.features.load_views()?);
    let lake = larder_s3::open_store(&settings.lake.root, &settings.s3).await?;
    let bytes = read(entities, &settings.s3).await?;
    let set = larder_worker::build_training_set(
        lake.as_ref(),
        &PathBuf::from(&settings.lake.cache_dir),
        views,
        entities.to_owned(),
        bytes,
        features,
    )
    .await?;
    let (rows, feature_columns) = (set.rows, set.feature_columns);
    write(out, set.bytes, &settings.s3).await?;
    Ok(Summary {
        rows,
        feature_columns,
        seconds: started.elapsed().as_secs_f64(),
    })
}
