//! The job queue: apalis on Redis carries the runs; a record per run (`larder:job:{id}`, kept 7
//! days) carries what the API reports — state, attempts, timings, summary, error.

use apalis::prelude::TaskSink;
use apalis_redis::{ConnectionManager, RedisStorage};
use async_trait::async_trait;
use deadpool_redis::{
    Pool,
    redis::{self, aio::ConnectionManagerConfig},
};
use larder_domain::Timestamp;
use larder_usecases::{JobName, JobQueue, JobRecord, StoreError};
use serde::{Deserialize, Serialize};

use crate::{
    KeySpace, RedisSettings,
    error::{from_pool, from_redis},
};

const RECORD_TTL_SECS: u64 = 7 * 24 * 3600;

/// What travels through the apalis queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    pub id: String,
    pub name: String,
    /// What the run works on (a training set's request); `null` for most jobs.
    #[serde(default)]
    pub params: serde_json::Value,
}

/// [`JobQueue`] on apalis-redis, plus the updates the worker makes to run records.
#[derive(Clone)]
pub struct RedisJobQueue {
    pool: Pool,
    keys: KeySpace,
    client: redis::Client,
    timeout: std::time::Duration,
    /// Connected on first use, so the API starts (and answers 503) while Redis is down.
    storage: std::sync::Arc<tokio::sync::OnceCell<RedisStorage<JobRequest>>>,
}

impl RedisJobQueue {
    /// The queue `{prefix}larder-jobs`; its apalis storage gets its own connection manager on
    /// first use (pooled connections cannot be shared with apalis).
    ///
    /// # Errors
    /// When the Redis URL is invalid.
    pub fn new(pool: Pool, settings: &RedisSettings) -> Result<Self, StoreError> {
        let client = redis::Client::open(settings.url.as_str()).map_err(from_redis)?;
        let keys = KeySpace::new(&settings.key_prefix);
        Ok(Self {
            pool,
            keys,
            client,
            timeout: settings.timeout(),
            storage: std::sync::Arc::default(),
        })
    }

    /// The apalis backend the worker consumes.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn storage(&self) -> Result<RedisStorage<JobRequest>, StoreError> {
        let storage = self
            .storage
            .get_or_try_init(|| async {
                // redis-rs gives up on a reply after 500 ms by default, and apalis stops a
                // worker whose poll fails: under a full-speed replay, Redis busy with ingest
                // scripts answered a poll later than that and the worker exited. The same bound
                // as every other wait.
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(self.timeout))
                    .set_connection_timeout(Some(self.timeout));
                let manager = ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                    .map_err(from_redis)?;
                // apalis polls for new tasks once per heartbeat: 2 s bounds how long a queued job
                // waits; a crashed worker's tasks are re-queued after 15 missed beats (30 s).
                let config = apalis_redis::Config::default()
                    .queue(format!("{}larder-jobs", self.keys.prefix()))
                    .heartbeat_interval(std::time::Duration::from_secs(2))
                    .missed_heartbeats(15);
                Ok::<_, StoreError>(RedisStorage::new(manager).with_config(config))
            })
            .await?;
        Ok(storage.clone())
    }

    async fn set(&self, id: &str, fields: &[(&str, String)]) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(from_pool)?;
        let key = self.keys.job(id);
        let _: () = redis::pipe()
            .cmd("HSET")
            .arg(&key)
            .arg(fields)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(RECORD_TTL_SECS)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(from_redis)?;
        Ok(())
    }

    /// The worker started attempt `attempt` of run `id`.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn started(&self, id: &str, attempt: usize) -> Result<(), StoreError> {
        self.set(
            id,
            &[
                ("state", "running".into()),
                ("attempts", attempt.to_string()),
                ("started_at", Timestamp::now().to_string()),
            ],
        )
        .await
    }

    /// Run `id` succeeded with `summary`.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn succeeded(&self, id: &str, summary: &serde_json::Value) -> Result<(), StoreError> {
        self.set(
            id,
            &[
                ("state", "succeeded".into()),
                ("finished_at", Timestamp::now().to_string()),
                ("summary", summary.to_string()),
            ],
        )
        .await
    }

    /// Run `id` failed; `retrying` when it will run again.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn failed(&self, id: &str, error: &str, retrying: bool) -> Result<(), StoreError> {
        let state = if retrying { "retrying" } else { "failed" };
        self.set(
            id,
            &[
                ("state", state.into()),
                ("finished_at", Timestamp::now().to_string()),
                ("error", error.to_owned()),
            ],
        )
        .await
    }
}

fn new_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let count = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{nanos:x}{:04x}{:04x}",
        std::process::id() & 0xffff,
        count & 0xffff
    )
}

#[async_trait]
impl JobQueue for RedisJobQueue {
    async fn enqueue(
        &self,
        name: JobName,
        params: serde_json::Value,
    ) -> Result<JobRecord, StoreError> {
        let record = JobRecord {
            id: new_id(),
            name: name.as_str().to_owned(),
            state: "queued".into(),
            enqueued_at: Timestamp::now().to_string(),
            ..JobRecord::default()
        };
        self.set(
            &record.id,
            &[
                ("name", record.name.clone()),
                ("state", record.state.clone()),
                ("attempts", "0".into()),
                ("enqueued_at", record.enqueued_at.clone()),
            ],
        )
        .await?;
        let mut storage = self.storage().await?;
        storage
            .push(JobRequest {
                id: record.id.clone(),
                name: record.name.clone(),
                params,
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(record)
    }

    async fn status(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let mut conn = self.pool.get().await.map_err(from_pool)?;
        let fields: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.job(id))
            .query_async(&mut conn)
            .await
            .map_err(from_redis)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let get = |f: &str| fields.get(f).cloned();
        Ok(Some(JobRecord {
            id: id.to_owned(),
            name: get("name").unwrap_or_default(),
            state: get("state").unwrap_or_default(),
            attempts: get("attempts").and_then(|a| a.parse().ok()).unwrap_or(0),
            enqueued_at: get("enqueued_at").unwrap_or_default(),
            started_at: get("started_at"),
            finished_at: get("finished_at"),
            summary: get("summary").and_then(|s| serde_json::from_str(&s).ok()),
            error: get("error"),
        }))
    }
}
