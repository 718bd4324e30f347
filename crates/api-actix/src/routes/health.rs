//! Liveness and readiness, unversioned and unauthenticated.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::envelope::respond;
use crate::error::ApiError;

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` when the probe passes.
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Serving", body = crate::envelope::Success<HealthStatus>)))]
pub async fn healthz() -> HttpResponse {
    respond(
        StatusCode::OK,
        HealthStatus {
            status: "ok".into(),
        },
    )
}

/// Readiness: the database answers too.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = crate::envelope::Success<HealthStatus>),
        (status = 503, description = "The database does not answer", body = crate::envelope::Failure),
    ))]
pub async fn readyz<S: crate::Store>(
    state: web::Data<ApiState<S>>,
) -> Result<HttpResponse, ApiError> {
    state.store.check().await?;
    Ok(respond(
        StatusCode::OK,
        HealthStatus {
            status: "ok".into(),
        },
    ))
}

/// Registers the probes.
pub fn configure<S: crate::Store>(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(healthz))
            .default_service(super::method_not_allowed("GET")),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(readyz::<S>))
            .default_service(super::method_not_allowed("GET")),
    );
}
