//! The OpenAPI document (`/openapi.json`) and Swagger UI (`/docs`, assets vendored in the binary).

use actix_web::{HttpResponse, http::header, web};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes::{
    feature_get, feature_list, features_online, health, ingest_batch, ingest_one, jobs,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "larder", description = "A feature store for the iFood event streams."),
    paths(
        ingest_one::order_event, ingest_one::status_event, ingest_one::restaurant_event,
        ingest_one::consumer_event, ingest_batch::ingest_batch, feature_get::get_feature,
        feature_list::list_features, features_online::online_features, jobs::enqueue_job, jobs::enqueue_training_set, jobs::job_status, health::health, health::ready,
    ),
    components(schemas(larder_domain::FieldError, larder_domain::OrderStatus)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/docs",
        web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, "/docs/"))
                .finish()
        }),
    )
    .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", ApiDoc::openapi()));
}
