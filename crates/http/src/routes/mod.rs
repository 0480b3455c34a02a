//! One file per route (the four original single-event routes share one).

pub(crate) mod feature_get;
pub(crate) mod feature_list;
pub(crate) mod features_online;
pub(crate) mod health;
pub(crate) mod ingest_batch;
pub(crate) mod ingest_one;
pub(crate) mod jobs;
mod query;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, handler) in ingest_one::ROUTES {
        // FastAPI answered both spellings; so do we.
        cfg.route(path, web::post().to(handler));
        cfg.route(path.trim_end_matches('/'), web::post().to(handler));
    }
    cfg.route(
        "/v1/events/{source}",
        web::post().to(ingest_batch::ingest_batch),
    )
    .route(
        "/real-time-fs/get/{feature_name}/{key}",
        web::get().to(feature_get::get_feature),
    )
    .route(
        "/real-time-fs/list",
        web::get().to(feature_list::list_features),
    )
    .route(
        "/v1/features/online",
        web::post().to(features_online::online_features),
    )
    .route("/v1/jobs/{name}", web::post().to(jobs::enqueue_job))
    .route(
        "/v1/training-sets",
        web::post().to(jobs::enqueue_training_set),
    )
    .route("/v1/jobs/{id}", web::get().to(jobs::job_status))
    .route("/health", web::get().to(health::health))
    .route("/ready", web::get().to(health::ready));
}
