use async_trait::async_trait;
use deadpool_redis::{Pool, redis};
use larder_domain::Source;
use larder_usecases::{Backlog, EventLog, Leases, LoggedEvent, StoreError};

use crate::{
    KeySpace, RedisSettings,
    error::{from_pool, from_redis, timed_out},
};

/// The consumer group (and its single consumer) the lake writer reads through. One consumer:
/// the pending list then holds exactly the batch a crashed run took, which the next run takes
/// again whole, so objects named after a batch are rewritten, never overlapped.
const GROUP: &str = "lake";

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

    async fn read_group(
        &self,
        conn: &mut deadpool_redis::Connection,
        stream: &str,
        max: usize,
        from: &str,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        type Reply = Option<Vec<(String, Vec<(String, Vec<(String, String)>)>)>>;
        let reply: Reply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(GROUP)
            .arg("COUNT")
            .arg(max)
            .arg("STREAMS")
            .arg(stream)
            .arg(from)
            .query_async(conn)
            .await
            .map_err(from_redis)?;
        let entries = reply.into_iter().flatten().flat_map(|(_, entries)| entries);
        Ok(entries
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
    async fn claim(&self, source: Source, max: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        let stream = self.keys.stream(source);
        self.timed(async {
            let mut conn = self.conn().await?;
            let created: Result<(), _> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&stream)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            if let Err(e) = created
                && e.code() != Some("BUSYGROUP")
            {
                return Err(from_redis(e));
            }
            let pending = self.read_group(&mut conn, &stream, max, "0").await?;
            if !pending.is_empty() {
                return Ok(pending);
            }
            self.read_group(&mut conn, &stream, max, ">").await
        })
        .await
    }

    async fn acknowledge(&self, source: Source, ids: &[String]) -> Result<(), StoreError> {
        let Some(last) = ids.last() else {
            return Ok(());
        };
        let stream = self.keys.stream(source);
        let below =
            next_id(last).ok_or_else(|| StoreError::Failed(format!("bad stream id {last}")))?;
        self.timed(async {
            let mut conn = self.conn().await?;
            let _: () = redis::pipe()
                .atomic()
                .cmd("XACK")
                .arg(&stream)
                .arg(GROUP)
                .arg(ids)
                .ignore()
                .cmd("XTRIM")
                .arg(&stream)
                .arg("MINID")
                .arg(below)
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
