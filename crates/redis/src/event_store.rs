use std::sync::{
    LazyLock,
    atomic::{AtomicU8, Ordering},
};

use async_trait::async_trait;
use deadpool_redis::{
    Pool,
    redis::{self, ErrorKind, RedisError, Script, ServerErrorKind, Value},
};
use larder_domain::Source;
use larder_usecases::{EventStore, EventWrite, StoreError, WriteOutcome};

use crate::{
    KeySpace, RedisSettings, encode::group_args, error::timed_out, shared::SharedConnections,
};

static INGEST: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("ingest.lua")));

/// The command of larder's Redis module (crates/redis-module): the script's KEYS and ARGV, the
/// same writes, done natively in about half of Redis' time.
const MODULE_COMMAND: &str = "LARDER.INGEST";

/// Which command applies a chunk of events, once the server has been asked.
const NOT_ASKED: u8 = 0;
const MODULE: u8 = 1;
const SCRIPT: u8 = 2;

/// [`EventStore`] on Redis: raw hashes, `events:{source}` streams, dedupe markers and feature
/// hashes, written per chunk of events by one call of the ingest script, or of the module's
/// command where the server has larder's module loaded.
pub struct RedisEventStore {
    connections: SharedConnections,
    keys: KeySpace,
    settings: RedisSettings,
    /// NOT_ASKED, MODULE or SCRIPT.
    command: AtomicU8,
}

impl RedisEventStore {
    pub fn new(pool: Pool, settings: &RedisSettings) -> Self {
        Self {
            connections: SharedConnections::new(pool),
            keys: KeySpace::new(&settings.key_prefix),
            settings: settings.clone(),
            command: AtomicU8::new(NOT_ASKED),
        }
    }

    /// The call applying `writes`: `LARDER.INGEST` or `EVALSHA` of the script, same arguments.
    fn ingest_call(&self, source: Source, writes: &[EventWrite], module: bool) -> redis::Cmd {
        let mut keys = vec![self.keys.stream(source), self.keys.clock()];
        let mut args: Vec<String> = vec![
            self.settings.raw_ttl_secs.to_string(),
            self.settings.dedupe_ttl_secs.to_string(),
            writes.len().to_string(),
            self.keys.prefix().to_owned(),
            self.settings.max_stream_backlog.to_string(),
        ];
        for write in writes {
            keys.push(self.keys.raw(source, &write.id));
            keys.push(self.keys.seen(source, &write.id));
            args.push(format!("{:016x}", write.fingerprint));
            args.push(write.id.clone());
            args.push(write.payload.clone());
            args.push(write.event_time_ms.to_string());
            args.push(write.raw_fields.len().to_string());
            for (field, value) in &write.raw_fields {
                args.push(field.clone());
                args.push(value.clone());
            }
            args.push(write.updates.len().to_string());
            for update in &write.updates {
                args.extend(group_args(update));
            }
        }
        let mut cmd = if module {
            redis::cmd(MODULE_COMMAND)
        } else {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(INGEST.get_hash());
            cmd
        };
        cmd.arg(keys.len()).arg(keys).arg(args);
        cmd
    }

