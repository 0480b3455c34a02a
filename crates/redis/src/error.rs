use deadpool_redis::{PoolError, redis::RedisError};
use larder_usecases::StoreError;

/// Translates a Redis error at the boundary: what a retry may cure is `Unavailable`.
pub(crate) fn from_redis(error: RedisError) -> StoreError {
    let transient = error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error();
    if transient {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Failed(error.to_string())
    }
}

pub(crate) fn from_pool(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => from_redis(error),
        other => StoreError::Unavailable(other.to_string()),
    }
}

pub(crate) fn timed_out() -> StoreError {
    StoreError::Unavailable("redis did not answer in time".into())
}
