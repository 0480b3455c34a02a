//! `POST /v1/jobs/{name}` queues a run of a job; `GET /v1/jobs/{id}` reports on it.

use actix_web::{HttpRequest, HttpResponse, web};
use larder_domain::SelectError;
use larder_usecases::{JobName, JobRecord, SetCompression, TrainingSetRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    ApiError, AppState, ErrorBody,
    auth::{ReadAccess, WriteAccess},
    body::{parse_body, read_bounded, require_json},
};

/// One run of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAnswer {
    pub id: String,
    /// `lake-flush`, `simple_feature`, `feature-history`, `compact-bronze`, `materialize` or
    /// `training-set`.
    pub name: String,
    /// `queued`, `running`, `retrying`, `succeeded` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub enqueued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// `rows_in`, `rows_out`, `objects_written` (and the objects; a training set's `output`
    /// key in the lake) once the run succeeded.
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
    params(("name" = String, Path, description = "lake-flush, simple_feature, feature-history, compact-bronze or materialize (training sets: POST /v1/training-sets)")),
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
    if name == JobName::TrainingSet {
        return Err(ApiError::InvalidRequest(
            "training sets take a request body: POST /v1/training-sets".into(),
        ));
    }
    let record = state.jobs.enqueue(name, serde_json::Value::Null).await?;
    Ok(HttpResponse::Accepted().json(JobAnswer::from(record)))
}

/// A point-in-time training set to build from the lake.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingSetBody {
    /// The entity table's key in the lake (`.parquet` or `.csv`): the views' key columns, an
    /// `event_timestamp` column, and any label columns (carried through).
    pub entities: String,
    /// `view:feature` names, or view names for all their features.
    pub features: Vec<String>,
    /// The output's key in the lake (`.parquet`); default `training-sets/{id}.parquet`.
    pub out: Option<String>,
    /// `snappy` (default), `zstd` (smallest, slowest to write), `lz4` or `none`: the codec of the
    /// feature columns, and of a CSV table's columns (a Parquet table's are copied as stored).
    pub compression: Option<String>,
}

/// Queue a training set: each entity row gets the requested features as of its
/// `event_timestamp` (events at or before it); `GET /v1/jobs/{id}` reports the output key.
#[utoipa::path(post, path = "/v1/training-sets", tag = "jobs",
    request_body = TrainingSetBody,
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = JobAnswer),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks the write scope", body = ErrorBody),
        (status = 422, description = "Unknown feature or bad object key; the message names the field", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ))]
pub async fn enqueue_training_set(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    _: WriteAccess,
) -> Result<HttpResponse, ApiError> {
    require_json(&request)?;
    let bytes = read_bounded(&request, payload, state.limits.max_event_bytes).await?;
    let body: TrainingSetBody = parse_body(&bytes)?;
    state
        .lookup
        .views()
        .select(&body.features)
        .map_err(|e: SelectError| ApiError::InvalidRequest(format!("features: {e}")))?;
    let compression = match body.compression {
        None => SetCompression::default(),
        Some(name) => name
            .parse()
            .map_err(|e| ApiError::InvalidRequest(format!("compression: {e}")))?,
    };
    let training_set = TrainingSetRequest {
        entities: body.entities,
        features: body.features,
        out: body.out,
        compression,
    };
    training_set
        .check()
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let params =
        serde_json::to_value(&training_set).map_err(|e| ApiError::Internal(e.to_string()))?;
    let record = state.jobs.enqueue(JobName::TrainingSet, params).await?;
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
