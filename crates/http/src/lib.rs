//! larder's HTTP interface on actix-web: routes, request/response DTOs, the one error type, auth
//! and the OpenAPI document. It knows the use cases and their ports, never an adapter.
//!
//! Key decision: bodies are read by hand (`body`), not by actix's `Json` extractor, so that every
//! failure — size, content type, syntax, shape — answers with the same JSON error shape and the
//! status the API promises (413, 415, 400, 422).

mod auth;
mod body;
mod error;
mod openapi;
mod routes;
mod state;

pub use auth::AccessTokens;
pub use error::{ApiError, ErrorBody};
pub use openapi::ApiDoc;
pub use state::{AppState, Limits};

use actix_web::web;

/// Registers every route on `cfg`; `state` is shared by all workers.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .configure(routes::configure)
            .configure(openapi::configure);
    }
}

/// The answer for routes that do not exist, in the API's JSON error shape.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}
