//! `larder training-set`: builds a point-in-time training set in this process, from the lake
//! and feature views the configuration names (the same settings as larder-worker).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use anyhow::Context;
use larder_api::Settings;
use larder_s3::{S3Location, S3Settings, open_object, put_object, s3_client};
use larder_usecases::SetCompression;
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

/// Where a set goes as it is encoded: memory, for an upload to S3, or a local file.
enum Sink {
    Memory(Vec<u8>),
    File(std::io::BufWriter<std::fs::File>),
}

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Memory(memory) => memory.write(bytes),
            Self::File(file) => file.write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::File(file) => file.flush(),
        }
    }
}

/// A local set's file once its build has ended: `partial` renamed to `out` when the build
/// succeeded, removed when it failed.
fn settle<T>(partial: &Path, out: &Path, built: anyhow::Result<T>) -> anyhow::Result<T> {
    match built {
        Ok(value) => {
            std::fs::rename(partial, out).with_context(|| format!("writing {}", out.display()))?;
            Ok(value)
        }
        Err(e) => {
            let _ = std::fs::remove_file(partial);
            Err(e)
        }
    }
}

/// Reads `entities` (a local path or `s3://` URI), adds `features` as of each row's
/// `event_timestamp` from the configured lake's gold tables, writes Parquet compressed with
/// `compression` to `out`.
///
/// # Errors
/// Bad settings, an unreadable input, unknown features, a missing column, unreadable gold.
pub async fn run(
    entities: &str,
    features: Vec<String>,
    out: &str,
    compression: SetCompression,
) -> anyhow::Result<Summary> {
    let settings = Settings::load()?;
    let started = Instant::now();
    let views = Arc::new(settings.features.load_views()?);
    let lake = larder_s3::open_store(&settings.lake.root, &settings.s3).await?;
    let bytes = read(entities, &settings.s3).await?;
    let local = !out.starts_with("s3://");
    // A local set is written as it is encoded, under a name of its own until it is whole: a
    // failed run leaves no file that looks finished.
    let partial = PathBuf::from(format!("{out}.partial"));
    let sink = if local {
        if let Some(dir) = partial.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::File::create(&partial)
            .with_context(|| format!("writing {}", partial.display()))?;
        Sink::File(std::io::BufWriter::new(file))
    } else {
        Sink::Memory(Vec::new())
    };
    let built = larder_worker::build_training_set(
        lake.as_ref(),
        &PathBuf::from(&settings.lake.cache_dir),
        views,
        larder_worker::EntityTable {
            name: entities.to_owned(),
            bytes,
        },
        features,
        compression,
        sink,
    )
    .await
    .map_err(anyhow::Error::from);
    let set = if local {
        settle(&partial, Path::new(out), built)?.0
    } else {
        let (set, sink) = built?;
        let Sink::Memory(bytes) = sink else {
            unreachable!("a set for S3 is built in memory");
        };
        let location = S3Location::parse(out)?;
        put_object(&s3_client(&settings.s3).await, &location, bytes).await?;
        set
    };
    Ok(Summary {
        rows: set.rows,
        feature_columns: set.feature_columns,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_set_takes_its_name_and_a_failed_one_leaves_no_file() {
        let dir = std::env::temp_dir().join(format!("larder-settle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (partial, out) = (dir.join("set.parquet.partial"), dir.join("set.parquet"));

        std::fs::write(&partial, b"rows").unwrap();
        assert_eq!(settle(&partial, &out, Ok(7)).unwrap(), 7);
        assert_eq!(std::fs::read(&out).unwrap(), b"rows");
        assert!(!partial.exists());

        std::fs::remove_file(&out).unwrap();
        std::fs::write(&partial, b"half").unwrap();
        let failed = settle::<()>(&partial, &out, Err(anyhow::anyhow!("bad column")));
        assert_eq!(failed.unwrap_err().to_string(), "bad column");
        assert!(!partial.exists() && !out.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
