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

use crate::error::from_pool;

/// Connections taken from the pool once and shared by concurrent requests.
///
/// deadpool hands a connection out only after checking it with a PING round trip, which doubles
/// the round trips of a lookup or an ingest (one pipeline each): `/ready` served 22 k req/s that
/// way. A `MultiplexedConnection` carries concurrent requests by itself, so requests clone one of
/// these instead, and Redis reads the commands queued on one socket together. A connection that
/// fails is dropped; the next request on its slot takes a fresh one from the pool.
pub(crate) struct SharedConnections {
    pool: Pool,
    slots: Vec<Mutex<Option<MultiplexedConnection>>>,
    next: AtomicUsize,
}

/// How many connections a store shares: enough to keep both cores' requests flowing, few enough
/// that each socket carries many commands per read.
const SHARED: usize = 4;

/// One request's use of a shared connection.
pub(crate) struct Lease<'a> {
    shared: &'a SharedConnections,
    slot: usize,
    pub conn: MultiplexedConnection,
}

impl SharedConnections {
    pub(crate) fn new(pool: Pool) -> Self {
        Self {
            pool,
            slots: (0..SHARED).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    pub(crate) async fn lease(&self) -> Result<Lease<'_>, StoreError> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        if let Some(conn) = self.slot(slot).clone() {
            return Ok(Lease {
                shared: self,
                slot,
                conn,
            });
        }
        let fresh = Connection::take(self.pool.get().await.map_err(from_pool)?);
        let conn = self.slot(slot).get_or_insert(fresh).clone();
        Ok(Lease {
            shared: self,
            slot,
            conn,
        })
    }

    fn slot(&self, slot: usize) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        // A poisoned slot only held a connection handle: still usable.
        self.slots[slot]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Lease<'_> {
    /// Passes `result` through, dropping the connection when the error says it is broken.
    pub(crate) fn check<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(error) = &result
            && broken(error)
        {
            self.shared.slot(self.slot).take();
        }
        result
    }
}

fn broken(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
        || error.is_timeout()
}
