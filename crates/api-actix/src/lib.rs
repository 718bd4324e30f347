//! The HTTP face of the CRM on actix-web: routes, extractors, middleware and the one
//! response shape.
//!
//! This crate knows the use cases (`app`) and the port traits, never an adapter: the
//! server hands it a [`ApiState`] over whichever [`ports::TenantStore`] it wired.

pub mod auth;
pub mod envelope;
pub mod error;
pub mod middleware;
pub mod openapi;
pub mod request_id;
pub mod routes;
mod schemas;
mod validation;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, web};
use ports::{HealthCheck, TenantStore};

/// Largest request body accepted (SPEC §3): larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What handlers need: the store every unit of work is opened from.
#[derive(Clone, Debug)]
pub struct ApiState<S> {
    /// Opens tenant-scoped units of work.
    pub store: S,
}

/// Registers every route, extractor configuration and fallback on `cfg`.
pub fn configure<S: TenantStore + HealthCheck>(cfg: &mut web::ServiceConfig, state: ApiState<S>) {
    cfg.app_data(web::Data::new(state))
        .app_data(error::json_config())
        .app_data(error::path_config())
        .app_data(error::query_config())
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .configure(routes::health::configure::<S>)
        .configure(openapi::configure)
        .service(web::scope("/v1").configure(routes::contacts::configure::<S>));
}

/// The complete application: routes plus the request-context middleware (request id,
/// envelope safety net, access log) and the 404 fallback.
pub fn app<S: TenantStore + HealthCheck>(
    state: ApiState<S>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .wrap(middleware::RequestContext)
        .configure(|cfg| configure(cfg, state))
        .default_service(web::to(error::not_found))
}
