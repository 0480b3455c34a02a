//! `GET /real-time-fs/list`: the feature views with their features, windows, sources and entity
//! counts; with `view`, also a page of that view's entity keys (SCAN, never `KEYS`).

use actix_web::{HttpResponse, web};
use larder_domain::{Aggregate, FeatureKind, FeatureView, FieldType, KeyRef};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{ApiError, AppState, ErrorBody, auth::ReadAccess};

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Page through the entity keys of this view.
    pub view: Option<String>,
    /// Where to continue: the `next_cursor` of the previous page (default: start).
    pub cursor: Option<u64>,
    /// About how many keys to examine for this page (1-1000, default 100).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceSummary {
    pub source: &'static str,
    /// The event field holding the entity key (or the key of the `via` entity).
    pub key: String,
    /// `view.feature` resolving the key, for sources joined through another view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureSummary {
    pub name: String,
    pub agg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `lifetime`, or the window (`24h`, `7d`, …).
    pub window: String,
    /// `integer`, `float`, `boolean`, `text` or `time` (RFC 3339 text).
    #[serde(rename = "type")]
    pub value_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewSummary {
    pub name: String,
    /// The entity key's name in `POST /v1/features/online`.
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub max_age: Option<String>,
    /// Entities the online store holds for this view.
    pub entities: u64,
    pub sources: Vec<SourceSummary>,
    pub features: Vec<FeatureSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureList {
    /// The names accepted as `feature_name` by /real-time-fs/get: the views, then the batch
    /// features materialized by larder-worker (`simple_feature`).
    pub features: Vec<String>,
    pub views: Vec<ViewSummary>,
    /// With `view`: keys of this page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    /// With `view`: pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn type_name(value_type: FieldType) -> &'static str {
    match value_type {
        FieldType::Integer => "integer",
        FieldType::Float => "float",
        FieldType::Boolean => "boolean",
        FieldType::Text => "text",
        FieldType::Time => "time",
    }
}

fn summarize(view: &FeatureView, entities: u64) -> ViewSummary {
    let sources = view
        .sources
        .iter()
        .map(|s| match &s.key {
            KeyRef::Field(field) => SourceSummary {
                source: s.source.as_str(),
                key: field.clone(),
                via: None,
            },
            KeyRef::Via {
                field,
                view,
                feature,
            } => SourceSummary {
                source: s.source.as_str(),
                key: field.clone(),
                via: Some(format!("{view}.{feature}")),
            },
        })
        .collect();
    let features = view
        .features
        .iter()
        .map(|f| {
            let measure = |i: usize| &view.measures[i];
            let (agg, source, field, window) = match &f.kind {
                FeatureKind::Last { source, field, .. } => {
                    ("last", Some(*source), Some(field.clone()), None)
                }
                FeatureKind::Aggregate {
                    aggregate,
                    measure: m,
                    window,
                    ..
                } => {
                    let agg = match aggregate {
                        Aggregate::Count => "count",
                        Aggregate::Sum => "sum",
                        Aggregate::Avg => "avg",
                        Aggregate::Min => "min",
                        Aggregate::Max => "max",
                    };
                    (
                        agg,
                        Some(measure(*m).source),
                        measure(*m).field.clone(),
                        Some(*window),
                    )
                }
                FeatureKind::CountDistinct { measure: m, window } => (
                    "count_distinct",
                    Some(measure(*m).source),
                    measure(*m).field.clone(),
                    Some(*window),
                ),
                FeatureKind::MostFrequent { measure: m } => (
                    "most_frequent",
                    Some(measure(*m).source),
                    measure(*m).field.clone(),
                    None,
                ),
                FeatureKind::Ratio { .. } => ("ratio", None, None, None),
                FeatureKind::MinutesBetween { .. } => ("minutes_between", None, None, None),
            };
            FeatureSummary {
                name: f.name.clone(),
                agg,
                source: source.map(|s| s.as_str()),
                field,
                window: window.map_or_else(|| "lifetime".into(), |w| w.to_string()),
                value_type: type_name(f.value_type),
                description: f.description.clone(),
            }
        })
        .collect();
    ViewSummary {
        name: view.name.clone(),
        key: view.key.clone(),
        description: view.description.clone(),
        max_age: view.max_age.map(|w| w.to_string()),
        entities,
        sources,
        features,
    }
}

/// List the feature views (features, windows, sources, entity counts); with `view`, page
/// through its entity keys.
#[utoipa::path(get, path = "/real-time-fs/list", tag = "features", params(ListQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The views, and with `view` one page of keys", body = FeatureList),
        (status = 400, description = "Bad cursor, limit or view name", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "Unknown view", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    ))]
pub async fn list_features(
    query: Result<web::Query<ListQuery>, actix_web::Error>,
    state: web::Data<AppState>,
    _: ReadAccess,
) -> Result<HttpResponse, ApiError> {
    let query = query.map_err(|e| ApiError::InvalidQuery(format!("bad query: {e}")))?;
    let catalogue = state.lookup.catalogue().await?;
    let mut answer = FeatureList {
        features: catalogue
            .iter()
            .map(|(v, _)| v.name.clone())
            .chain(
                larder_domain::BATCH_FEATURES
                    .iter()
                    .map(|b| b.name.to_owned()),
            )
            .collect(),
        views: catalogue.iter().map(|(v, n)| summarize(v, *n)).collect(),
        items: None,
        next_cursor: None,
    };
    if let Some(view) = &query.view {
        let page = state
            .lookup
            .keys(view, query.cursor.unwrap_or(0), query.limit.unwrap_or(100))
            .await?;
        answer.items = Some(page.keys);
        answer.next_cursor = page.next_cursor.map(|c| c.to_string());
    }
    Ok(HttpResponse::Ok().json(answer))
}
