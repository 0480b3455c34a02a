//! Layered settings: the defaults compiled into the binary < `config/default.toml` <
//! `config/{LARDER_ENV}.toml` (`local` when unset) < environment variables
//! `LARDER__{SECTION}__{KEY}` (lists comma-separated). `LARDER_CONFIG_DIR` moves `config/`.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, bail};
use config::{Config, Environment, File, FileFormat};
use larder_domain::{FeatureViews, ViewsConfig};
use larder_redis::RedisSettings;
use larder_s3::S3Settings;
use secrecy::SecretString;
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../../../config/default.toml");
const SHIPPED_VIEWS: &str = include_str!("../../../config/features.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub features: FeaturesSettings,
    pub lake: LakeSettings,
    pub batch: BatchSettings,
    pub s3: S3Settings,
    pub worker: WorkerSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeSettings {
    /// A directory, or `s3://bucket/prefix` (with the `[s3]` settings).
    pub root: String,
    /// Where objects of a remote lake are copied for Polars scans.
    pub cache_dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    /// The original DAG's output folder; `simple_feature/` is written inside it.
    pub results_dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Pause between lake flushes when the log is empty.
    pub flush_interval_ms: u64,
    /// Log entries per lake object (per event date).
    pub flush_batch: usize,
    /// A source with fewer than `flush_batch` entries waiting is flushed once the oldest has
    /// waited this long.
    pub flush_max_wait_ms: u64,
    /// When `simple_feature` and `materialize` are queued: a 6-field cron expression, seconds
    /// first (the original DAG: every 10 minutes, `0 */10 * * * *`).
    pub simple_feature_cron: String,
    /// When `feature-history` is queued (cron, seconds first); empty: only on request.
    #[serde(default)]
    pub feature_history_cron: String,
    /// When `compact-bronze` is queued (cron, seconds first); empty: only on request.
    #[serde(default)]
    pub compact_cron: String,
    /// A bronze partition is compacted once it holds this many objects (at least 2).
    pub compact_min_objects: usize,
    /// Attempts of a job before a transient failure is final.
    pub max_attempts: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesSettings {
    /// The feature-view file; empty: `features.toml` in the config directory, else the views
    /// compiled into the binary (the shipped `config/features.toml`).
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// `host:port`; port 0 picks a free port (tests).
    pub bind: String,
    /// actix worker threads; 0 means one per core.
    pub workers: usize,
    pub max_event_bytes: usize,
    pub max_batch_bytes: usize,
    pub max_batch_events: usize,
    /// Most entity rows in one `POST /v1/features/online`.
    pub max_lookup_entities: usize,
    /// Entities per view whose window totals and distinct counts lookups keep in memory (0: none).
    pub lookup_cache_entities: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Tokens that may read features.
    #[serde(default)]
    pub read_tokens: Vec<SecretString>,
    /// Tokens that may ingest events (and read).
    #[serde(default)]
    pub write_tokens: Vec<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `larder_http=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Settings {
    /// Loads the layers for the environment named by `LARDER_ENV` and checks them.
    ///
    /// # Errors
    /// A message naming the setting at fault.
    pub fn load() -> anyhow::Result<Self> {
        let env = std::env::var("LARDER_ENV").unwrap_or_else(|_| "local".into());
        let dir = std::env::var("LARDER_CONFIG_DIR")
            .map_or_else(|_| PathBuf::from("config"), PathBuf::from);
        let config = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::from(dir.join("default.toml")).required(false))
            .add_source(File::from(dir.join(format!("{env}.toml"))).required(false))
            .add_source(
                Environment::with_prefix("LARDER")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("auth.read_tokens")
                    .with_list_parse_key("auth.write_tokens")
                    .try_parsing(true),
            )
            .build()
            .context("reading settings")?;
        let settings: Settings = config
            .try_deserialize()
            .context("invalid settings (keys are section.key; env vars LARDER__SECTION__KEY)")?;
        settings.check()?;
        Ok(settings)
    }

    /// Checks what the types cannot, naming the key at fault.
    ///
    /// # Errors
    /// A message naming the setting and what it must be.
    pub fn check(&self) -> anyhow::Result<()> {
        self.server.bind.parse::<SocketAddr>().with_context(|| {
            format!("server.bind must be host:port, got {:?}", self.server.bind)
        })?;
        if self.server.max_lookup_entities == 0 {
            bail!("server.max_lookup_entities must be at least 1");
        }
        if self.server.max_batch_events == 0 {
            bail!("server.max_batch_events must be at least 1");
        }
        if self.server.max_event_bytes == 0 || self.server.max_batch_bytes == 0 {
            bail!("server.max_event_bytes and server.max_batch_bytes must be at least 1");
        }
        self.redis.check().map_err(anyhow::Error::msg)?;
        if self.lake.root.is_empty() {
            bail!("lake.root must be a directory or s3://bucket/prefix");
        }
        if self.worker.flush_batch == 0 || self.worker.max_attempts == 0 {
            bail!("worker.flush_batch and worker.max_attempts must be at least 1");
        }
        if self.worker.compact_min_objects < 2 {
            bail!("worker.compact_min_objects must be at least 2");
        }
        if self.worker.simple_feature_cron.split_whitespace().count() < 6 {
            bail!(
                "worker.simple_feature_cron must have 6 fields, seconds first (e.g. \"0 */10 * * * *\")"
            );
        }
        Ok(())
    }
}

fn config_dir() -> PathBuf {
    std::env::var("LARDER_CONFIG_DIR").map_or_else(|_| PathBuf::from("config"), PathBuf::from)
}

impl FeaturesSettings {
    /// Loads and validates the feature views.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a view is invalid; the message says which.
    pub fn load_views(&self) -> anyhow::Result<FeatureViews> {
        let (origin, text) = if self.path.is_empty() {
            let default = config_dir().join("features.toml");
            match std::fs::read_to_string(&default) {
                Ok(text) => (default.display().to_string(), text),
                Err(_) => ("the built-in views".to_owned(), SHIPPED_VIEWS.to_owned()),
            }
        } else {
            let text = std::fs::read_to_string(&self.path)
                .with_context(|| format!("features.path: cannot read {}", self.path))?;
            (self.path.clone(), text)
        };
        let config: ViewsConfig =
            toml::from_str(&text).with_context(|| format!("parsing {origin}"))?;
        FeatureViews::from_config(config).with_context(|| format!("in {origin}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Settings {
        Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[test]
    fn the_compiled_in_defaults_are_valid() {
        let settings = defaults();
        settings.check().unwrap();
        assert_eq!(settings.server.bind, "127.0.0.1:8000");
        assert_eq!(settings.server.max_batch_events, 10_000);
    }

    #[test]
    fn the_built_in_views_load() {
        let views = FeaturesSettings::default().load_views().unwrap();
        let names: Vec<&str> = views.views().iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["restaurant", "consumer", "order"]);
    }

    #[test]
    fn a_broken_view_file_names_the_file_and_the_problem() {
        let path = std::env::temp_dir().join(format!("larder-views-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[[view]]\nname = \"v\"\nkey = \"k\"\n[view.sources]\nbogus = \"id\"\n",
        )
        .unwrap();
        let settings = FeaturesSettings {
            path: path.display().to_string(),
        };
        let error = format!("{:#}", settings.load_views().unwrap_err());
        std::fs::remove_file(&path).ok();
        assert!(
            error.contains("larder-views") && error.contains("unknown source `bogus`"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut settings = defaults();
        settings.server.bind = "nowhere".into();
        let error = settings.check().unwrap_err().to_string();
        assert!(error.contains("server.bind"), "{error}");

        let mut settings = defaults();
        settings.redis.url = "redis://127.0.0.1:6379".into();
        let error = settings.check().unwrap_err().to_string();
        assert!(error.contains("redis.url"), "{error}");
    }
}
