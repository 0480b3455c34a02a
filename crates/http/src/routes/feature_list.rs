//! `GET /real-time-fs/list`: the features and a page of stored entries, without `KEYS`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{ApiError, AppState, ErrorBody, auth::ReadAccess};

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Where to continue: the `next_cursor` of the previous page (default: start).
    pub cursor: Option<u64>,
    /// About how many keys to examine for this page (1-1000, default 100).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureEntry {
    pub feature: String,
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureList {
    /// Every feature that can be looked up.
    pub features: Vec<&'static str>,
    /// Stored `(feature, key)` pairs of this page.
    pub items: Vec<FeatureEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// List the real-time features and page through the stored ones (SCAN, never `KEYS`).
#[utoipa::path(get, path = "/real-time-fs/list", tag = "features", params(ListQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Features and one page of stored entries", body = FeatureList),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ))]
pub async fn list_features(
    query: Result<web::Query<ListQuery>, actix_web::Error>,
    state: web::Data<AppState>,
    _: ReadAccess,
) -> Result<HttpResponse, ApiError> {
    let query = query.map_err(|e| ApiError::InvalidName(format!("bad query: {e}")))?;
    let page = state
        .lookup
        .list(query.cursor.unwrap_or(0), query.limit.unwrap_or(100))
        .await?;
    Ok(HttpResponse::Ok().json(FeatureList {
        features: page.features,
        items: page
            .entries
            .into_iter()
            .map(|(feature, key)| FeatureEntry { feature, key })
            .collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}
