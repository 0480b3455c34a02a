//! The original API's single-event routes: `POST /order-event/` and its three siblings.

use actix_web::{HttpRequest, HttpResponse, web};
use larder_domain::{ConsumerEvent, OrderEvent, RestaurantEvent, Source, StatusEvent};
use larder_usecases::WriteOutcome;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    ApiError, AppState, ErrorBody,
    auth::WriteAccess,
    body::{parse_json, read_bounded, require_json},
};

/// The answer to an ingested event. A resent identical event is a success marked `duplicate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAnswer {
    /// `accepted` (stored now) or `duplicate` (already stored; nothing changed).
    pub status: &'static str,
    pub source: &'static str,
    pub id: String,
}

type Handler = fn(
    HttpRequest,
    web::Payload,
    web::Data<AppState>,
    WriteAccess,
) -> futures_util::future::LocalBoxFuture<'static, Result<HttpResponse, ApiError>>;

pub(crate) const ROUTES: [(&str, Handler); 4] = [
    ("/order-event/", |r, p, s, a| {
        Box::pin(order_event(r, p, s, a))
    }),
    ("/status-event/", |r, p, s, a| {
        Box::pin(status_event(r, p, s, a))
    }),
    ("/restaurant-event/", |r, p, s, a| {
        Box::pin(restaurant_event(r, p, s, a))
    }),
    ("/consumer-event/", |r, p, s, a| {
        Box::pin(consumer_event(r, p, s, a))
    }),
];

pub(crate) fn outcome_name(outcome: WriteOutcome) -> &'static str {
    match outcome {
        WriteOutcome::Accepted => "accepted",
        WriteOutcome::Duplicate => "duplicate",
    }
}

async fn ingest(
    source: Source,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_json(&request)?;
    let bytes = read_bounded(&request, payload, state.limits.max_event_bytes).await?;
    let value = parse_json(&bytes)?;
    let (id, outcome) = state.ingest.ingest_one(source, &value).await?;
    Ok(HttpResponse::Ok().json(IngestAnswer {
        status: outcome_name(outcome),
        source: source.as_str(),
        id,
    }))
}

/// Defines one documented single-event route: the four differ only in path, source and body.
macro_rules! single_event_route {
    ($handler:ident, $path:literal, $body:ty, $source:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "ingest", request_body = $body,
            security((), ("bearer" = [])),
            responses(
                (status = 200, description = "Stored, or a duplicate of a stored event", body = IngestAnswer),
                (status = 400, description = "Malformed JSON", body = ErrorBody),
                (status = 401, description = "Missing or unknown token", body = ErrorBody),
                (status = 403, description = "Token lacks the write scope", body = ErrorBody),
                (status = 413, description = "Body over `server.max_event_bytes`", body = ErrorBody),
                (status = 415, description = "Not application/json", body = ErrorBody),
                (status = 422, description = "Wrong types or failed validation; names each field", body = ErrorBody),
                (status = 503, description = "Redis unavailable or the event log full; retry (idempotent)", body = ErrorBody),
            ))]
        pub async fn $handler(
            request: HttpRequest,
            payload: web::Payload,
            state: web::Data<AppState>,
            _: WriteAccess,
        ) -> Result<HttpResponse, ApiError> {
            ingest($source, request, payload, state).await
        }
    };
}

single_event_route!(
    order_event,
    "/order-event/",
    OrderEvent,
    Source::Order,
    "Ingest one order."
);
single_event_route!(
    status_event,
    "/status-event/",
    StatusEvent,
    Source::Status,
    "Ingest one order status change."
);
single_event_route!(
    restaurant_event,
    "/restaurant-event/",
    RestaurantEvent,
    Source::Restaurant,
    "Ingest one restaurant record (a changed record is an update)."
);
single_event_route!(
    consumer_event,
    "/consumer-event/",
    ConsumerEvent,
    Source::Consumer,
    "Ingest one consumer record (a changed record is an update)."
);
