use async_trait::async_trait;
use deadpool_redis::{Pool, redis};
use larder_domain::Source;
use larder_usecases::{Backlog, EventLog, Leases, LoggedEvent, StoreError};

use crate::{
    KeySpace, RedisSettings,
    error::{from_pool, from_redis, timed_out},
};

/// [`EventLog`] and [`Leases`] on Redis streams and keys.
pub struct RedisEventLog {
    pool: Pool,
    keys: KeySpace,
    timeout: std::time::Duration,
}

impl RedisEventLog {
    pub fn new(pool: Pool, settings: &RedisSettings) -> Self {
        Self {
            pool,
            keys: KeySpace::new(&settings.key_prefix),
            timeout: settings.timeout(),
        }
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, StoreError> {
        self.pool.get().await.map_err(from_pool)
    }

    async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| timed_out())?
    }

    /// The entries of `stream` from its head up to `last` (inclusive), or the first `max`.
    async fn read_head(
        &self,
        conn: &mut deadpool_redis::Connection,
        stream: &str,
        last: &str,
        max: Option<usize>,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        type Entries = Vec<(String, Vec<(String, String)>)>;
        let mut range = redis::cmd("XRANGE");
        range.arg(stream).arg("-").arg(last);
        if let Some(max) = max {
            range.arg("COUNT").arg(max);
        }
        let entries: Entries = range.query_async(conn).await.map_err(from_redis)?;
        Ok(entries
            .into_iter()
            .map(|(id, fields)| {
                let payload = fields
                    .into_iter()
                    .find(|(f, _)| f == "data")
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                LoggedEvent { id, payload }
            })
            .collect())
    }
}

/// The id right after `id` (`ms-seq` → `ms-(seq+1)`): trimming below it removes `id`.
fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    Some(format!("{ms}-{}", seq.parse::<u64>().ok()?.checked_add(1)?))
}

#[async_trait]
impl EventLog for RedisEventLog {
    // The log is read from its head: a flushed batch is trimmed when it is acknowledged, so the
    // head is exactly what waits. The batch a run takes is recorded (its last id) before any of
    // it is written, so the run after a crash takes the same entries again, whole, and rewrites
    // the same objects rather than overlapping them. A consumer group did the same with a
    // pending entry per event, added by XREADGROUP and removed by XACK: reading the log cost
    // Redis 57 s of the full-scale replay that way, 25 s this way (docs/benchmarks.md).
    async fn claim(&self, source: Source, max: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        let (stream, claimed) = (self.keys.stream(source), self.keys.claimed(source));
        self.timed(async {
            let mut conn = self.conn().await?;
            let unacknowledged: Option<String> = redis::cmd("GET")
                .arg(&claimed)
                .query_async(&mut conn)
                .await
                .map_err(from_redis)?;
            if let Some(last) = unacknowledged {
                let batch = self.read_head(&mut conn, &stream, &last, None).await?;
                if !batch.is_empty() {
                    return Ok(batch);
                }
            }
            let batch = self.read_head(&mut conn, &stream, "+", Some(max)).await?;
            if let Some(last) = batch.last() {
                let _: () = redis::cmd("SET")
                    .arg(&claimed)
                    .arg(&last.id)
                    .query_async(&mut conn)
                    .await
                    .map_err(from_redis)?;
            }
            Ok(batch)
        })
        .await
    }

    async fn acknowledge(&self, source: Source, ids: &[String]) -> Result<(), StoreError> {
        let Some(last) = ids.last() else {
            return Ok(());
        };
        let (stream, claimed) = (self.keys.stream(source), self.keys.claimed(source));
        let below =
            next_id(last).ok_or_else(|| StoreError::Failed(format!("bad stream id {last}")))?;
        self.timed(async {
            let mut conn = self.conn().await?;
            let _: () = redis::pipe()
                .atomic()
                .cmd("XTRIM")
                .arg(&stream)
                .arg("MINID")
                .arg(below)
                .ignore()
                .cmd("DEL")
                .arg(&claimed)
                .ignore()
                .query_async(&mut conn)
                .await
                .map_err(from_redis)?;
            Ok(())
        })
        .await
    }

    async fn backlog(&self, source: Source) -> Result<Backlog, StoreError> {
        type Oldest = Vec<(String, Vec<String>)>;
        let stream = self.keys.stream(source);
        self.timed(async {
            let mut conn = self.conn().await?;
            // The age by Redis' clock, which also stamped the entry: no skew with the worker's.
            let (entries, oldest, (secs, micros)): (u64, Oldest, (u64, u64)) = redis::pipe()
                .cmd("XLEN")
                .arg(&stream)
                .cmd("XRANGE")
                .arg(&stream)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .cmd("TIME")
                .query_async(&mut conn)
                .await
                .map_err(from_redis)?;
            let now_ms = secs * 1000 + micros / 1000;
            let oldest_age_ms = oldest
                .first()
                .and_then(|(id, _)| id.split_once('-')?.0.parse::<u64>().ok())
                .map(|appended| now_ms.saturating_sub(appended));
            Ok(Backlog {
                entries,
                oldest_age_ms,
            })
        })
        .await
    }
}

#[async_trait]
impl Leases for RedisEventLog {
    async fn acquire(&self, name: &str, ttl_ms: u64) -> Result<Option<String>, StoreError> {
        let key = self.keys.lease(name);
        let token = format!(
            "{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        self.timed(async {
            let mut conn = self.conn().await?;
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(&mut conn)
                .await
                .map_err(from_redis)?;
            Ok(set.map(|_| token))
        })
        .await
    }

    async fn release(&self, name: &str, token: &str) -> Result<(), StoreError> {
        static RELEASE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            )
        });
        let key = self.keys.lease(name);
        self.timed(async {
            let mut conn = self.conn().await?;
            let _: i64 = RELEASE
                .key(key)
                .arg(token)
                .invoke_async(&mut conn)
                .await
                .map_err(from_redis)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_id_follows_in_the_same_millisecond() {
        assert_eq!(
            next_id("1548000000000-0").as_deref(),
            Some("1548000000000-1")
        );
        assert_eq!(
            next_id("1548000000000-41").as_deref(),
            Some("1548000000000-42")
        );
        assert_eq!(next_id("garbage"), None);
    }
}
