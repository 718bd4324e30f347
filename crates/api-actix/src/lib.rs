//! The HTTP face of the CRM on actix-web: routes, extractors, middleware and the one
//! response shape.
//!
//! This crate knows the use cases (`app`) and the port traits, never an adapter: the
//! server hands it a [`ApiState`] over whichever [`ports::TenantStore`] it wired.

pub mod auth;
pub mod client_ip;
pub mod content_encoding;
pub mod cursor;
pub mod envelope;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
mod schemas;
mod validation;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpMessage, HttpRequest, web};
use app::auth::AuthSettings;
use app::identity::ClientInfo;
use ports::{HealthCheck, PasswordHasher, PreAuthStore, TenantStore};

/// Largest request body accepted (SPEC §3): larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Everything the API needs from storage: tenant-scoped units of work, the
/// pre-authentication look-ups, and a readiness check.
pub trait Store: TenantStore + PreAuthStore + HealthCheck {}

impl<T: TenantStore + PreAuthStore + HealthCheck> Store for T {}

/// What handlers need.
#[derive(Clone)]
pub struct ApiState<S> {
    /// Opens tenant-scoped units of work; answers pre-authentication look-ups.
    pub store: S,
    /// Password hashing (argon2id).
    pub hasher: Arc<dyn PasswordHasher>,
    /// Session, demo and QR lifetimes.
    pub auth: AuthSettings,
    /// The limiter, the five policies and the trusted proxies.
    pub limits: rate_limit::RateLimits,
    /// The webhook sender (one per worker thread) and the rotation grace period.
    pub webhooks: routes::webhooks::WebhookApi,
    /// `GET /metrics`: the renderer and the optional scrape token.
    pub metrics: metrics::MetricsEndpoint,
}

impl<S: std::fmt::Debug> std::fmt::Debug for ApiState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.store)
            .field("auth", &self.auth)
            .field("limits", &self.limits)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

/// Where a request came from: user agent (cut to 300 characters) and peer address.
#[must_use]
pub fn client_info(req: &HttpRequest) -> ClientInfo {
    ClientInfo {
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(300).collect()),
        ip: req
            .extensions()
            .get::<rate_limit::ClientAddress>()
            .map(|client| client.0)
            .or_else(|| req.peer_addr().map(|addr| addr.ip()))
            .map(|ip| ip.to_string()),
    }
}

/// Registers every route, extractor configuration and fallback on `cfg`.
pub fn configure<S: Store>(cfg: &mut web::ServiceConfig, state: ApiState<S>) {
    let metrics = state.metrics.clone();
    cfg.app_data(web::Data::new(state))
        .app_data(error::json_config())
        .app_data(error::path_config())
        .app_data(error::query_config())
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .configure(routes::health::configure::<S>)
        .configure(openapi::configure)
        .configure(|cfg| metrics::configure(cfg, metrics))
        .configure(routes::qr::configure_page)
        .service(
            web::scope("/v1")
                .configure(routes::batch::configure::<S>)
                .configure(routes::leads::configure::<S>)
                .configure(routes::contacts::configure::<S>)
                .configure(routes::companies::configure::<S>)
                .configure(routes::pipelines::configure::<S>)
                .configure(routes::auth::configure::<S>)
                .configure(routes::api_keys::configure::<S>)
                .configure(routes::members::configure::<S>)
                .configure(routes::invitations::configure::<S>)
                .configure(routes::qr::configure::<S>)
                .configure(routes::webhooks::configure::<S>),
        );
}

/// The complete application: routes plus the request-context middleware (request id,
/// envelope safety net, access log) and the 404 fallback.
pub fn app<S: Store>(
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
    // Outermost last: request context (id, envelope, log), then rate limits (a refused
    // request reserves no idempotency key), then the refusal of compressed bodies (before
    // any body is read), then idempotency (reads the body; the extractor looks the key up
    // in the request's unit of work), then the copy of JSON bodies that lets a body that
    // is not JSON answer INVALID_JSON whatever its shape (error::keep_json_body), then
    // the routes.
    // awc is single-threaded: each worker thread (each call of this function) gets its own
    // webhook sender.
    let sender = routes::webhooks::SenderHandle((state.webhooks.make_sender)());
    App::new()
        .app_data(sender)
        .wrap(actix_web::middleware::from_fn(error::keep_json_body))
        .wrap(idempotency::Idempotency::<S>::new())
        .wrap(content_encoding::IdentityOnly)
        .wrap(rate_limit::RateLimit::new(state.limits.clone()))
        .wrap(middleware::RequestContext)
        .configure(|cfg| configure(cfg, state))
        .default_service(web::to(error::not_found))
}
