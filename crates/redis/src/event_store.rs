use std::sync::LazyLock;

use async_trait::async_trait;
use deadpool_redis::{
    Pool,
    redis::{self, ErrorKind, Script, ServerErrorKind},
};
use larder_domain::Source;
use larder_usecases::{EventStore, EventWrite, StoreError, WriteOutcome};

use crate::{
    KeySpace, RedisSettings, encode::group_args, error::timed_out, shared::SharedConnections,
};

static INGEST: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("ingest.lua")));

/// [`EventStore`] on Redis: raw hashes, `events:{source}` streams, dedupe markers and feature
/// hashes, written by one Lua script per chunk of events.
pub struct RedisEventStore {
    connections: SharedConnections,
    keys: KeySpace,
    settings: RedisSettings,
}

impl RedisEventStore {
    pub fn new(pool: Pool, settings: &RedisSettings) -> Self {
        Self {
            connections: SharedConnections::new(pool),
            keys: KeySpace::new(&settings.key_prefix),
            settings: settings.clone(),
        }
    }

    fn script_call(&self, source: Source, writes: &[EventWrite]) -> redis::Cmd {
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
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(INGEST.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        cmd
    }

    async fn run(&self, pipeline: &redis::Pipeline) -> Result<Vec<Vec<i64>>, StoreError> {
        self.connections
            .run(|mut conn| async move {
                let mut replies: Vec<redis::RedisResult<Vec<i64>>> =
                    pipeline.query_async(&mut conn).await?;
                // Redis restarted, flushed its scripts or never had this one. While another
                // request loads it, the calls of one pipeline can fail on either side of the
                // load: only those that failed are sent again, since the others have run (a
                // second run would answer their events `duplicate`).
                let missing: Vec<usize> = (0..replies.len())
                    .filter(|i| {
                        replies[*i].as_ref().is_err_and(|e| {
                            e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
                        })
                    })
                    .collect();
                if !missing.is_empty() {
                    INGEST.load_async(&mut conn).await?;
                    let calls: Vec<&redis::Cmd> = pipeline.cmd_iter().collect();
                    let mut again = redis::pipe();
                    for i in &missing {
                        again.add_command(calls[*i].clone());
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
}

#[async_trait]
impl EventStore for RedisEventStore {
    async fn append(
        &self,
        source: Source,
        writes: &[EventWrite],
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let mut pipeline = redis::pipe();
        // Each call's answer on its own, so that calls missing the script can be told apart.
        pipeline.ignore_errors();
        for chunk in writes.chunks(self.settings.events_per_script) {
            pipeline.add_command(self.script_call(source, chunk));
        }
        let replies = tokio::time::timeout(self.settings.timeout(), self.run(&pipeline))
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
