//! `POST /v1/features/online`: many entities × many features in one call, in the shape Feast's
//! feature server answers (`metadata.feature_names`, then per-feature values, statuses and
//! event timestamps).

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, http::header::ContentType, web};
use larder_domain::{Timestamp, ValueStatus};
use larder_usecases::{OnlineAnswer, OnlineRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::query::parse_as_of;
use crate::{
    ApiError, AppState, ErrorBody,
    auth::ReadAccess,
    body::{parse_body, read_bounded, require_json},
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
    let body: OnlineFeaturesRequest = parse_body(&bytes)?;
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
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(answer_json(&answer)?))
}

/// `answer` as JSON in the shape of [`OnlineFeaturesResponse`], written directly: serde wrote
/// each cell's timestamp through `Display` and scanned it for characters to escape, a third of
/// the route's CPU at 100 entities × 10 features. Statuses and timestamps are ASCII without
/// anything to escape; names and values still go through serde.
fn answer_json(answer: &OnlineAnswer) -> Result<Vec<u8>, ApiError> {
    let cells: usize = answer.columns.iter().map(|c| c.values.len()).sum();
    let mut out = Vec::with_capacity(256 + cells * 48);
    let names: Vec<&str> = answer.columns.iter().map(|c| c.name.as_str()).collect();
    out.extend_from_slice(br#"{"metadata":{"feature_names":"#);
    serde_json::to_writer(&mut out, &names).map_err(serialization)?;
    out.extend_from_slice(br#","as_of":"#);
    let mut times = TimeTexts::new();
    if !times.write(&mut out, answer.as_of_ms) {
        out.extend_from_slice(br#""""#);
    }
    out.extend_from_slice(br#"},"results":["#);
    for (i, column) in answer.columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"values":"#);
        serde_json::to_writer(&mut out, &column.values).map_err(serialization)?;
        out.extend_from_slice(br#","statuses":["#);
        for (j, status) in column.statuses.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(status_name(*status).as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(br#"],"event_timestamps":["#);
        for (j, time) in column.times_ms.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            if !time.is_some_and(|ms| times.write(&mut out, ms)) {
                out.extend_from_slice(b"null");
            }
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// The RFC 3339 texts of an answer's event times, in 256 slots by the time's low bits: an
/// entity's aggregates share its newest event time, so most cells repeat a text written before
/// (working each one out was a sixth of the route's CPU at 100 entities × 10 features).
struct TimeTexts {
    slots: Vec<(i64, [u8; 24])>,
}

impl TimeTexts {
    fn new() -> Self {
        Self {
            slots: vec![(0, *b"1970-01-01T00:00:00.000Z"); 256],
        }
    }

    /// [`Timestamp::rfc3339_ascii_of_millis`] of `ms`.
    fn text(&mut self, ms: i64) -> Option<[u8; 24]> {
        let slot = &mut self.slots[(ms & 255) as usize];
        if slot.0 != ms {
            *slot = (ms, Timestamp::rfc3339_ascii_of_millis(ms)?);
        }
        Some(slot.1)
    }

    /// `ms` as a JSON string of its RFC 3339 text; `false`, writing nothing, when no instant is
    /// `ms` after the epoch.
    fn write(&mut self, out: &mut Vec<u8>, ms: i64) -> bool {
        out.push(b'"');
        if let Some(text) = self.text(ms) {
            out.extend_from_slice(&text);
        } else if let Some(time) = Timestamp::from_millis(ms) {
            // Outside years 0–9999: chrono's longer text.
            out.extend_from_slice(time.to_string().as_bytes());
        } else {
            out.pop();
            return false;
        }
        out.push(b'"');
        true
    }
}

fn serialization(error: serde_json::Error) -> ApiError {
    ApiError::Internal(format!("could not write the answer: {error}"))
}

#[cfg(test)]
mod tests {
    use larder_usecases::OnlineColumn;
    use serde_json::json;

    use super::*;

    /// The documented response, built from the DTOs the OpenAPI schema describes.
    fn documented(answer: &OnlineAnswer) -> OnlineFeaturesResponse {
        let time = |ms: i64| Timestamp::from_millis(ms).map(|t| t.to_string());
        OnlineFeaturesResponse {
            metadata: OnlineMetadata {
                feature_names: answer.columns.iter().map(|c| c.name.clone()).collect(),
                as_of: time(answer.as_of_ms).unwrap_or_default(),
            },
            results: answer
                .columns
                .iter()
                .map(|column| OnlineResult {
                    values: column.values.clone(),
                    statuses: column.statuses.iter().copied().map(status_name).collect(),
                    event_timestamps: column.times_ms.iter().map(|t| t.and_then(time)).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_written_answer_is_the_documented_json() {
        let column = |name: &str, values: Vec<Value>, times: Vec<Option<i64>>| OnlineColumn {
            name: name.to_owned(),
            statuses: values
                .iter()
                .map(|v| match v {
                    Value::Null => ValueStatus::NotFound,
                    _ => ValueStatus::Present,
                })
                .collect(),
            values,
            times_ms: times,
        };
        let answer = OnlineAnswer {
            as_of_ms: 1_548_000_000_123,
            columns: vec![
                column(
                    "merchant_id",
                    vec![json!("r1"), json!("r\"2")],
                    vec![None, None],
                ),
                column(
                    "restaurant:avg_ticket",
                    vec![json!(60.5), Value::Null],
                    // The second is past year 9999: written the long way.
                    vec![Some(1_485_175_950_910), Some(253_402_300_800_000)],
                ),
                column(
                    "restaurant:name",
                    vec![json!("Bar \"Zé\"\n"), json!(3)],
                    vec![Some(0), Some(-1)],
                ),
                // Times sharing a slot of the answer's texts, repeated, and out of range.
                column(
                    "restaurant:orders_24h",
                    vec![json!(1), json!(2)],
                    vec![Some(1_485_175_950_910 + 256), Some(i64::MIN)],
                ),
                column(
                    "restaurant:revenue_24h",
                    vec![json!(3), json!(4)],
                    vec![Some(1_485_175_950_910), Some(1_485_175_950_910 + 256)],
                ),
            ],
        };
        let written: Value = serde_json::from_slice(&answer_json(&answer).unwrap()).unwrap();
        let expected = serde_json::to_value(documented(&answer)).unwrap();
        assert_eq!(written, expected);
        assert_eq!(
            expected["results"][1]["event_timestamps"][0],
            json!("2017-01-23T12:52:30.910Z")
        );
        let empty = OnlineAnswer {
            as_of_ms: 0,
            columns: Vec::new(),
        };
        let written: Value = serde_json::from_slice(&answer_json(&empty).unwrap()).unwrap();
        assert_eq!(written, serde_json::to_value(documented(&empty)).unwrap());
    }
}
