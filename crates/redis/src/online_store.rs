use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_redis::{
    Pool,
    redis::{self, FromRedisValue},
};
use larder_domain::{EntityState, FeatureName};
use larder_usecases::{EntityRead, OnlineStore, Readiness, StoreError, StoredKeyPage};

use crate::{KeySpace, RedisSettings, error::timed_out, shared::SharedConnections};

/// [`OnlineStore`] and [`Readiness`] on Redis.
pub struct RedisOnlineStore {
    connections: SharedConnections,
    keys: KeySpace,
    timeout: std::time::Duration,
}

impl RedisOnlineStore {
    pub fn new(pool: Pool, settings: &RedisSettings) -> Self {
        Self {
            connections: SharedConnections::new(pool),
            keys: KeySpace::new(&settings.key_prefix),
            timeout: settings.timeout(),
        }
    }

    async fn query<T: FromRedisValue>(&self, request: &Request<'_>) -> Result<T, StoreError> {
        let call = self.connections.run(|mut conn| async move {
            match request {
                Request::Cmd(cmd) => cmd.query_async(&mut conn).await,
                Request::Pipe(pipe) => pipe.query_async(&mut conn).await,
            }
        });
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| timed_out())?
    }
}

enum Request<'a> {
    Cmd(&'a redis::Cmd),
    Pipe(&'a redis::Pipeline),
}

fn parse<T: FromRedisValue>(value: redis::Value) -> Result<T, StoreError> {
    T::from_redis_value(value).map_err(|e| StoreError::Failed(e.to_string()))
}

#[async_trait]
impl OnlineStore for RedisOnlineStore {
    async fn clock(&self) -> Result<Option<i64>, StoreError> {
        self.query(&Request::Cmd(redis::cmd("GET").arg(self.keys.clock())))
            .await
    }

    async fn read(&self, reads: &[EntityRead]) -> Result<Vec<EntityState>, StoreError> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        // The versions read alone, in one MGET: one command for a batch of cached entities, where
        // a command each cost Redis (and the reply parser) ten times as much. Then per entity
        // read in full: its version, its hash, the plan's tiles of each tier (exactly the fields
        // its windows cover, never a whole tier hash), its distinct counts.
        let mut pipe = redis::pipe();
        let versions_alone: Vec<String> = reads
            .iter()
            .filter(|read| read.version_only)
            .map(|read| self.keys.version(&read.view, read.key.as_str()))
            .collect();
        if !versions_alone.is_empty() {
            pipe.cmd("MGET").arg(&versions_alone);
        }
        for read in reads.iter().filter(|read| !read.version_only) {
            let key = read.key.as_str();
            pipe.cmd("GET").arg(self.keys.version(&read.view, key));
            pipe.cmd("HGETALL").arg(self.keys.entity(&read.view, key));
            for read_tiles in &read.plan.tiles {
                pipe.cmd("HMGET")
                    .arg(self.keys.buckets(&read.view, key, read_tiles.tier))
                    .arg(&read_tiles.fields);
            }
            for query in &read.plan.distinct {
                pipe.cmd("ZCOUNT")
                    .arg(self.keys.distinct(&read.view, key, &query.measure))
                    .arg(format!("({}", query.lo_ms))
                    .arg(query.hi_ms);
            }
        }
        let replies: Vec<redis::Value> = self.query(&Request::Pipe(&pipe)).await?;
        let mut replies = replies.into_iter();
        let mut next = || {
            replies
                .next()
                .ok_or_else(|| StoreError::Failed("pipeline answered too few replies".into()))
        };
        let mut versions = if versions_alone.is_empty() {
            Vec::new()
        } else {
            parse::<Vec<Option<String>>>(next()?)?
        }
        .into_iter();
        let mut states = Vec::with_capacity(reads.len());
        for read in reads {
            if read.version_only {
                states.push(EntityState {
                    version: versions.next().flatten(),
                    ..EntityState::default()
                });
                continue;
            }
            let version = parse(next()?)?;
            let fields: HashMap<String, String> = parse(next()?)?;
            let mut tiles = Vec::new();
            for read_tiles in &read.plan.tiles {
                let values: Vec<Option<String>> = parse(next()?)?;
                let found = read_tiles.tiles.iter().zip(values);
                tiles.extend(found.filter_map(|(tile, v)| Some((read_tiles.tier, *tile, v?))));
            }
            let mut distinct = Vec::with_capacity(read.plan.distinct.len());
            for _ in &read.plan.distinct {
                distinct.push(parse(next()?)?);
            }
            states.push(EntityState {
                fields,
                tiles,
                distinct,
                version,
            });
        }
        Ok(states)
    }

    async fn entity_counts(&self, views: &[String]) -> Result<Vec<u64>, StoreError> {
        if views.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for view in views {
            cmd.arg(self.keys.entity_count(view));
        }
        let counts: Vec<Option<u64>> = self.query(&Request::Cmd(&cmd)).await?;
        Ok(counts.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn scan(
        &self,
        view: &FeatureName,
        cursor: u64,
        limit: usize,
    ) -> Result<StoredKeyPage, StoreError> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(self.keys.entity_pattern(view.as_str()))
            .arg("COUNT")
            .arg(limit)
            .arg("TYPE")
            .arg("hash");
        let (next, keys): (u64, Vec<String>) = self.query(&Request::Cmd(&cmd)).await?;
        Ok(StoredKeyPage {
            keys: keys
                .iter()
                .filter_map(|key| self.keys.parse_entity(view.as_str(), key))
                .map(str::to_owned)
                .collect(),
            next_cursor: (next != 0).then_some(next),
        })
    }
}

#[async_trait]
impl Readiness for RedisOnlineStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query(&Request::Cmd(&redis::cmd("PING"))).await?;
        Ok(())
    }
}
