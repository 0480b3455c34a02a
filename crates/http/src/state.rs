use std::sync::Arc;

use larder_usecases::{IngestService, JobQueue, LookupService, Readiness};

use crate::AccessTokens;

/// Request-size bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body of a single-event route, in bytes.
    pub max_event_bytes: usize,
    /// Largest body of `POST /v1/events/{source}`, in bytes.
    pub max_batch_bytes: usize,
}

/// What every handler can reach.
pub struct AppState {
    pub ingest: Arc<IngestService>,
    pub lookup: Arc<LookupService>,
    pub readiness: Arc<dyn Readiness>,
    pub jobs: Arc<dyn JobQueue>,
    pub tokens: AccessTokens,
    pub limits: Limits,
}
