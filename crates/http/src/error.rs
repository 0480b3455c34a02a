//! The one error type of the API. Each variant has a stable code and status in one table
//! (`code_and_status`); 5xx bodies are opaque while the cause is logged.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use larder_domain::{FieldError, FieldErrors, UnknownSource};
use larder_usecases::{IngestError, LookupError, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not valid JSON: {0}")]
    BadJson(String),
    #[error("the event is invalid")]
    InvalidEvent(FieldErrors),
    #[error("the body has the wrong shape: {0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    UnknownSource(#[from] UnknownSource),
    #[error("unknown feature view or feature `{0}`")]
    UnknownFeature(String),
    #[error("no value for this key")]
    NotFound,
    #[error("{0}")]
    UnknownJob(String),
    #[error("no such route")]
    RouteNotFound,
    #[error("the body exceeds the limit of {limit} {unit}")]
    PayloadTooLarge { limit: usize, unit: &'static str },
    #[error("content type must be {expected}")]
    UnsupportedMediaType { expected: &'static str },
    #[error("a bearer token is required")]
    Unauthorized,
    #[error("the token does not grant the {scope} scope")]
    Forbidden { scope: &'static str },
    #[error("the store is unavailable; retry later")]
    StoreUnavailable(#[source] StoreError),
    #[error("the event log is full until the lake writer catches up; retry later")]
    Backlogged,
    #[error("internal error")]
    Internal(String),
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `bad_json`, `invalid_event`, `payload_too_large`, …
    pub code: &'static str,
    pub message: String,
    /// For `invalid_event`: every rejected field and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldError>>,
}

impl ApiError {
    fn code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::BadJson(_) => ("bad_json", StatusCode::BAD_REQUEST),
            ApiError::InvalidName(_) => ("invalid_name", StatusCode::BAD_REQUEST),
            ApiError::InvalidQuery(_) => ("invalid_query", StatusCode::BAD_REQUEST),
            ApiError::InvalidRequest(_) => ("invalid_request", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::InvalidEvent(_) => ("invalid_event", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::InvalidBody(_) => ("invalid_body", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::UnknownSource(_) => ("unknown_source", StatusCode::NOT_FOUND),
            ApiError::UnknownFeature(_) => ("unknown_feature", StatusCode::NOT_FOUND),
            ApiError::NotFound => ("not_found", StatusCode::NOT_FOUND),
            ApiError::UnknownJob(_) => ("unknown_job", StatusCode::NOT_FOUND),
            ApiError::RouteNotFound => ("route_not_found", StatusCode::NOT_FOUND),
            ApiError::PayloadTooLarge { .. } => {
                ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE)
            }
            ApiError::UnsupportedMediaType { .. } => {
                ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            ApiError::Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED),
            ApiError::Forbidden { .. } => ("forbidden", StatusCode::FORBIDDEN),
            ApiError::StoreUnavailable(_) => ("store_unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Backlogged => ("backlog_full", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code_and_status().1
    }

    fn error_response(&self) -> HttpResponse {
        let (code, status) = self.code_and_status();
        let message = match self {
            ApiError::StoreUnavailable(cause) => {
                tracing::warn!(error = %cause, "store unavailable");
                self.to_string()
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                self.to_string()
            }
            _ => self.to_string(),
        };
        let fields = match self {
            ApiError::InvalidEvent(errors) => Some(errors.as_slice().to_vec()),
            _ => None,
        };
        let mut response = HttpResponse::build(status);
        match self {
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::StoreUnavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::Backlogged => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        response.json(ErrorBody {
            code,
            message,
            fields,
        })
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Invalid(errors) => ApiError::InvalidEvent(errors),
            IngestError::TooManyEvents { max, .. } => ApiError::PayloadTooLarge {
                limit: max,
                unit: "events",
            },
            IngestError::Store(error) => error.into(),
        }
    }
}

impl From<LookupError> for ApiError {
    fn from(error: LookupError) -> Self {
        match error {
            LookupError::InvalidName(error) => ApiError::InvalidName(error.to_string()),
            LookupError::UnknownFeature(name) => ApiError::UnknownFeature(name),
            LookupError::NotFound => ApiError::NotFound,
            LookupError::InvalidRequest(message) => ApiError::InvalidRequest(message),
            LookupError::TooManyEntities { max } => ApiError::PayloadTooLarge {
                limit: max,
                unit: "entities",
            },
            LookupError::Store(error) => error.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => ApiError::StoreUnavailable(error),
            StoreError::Backlogged(max) => {
                tracing::warn!(max, "event log backlog full: is larder-worker running?");
                ApiError::Backlogged
            }
            StoreError::Failed(cause) => ApiError::Internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::{App, test, web};
    use larder_usecases::{
        IngestService, LookupService, MockEventStore, MockOnlineStore, MockReadiness,
    };
    use serde_json::Value;

    use crate::{AccessTokens, AppState, Limits};

    fn no_views() -> larder_domain::FeatureViews {
        larder_domain::FeatureViews::from_config(larder_domain::ViewsConfig { views: Vec::new() })
            .expect("no views is valid")
    }

    fn state(store: MockEventStore) -> web::Data<AppState> {
        web::Data::new(AppState {
            ingest: Arc::new(IngestService::new(
                Arc::new(store),
                Arc::new(no_views()),
                Arc::default(),
                10,
            )),
            lookup: Arc::new(LookupService::new(
                Arc::new(MockOnlineStore::new()),
                Arc::new(no_views()),
                Arc::default(),
                10,
                0,
            )),
            readiness: Arc::new(MockReadiness::new()),
            jobs: Arc::new(larder_usecases::MockJobQueue::new()),
            tokens: AccessTokens::default(),
            limits: Limits {
                max_event_bytes: 1 << 20,
                max_batch_bytes: 1 << 20,
            },
        })
    }

    #[actix_web::test]
    async fn a_store_outage_is_a_503_with_an_opaque_json_body() {
        let mut store = MockEventStore::new();
        store.expect_append().returning(|_, _| {
            Err(larder_usecases::StoreError::Unavailable(
                "connection refused at 10.0.0.7:6379".into(),
            ))
        });
        let app = test::init_service(App::new().configure(crate::configure(state(store)))).await;
        let request = test::TestRequest::post()
            .uri("/v1/events/status")
            .insert_header(("content-type", "application/json"))
            .set_payload(
                r#"[{"created_at":"2019-01-25T01:05:07Z","order_id":"o","status_id":"s","value":"PLACED"}]"#,
            )
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 503);
        let body: Value = test::read_body_json(response).await;
        assert_eq!(body["code"], "store_unavailable");
        assert!(!body.to_string().contains("10.0.0.7"));
    }

    #[actix_web::test]
    async fn an_unexpected_store_answer_is_a_500_without_details() {
        let mut store = MockEventStore::new();
        store.expect_append().returning(|_, _| {
            Err(larder_usecases::StoreError::Failed(
                "ERR script error at line 12".into(),
            ))
        });
        let app = test::init_service(App::new().configure(crate::configure(state(store)))).await;
        let request = test::TestRequest::post()
            .uri("/status-event/")
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"created_at":"2019-01-25T01:05:07Z","order_id":"o","status_id":"s","value":"PLACED"}"#)
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 500);
        let body: Value = test::read_body_json(response).await;
        assert_eq!(body["code"], "internal");
        assert!(!body.to_string().contains("script"));
    }
}
