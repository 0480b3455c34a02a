//! `GET /real-time-fs/get/{feature_name}/{key}`, as in the original API.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{ApiError, AppState, ErrorBody, auth::ReadAccess};

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureAnswer {
    pub key: String,
    /// The feature's fields, typed (numbers as numbers).
    #[schema(value_type = Object)]
    pub value: serde_json::Map<String, serde_json::Value>,
}

/// Look up one real-time feature of one entity, e.g. `restaurant` of a restaurant id.
#[utoipa::path(get, path = "/real-time-fs/get/{feature_name}/{key}", tag = "features",
    params(
        ("feature_name" = String, Path, description = "A feature listed by /real-time-fs/list"),
        ("key" = String, Path, description = "Entity key: 1-128 chars of A-Z a-z 0-9 _ . -"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The feature's value", body = FeatureAnswer),
        (status = 400, description = "Feature name or key outside the allowed alphabet", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "Unknown feature, or no value for this key", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ))]
pub async fn get_feature(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    _: ReadAccess,
) -> Result<HttpResponse, ApiError> {
    let (feature, key) = path.into_inner();
    let value = state.lookup.get(&feature, &key).await?;
    Ok(HttpResponse::Ok().json(FeatureAnswer { key, value }))
}
