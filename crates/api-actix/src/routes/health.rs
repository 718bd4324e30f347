//! Liveness and readiness, unversioned and unauthenticated.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::Routes;
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

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(healthz, readyz))]
pub struct ApiDoc;

/// Registers the probes.
pub fn configure<S: crate::Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/healthz", |r| r.get(healthz))
        .resource("/readyz", |r| r.get(readyz::<S>));
}
