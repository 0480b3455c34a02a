//! `POST /v1/events/{source}`: many events in one request, each accepted or rejected on its own.

use actix_web::{HttpRequest, HttpResponse, web};
use larder_domain::{FieldError, Source};
use larder_usecases::ItemResult;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    ApiError, AppState, ErrorBody,
    auth::WriteAccess,
    body::{batch_framing, read_bounded, split_batch},
};

/// The outcome of one event of a batch, by its position in the body.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    pub index: usize,
    /// `accepted`, `duplicate` or `rejected`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why a rejected event was rejected, field by field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    pub source: &'static str,
    pub accepted: usize,
    pub duplicate: usize,
    pub rejected: usize,
    pub results: Vec<BatchItem>,
}

/// Ingest a batch of events of one source: a JSON array (`application/json`) or one event per
/// line (`application/x-ndjson`), at most `server.max_batch_events` events. Valid events are
/// stored and invalid ones reported, independently; the answer is 200 with one result per event.
#[utoipa::path(post, path = "/v1/events/{source}", tag = "ingest",
    params(("source" = String, Path, description = "order, status, restaurant or consumer")),
    request_body(description = "A JSON array of events, or NDJSON (one event per line)",
        content((Vec<serde_json::Value> = "application/json"), (String = "application/x-ndjson"))),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Per-event results", body = BatchAnswer),
        (status = 400, description = "Malformed JSON array", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "Token lacks the write scope", body = ErrorBody),
        (status = 404, description = "Unknown source", body = ErrorBody),
        (status = 413, description = "Over `server.max_batch_bytes` or `server.max_batch_events`", body = ErrorBody),
        (status = 415, description = "Neither JSON nor NDJSON", body = ErrorBody),
        (status = 422, description = "The body is JSON but not an array", body = ErrorBody),
        (status = 503, description = "Redis unavailable; resend the batch (idempotent)", body = ErrorBody),
    ))]
pub async fn ingest_batch(
    request: HttpRequest,
    payload: web::Payload,
    source: web::Path<String>,
    state: web::Data<AppState>,
    _: WriteAccess,
) -> Result<HttpResponse, ApiError> {
    let source: Source = source.parse()?;
    let framing = batch_framing(&request)?;
    let bytes = read_bounded(&request, payload, state.limits.max_batch_bytes).await?;
    let items = split_batch(&bytes, framing)?;
    let results = state.ingest.ingest_batch(source, items).await?;
    let mut answer = BatchAnswer {
        source: source.as_str(),
        accepted: 0,
        duplicate: 0,
        rejected: 0,
        results: Vec::with_capacity(results.len()),
    };
    for (index, result) in results.into_iter().enumerate() {
        let (status, id, errors) = match result {
            ItemResult::Accepted { id } => {
                answer.accepted += 1;
                ("accepted", Some(id), None)
            }
            ItemResult::Duplicate { id } => {
                answer.duplicate += 1;
                ("duplicate", Some(id), None)
            }
            ItemResult::Rejected(errors) => {
                answer.rejected += 1;
                ("rejected", None, Some(errors.as_slice().to_vec()))
            }
        };
        answer.results.push(BatchItem {
            index,
            status,
            id,
            errors,
        });
    }
    Ok(HttpResponse::Ok().json(answer))
}
