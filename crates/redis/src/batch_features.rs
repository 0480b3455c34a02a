use async_trait::async_trait;
use deadpool_redis::{Pool, redis};
use larder_usecases::{BatchFeatureStore, StoreError};

use crate::{
    KeySpace, RedisSettings,
    error::{from_pool, from_redis, timed_out},
};

/// [`BatchFeatureStore`] on Redis: one hash `rtf_{feature}:{key}` per row, replaced whole.
pub struct RedisBatchFeatures {
    pool: Pool,
    keys: KeySpace,
    timeout: std::time::Duration,
}

impl RedisBatchFeatures {
    pub fn new(pool: Pool, settings: &RedisSettings) -> Self {
        Self {
            pool,
            keys: KeySpace::new(&settings.key_prefix),
            timeout: settings.timeout(),
        }
    }
}

#[async_trait]
impl BatchFeatureStore for RedisBatchFeatures {
    async fn write(
        &self,
        feature: &str,
        rows: Vec<(String, Vec<(String, String)>)>,
    ) -> Result<u64, StoreError> {
        let mut written = 0;
        for chunk in rows.chunks(1_000) {
            let mut pipe = redis::pipe();
            for (key, fields) in chunk {
                let hash = self.keys.entity(feature, key);
                pipe.cmd("DEL").arg(&hash).ignore();
                pipe.cmd("HSET").arg(&hash).arg(fields).ignore();
            }
            let call = async {
                let mut conn = self.pool.get().await.map_err(from_pool)?;
                pipe.query_async::<()>(&mut conn).await.map_err(from_redis)
            };
            tokio::time::timeout(self.timeout, call)
                .await
                .map_err(|_| timed_out())??;
            written += chunk.len() as u64;
        }
        Ok(written)
    }
}
