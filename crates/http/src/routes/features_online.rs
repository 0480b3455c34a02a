//! `POST /v1/features/online`: many entities × many features in one call, in the shape Feast's
//! feature server answers (`metadata.feature_names`, then per-feature values, statuses and
//! event timestamps).

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use larder_domain::{Timestamp, ValueStatus};
use larder_usecases::OnlineRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::query::parse_as_of;
use crate::{
    ApiError, AppState, ErrorBody,
    auth::ReadAccess,
    body::{parse_json, read_bounded, require_json},
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FeatureSelection {
    /// `view:feature` references, or view names for all their features.
    List(Vec<String>),
    /// One view name: all its features.
    View(String),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnlineFeaturesRequest {
    pub features: FeatureSelection,
    /// Entity key name → keys, one per row; every list the same length. Keys may be strings or
    /// numbers.
    #[schema(value_type = Object)]
    pub entities: BTreeMap<String, Vec<Value>>,
    /// RFC 3339 instant windows end at (default: the newest event time the store has seen).
    pub as_of: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnlineMetadata {
    /// Entity key columns first, then `view:feature` for each requested feature.
    pub feature_names: Vec<String>,
    /// The instant windows were evaluated at.
    pub as_of: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnlineResult {
    #[schema(value_type = Vec<Object>)]
    pub values: Vec<Value>,
    /// `PRESENT`, `NOT_FOUND` or `OUTSIDE_MAX_AGE`.
    pub statuses: Vec<&'static str>,
    /// Event time each value stems from (RFC 3339), null for entity keys and missing values.
    pub event_timestamps: Vec<Option<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnlineFeaturesResponse {
    pub metadata: OnlineMetadata,
    pub results: Vec<OnlineResult>,
}

fn status_name(status: ValueStatus) -> &'static str {
    match status {
        ValueStatus::Present => "PRESENT",
        ValueStatus::NotFound => "NOT_FOUND",
        ValueStatus::OutsideMaxAge => "OUTSIDE_MAX_AGE",
    }
}

fn rfc3339(ms: i64) -> Option<String> {
    Timestamp::from_millis(ms).map(|t| t.to_string())
}

fn key_text(value: Value) -> Result<String, ApiError> {
    match value {
        Value::String(text) => Ok(text),
        Value::Number(number) => Ok(number.to_string()),
        other => Err(ApiError::InvalidRequest(format!(
            "entity keys must be strings or numbers, got {other}"
        ))),
    }
}

/// Look up features of many entities in one call (one Redis round trip for the entities).
#[utoipa::path(post, path = "/v1/features/online", tag = "features",
    request_body = OnlineFeaturesRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "One result per column, one cell per entity row", body = OnlineFeaturesResponse),
        (status = 400, description = "Malformed JSON, bad key or as_of", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "Unknown view or feature", body = ErrorBody),
        (status = 413, description = "Over `server.max_lookup_entities` rows", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Missing or uneven entity columns, wrong shape", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ))]
pub async fn online_features(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    _: ReadAccess,
) -> Result<HttpResponse, ApiError> {
    require_json(&request)?;
    let bytes = read_bounded(&request, payload, state.limits.max_event_bytes).await?;
    let body: OnlineFeaturesRequest = serde_json::from_value(parse_json(&bytes)?)
        .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    let features = match body.features {
        FeatureSelection::List(list) => list,
        FeatureSelection::View(view) => vec![view],
    };
    let mut entities = BTreeMap::new();
    for (name, keys) in body.entities {
        entities.insert(
            name,
            keys.into_iter()
                .map(key_text)
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    let as_of = parse_as_of(body.as_of.as_deref())?;
    let answer = state
        .lookup
        .online(&OnlineRequest {
            features,
            entities,
            as_of,
        })
        .await?;
    let response = OnlineFeaturesResponse {
        metadata: OnlineMetadata {
            feature_names: answer.columns.iter().map(|c| c.name.clone()).collect(),
            as_of: rfc3339(answer.as_of_ms).unwrap_or_default(),
        },
        results: answer
            .columns
            .into_iter()
            .map(|column| OnlineResult {
                values: column.values,
                statuses: column.statuses.into_iter().map(status_name).collect(),
                event_timestamps: column
                    .times_ms
                    .into_iter()
                    .map(|t| t.and_then(rfc3339))
                    .collect(),
            })
            .collect(),
    };
    Ok(HttpResponse::Ok().json(response))
}
