use async_trait::async_trait;
use deadpool_redis::{Pool, redis};
use larder_domain::{EntityKey, FeatureName};
use larder_usecases::{OnlineStore, Readiness, StoreError, StoredFeaturePage};

use crate::{
    KeySpace, RedisSettings,
    error::{from_pool, from_redis, timed_out},
};

/// [`OnlineStore`] and [`Readiness`] on Redis.
pub struct RedisOnlineStore {
    pool: Pool,
    keys: KeySpace,
    timeout: std::time::Duration,
}

impl RedisOnlineStore {
    pub fn new(pool: Pool, settings: &RedisSettings) -> Self {
        Self {
            pool,
            keys: KeySpace::new(&settings.key_prefix),
            timeout: settings.timeout(),
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let call = async {
            let mut conn = self.pool.get().await.map_err(from_pool)?;
            cmd.query_async(&mut conn).await.map_err(from_redis)
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| timed_out())?
    }
}

#[async_trait]
impl OnlineStore for RedisOnlineStore {
    async fn read(
        &self,
        feature: &FeatureName,
        key: &EntityKey,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let key = self.keys.feature(feature.as_str(), key.as_str());
        let fields: Vec<(String, String)> = self.query(redis::cmd("HGETALL").arg(key)).await?;
        Ok((!fields.is_empty()).then_some(fields))
    }

    async fn scan(&self, cursor: u64, limit: usize) -> Result<StoredFeaturePage, StoreError> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(self.keys.feature_pattern())
            .arg("COUNT")
            .arg(limit)
            .arg("TYPE")
            .arg("hash");
        let (next, keys): (u64, Vec<String>) = self.query(&cmd).await?;
        Ok(StoredFeaturePage {
            entries: keys
                .iter()
                .filter_map(|key| self.keys.parse_feature(key))
                .collect(),
            next_cursor: (next != 0).then_some(next),
        })
    }
}

#[async_trait]
impl Readiness for RedisOnlineStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }
}
