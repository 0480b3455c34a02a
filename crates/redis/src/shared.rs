//! A few multiplexed connections shared by every request of the API's hot paths.

use std::sync::{
    Mutex,
    atomic::{AtomicUsize, Ordering},
};

use deadpool_redis::{
    Connection, Pool,
    redis::{RedisError, RedisResult, aio::MultiplexedConnection},
};
use larder_usecases::StoreError;

use crate::error::{from_pool, from_redis};

/// Connections taken from the pool once and shared by concurrent requests.
///
/// deadpool hands a connection out only after checking it with a PING round trip, which doubles
/// the round trips of a lookup or an ingest (one pipeline each): `/ready` served 22 k req/s that
/// way. A `MultiplexedConnection` carries concurrent requests by itself, so requests clone one of
/// these instead, and Redis reads the commands queued on one socket together. A connection that
/// fails is dropped; the next request on its slot takes a fresh one from the pool.
///
/// Each thread uses its own slot: a connection's driver task runs on the runtime that opened it,
/// so a request served by the same thread is woken by its reply without a hop to another thread.
pub(crate) struct SharedConnections {
    pool: Pool,
    slots: Vec<Mutex<Option<MultiplexedConnection>>>,
}

/// The most connections a store shares (threads beyond it share slots): one per thread keeps
/// each socket carrying many commands per read.
const SHARED: usize = 4;

/// The number of the calling thread among those that used shared connections.
fn thread_number() -> usize {
    static THREADS: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = THREADS.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

impl SharedConnections {
    pub(crate) fn new(pool: Pool) -> Self {
        Self {
            pool,
            slots: (0..SHARED).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Runs `call` on one of the shared connections. A call that meets a connection Redis has
    /// closed (a restart, an idle timeout, `CLIENT KILL`) runs once more on a fresh one: lookups
    /// only read, and ingestion is deduplicated by each event's fingerprint, so a call that did
    /// reach Redis before the connection broke changes nothing the second time.
    pub(crate) async fn run<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let slot = thread_number() % self.slots.len();
        let mut retried = false;
        loop {
            let conn = self.lease(slot).await?;
            let error = match call(conn).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if broken(&error) {
                self.slot(slot).take();
            }
            if retried || !(error.is_io_error() || error.is_connection_dropped()) {
                return Err(from_redis(error));
            }
            retried = true;
        }
    }

    /// The connection in `slot`, taken from the pool if the slot is empty.
    async fn lease(&self, slot: usize) -> Result<MultiplexedConnection, StoreError> {
        if let Some(conn) = self.slot(slot).clone() {
            return Ok(conn);
        }
        let fresh = Connection::take(self.pool.get().await.map_err(from_pool)?);
        Ok(self.slot(slot).get_or_insert(fresh).clone())
    }

    fn slot(&self, slot: usize) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        // A poisoned slot only held a connection handle: still usable.
        self.slots[slot]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether the connection is no use after `error`.
fn broken(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
        || error.is_timeout()
}
