//! `POST /v1/jobs/{name}` queues a run of a job; `GET /v1/jobs/{id}` reports on it.

use actix_web::{HttpResponse, web};
use larder_usecases::{JobName, JobRecord};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    ApiError, AppState, ErrorBody,
    auth::{ReadAccess, WriteAccess},
};

/// One run of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAnswer {
    pub id: String,
    /// `lake-flush`, `simple_feature`, `feature-history` or `materialize`.
    pub name: String,
    /// `queued`, `running`, `retrying`, `succeeded` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub enqueued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// `rows_in`, `rows_out`, `objects_written` (and the objects) once the run succeeded.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<serde_json::Value>,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

impl From<JobRecord> for JobAnswer {
    fn from(r: JobRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            state: r.state,
            attempts: r.attempts,
            enqueued_at: r.enqueued_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            summary: r.summary,
            error: r.error,
        }
    }
}

/// Queue a run of a job now (larder-worker runs it; the schedule runs them anyway).
#[utoipa::path(post, path = "/v1/jobs/{name}", tag = "jobs",
    params(("name" = String, Path, description = "lake-flush, simple_feature, feature-history or materialize")),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = JobAnswer),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks the write scope", body = ErrorBody),
        (status = 404, description = "Unknown job", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ))]
pub async fn enqueue_job(
    name: web::Path<String>,
    state: web::Data<AppState>,
    _: WriteAccess,
) -> Result<HttpResponse, ApiError> {
    let name: JobName = name
        .parse()
        .map_err(|e: larder_usecases::UnknownJob| ApiError::UnknownJob(e.to_string()))?;
    let record = state.jobs.enqueue(name).await?;
    Ok(HttpResponse::Accepted().json(JobAnswer::from(record)))
}

/// A run's state, attempts, timings and result summary.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The id `POST /v1/jobs/{name}` answered")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The run", body = JobAnswer),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such run (records are kept 7 days)", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ))]
pub async fn job_status(
    id: web::Path<String>,
    state: web::Data<AppState>,
    _: ReadAccess,
) -> Result<HttpResponse, ApiError> {
    let record = state.jobs.status(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(JobAnswer::from(record)))
}
