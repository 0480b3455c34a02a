//! `GET /real-time-fs/get/{feature_name}/{key}`, as in the original API: every feature of one
//! view for one entity.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::query::{AsOfQuery, parse_as_of};
use crate::{ApiError, AppState, ErrorBody, auth::ReadAccess};

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureAnswer {
    pub key: String,
    /// `id` and every feature of the view: counts as integers, amounts as floats, times as
    /// RFC 3339 text, null where there is no value (or it is older than the view's max age).
    #[schema(value_type = Object)]
    pub value: serde_json::Map<String, serde_json::Value>,
}

/// Look up one entity's features: `restaurant`, `consumer` or `order` (see /real-time-fs/list).
#[utoipa::path(get, path = "/real-time-fs/get/{feature_name}/{key}", tag = "features",
    params(
        ("feature_name" = String, Path, description = "A feature view listed by /real-time-fs/list"),
        ("key" = String, Path, description = "Entity key: 1-128 chars of A-Z a-z 0-9 _ . -"),
        AsOfQuery,
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The entity's features", body = FeatureAnswer),
        (status = 400, description = "Name or key outside the allowed alphabet, or a bad as_of", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "Unknown view, or no such entity", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ))]
pub async fn get_feature(
    path: web::Path<(String, String)>,
    query: Result<web::Query<AsOfQuery>, actix_web::Error>,
    state: web::Data<AppState>,
    _: ReadAccess,
) -> Result<HttpResponse, ApiError> {
    let query = query.map_err(|e| ApiError::InvalidQuery(e.to_string()))?;
    let as_of = parse_as_of(query.as_of.as_deref())?;
    let (view, key) = path.into_inner();
    let value = state.lookup.get(&view, &key, as_of).await?;
    Ok(HttpResponse::Ok().json(FeatureAnswer { key, value }))
}