    /// Applies each chunk with one call, all in one pipeline; each call's answer.
    async fn run(
        &self,
        source: Source,
        chunks: &[&[EventWrite]],
    ) -> Result<Vec<Vec<i64>>, StoreError> {
        self.connections
            .run(|mut conn| async move {
                if self.command.load(Ordering::Relaxed) == NOT_ASKED {
                    let info: Vec<Value> = redis::cmd("COMMAND")
                        .arg("INFO")
                        .arg(MODULE_COMMAND)
                        .query_async(&mut conn)
                        .await?;
                    let loaded = info.first().is_some_and(|v| *v != Value::Nil);
                    self.command
                        .store(if loaded { MODULE } else { SCRIPT }, Ordering::Relaxed);
                }
                let module = self.command.load(Ordering::Relaxed) == MODULE;
                let mut pipeline = redis::pipe();
                // Each call's answer on its own, so that calls that did not run can be told apart.
                pipeline.ignore_errors();
                for chunk in chunks {
                    pipeline.add_command(self.ingest_call(source, chunk, module));
                }
                let mut replies: Vec<redis::RedisResult<Vec<i64>>> =
                    pipeline.query_async(&mut conn).await?;
                // A call that did not run is sent again as the script: Redis restarted without
                // the module, or restarted, flushed its scripts or never had the script. While
                // another request loads it, the calls of one pipeline can fail on either side of
                // the load: only those that failed are sent again, since the others have run (a
                // second run would answer their events `duplicate`).
                let missing: Vec<usize> = (0..replies.len())
                    .filter(|i| replies[*i].as_ref().is_err_and(did_not_run))
                    .collect();
                if !missing.is_empty() {
                    self.command.store(SCRIPT, Ordering::Relaxed);
                    INGEST.load_async(&mut conn).await?;
                    let mut again = redis::pipe();
                    for i in &missing {
                        again.add_command(self.ingest_call(source, chunks[*i], false));
                    }
                    let answers: Vec<Vec<i64>> = again.query_async(&mut conn).await?;
                    for (i, answer) in missing.into_iter().zip(answers) {
                        replies[i] = Ok(answer);
                    }
                }
                replies.into_iter().collect()
            })
            .await
    }

    /// Deletes the queued raw hashes whose time has come (with `raw_ttl_secs` set and markers
    /// kept for good; nothing to do otherwise). Every ingest call sweeps the queue first, but
    /// when ingestion stops nothing else would: so, while the queue's head has expired, calls of
    /// no events, each sweeping what one call may. Stops when the log's backlog is full, as such
    /// a call then writes nothing.
    ///
    /// # Errors
    /// When Redis fails or does not answer in time.
    pub async fn sweep_expired_raw_hashes(&self) -> Result<(), StoreError> {
        if !self.settings.raw_hashes_queued() {
            return Ok(());
        }
        let ttl_secs = self.settings.raw_ttl_secs;
        let queue = self.keys.raw_expiry();
        loop {
            let (head, (seconds, micros)): (Option<String>, (u64, u64)) = self
                .connections
                .run(|mut conn| {
                    let queue = queue.clone();
                    async move {
                        redis::pipe()
                            .cmd("LINDEX")
                            .arg(queue)
                            .arg(0)
                            .cmd("TIME")
                            .query_async(&mut conn)
                            .await
                    }
                })
                .await?;
            let line = (seconds * 1000 + micros / 1000).saturating_sub(ttl_secs * 1000);
            let expired = head
                .and_then(|entry| entry.split_once(':')?.0.parse::<u64>().ok())
                .is_some_and(|queued_at| queued_at <= line);
            if !expired {
                return Ok(());
            }
            let sweep =
                tokio::time::timeout(self.settings.timeout(), self.run(Source::Order, &[&[]]));
            let replies = sweep.await.map_err(|_| timed_out())??;
            if replies.iter().any(|reply| reply.as_slice() == [-1]) {
                return Ok(());
            }
        }
    }
}

/// Whether a call failed before doing anything: the script is not loaded, or the module's
/// command is unknown (a server without the module took over).
fn did_not_run(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
        || error
            .detail()
            .is_some_and(|detail| detail.starts_with("unknown command"))
}

#[async_trait]
impl EventStore for RedisEventStore {
    async fn append(
        &self,
        source: Source,
        writes: &[EventWrite],
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let chunks: Vec<&[EventWrite]> = writes.chunks(self.settings.events_per_script).collect();
        let replies = tokio::time::timeout(self.settings.timeout(), self.run(source, &chunks))
            .await
            .map_err(|_| timed_out())??;
        if replies.iter().any(|reply| reply.as_slice() == [-1]) {
            return Err(StoreError::Backlogged(self.settings.max_stream_backlog));
        }
        let outcomes: Vec<WriteOutcome> = replies
            .into_iter()
            .flatten()
            .map(|stored| {
                if stored == 1 {
                    WriteOutcome::Accepted
                } else {
                    WriteOutcome::Duplicate
                }
            })
            .collect();
        if outcomes.len() != writes.len() {
            return Err(StoreError::Failed(format!(
                "ingest script answered {} outcomes for {} events",
                outcomes.len(),
                writes.len()
            )));
        }
        Ok(outcomes)
    }
}
