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
pub mod events;
pub mod idempotency;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod rate_limit;
pub mod request_id;
pub mod request_state;
pub mod route_table;
pub mod routes;
mod schemas;
pub mod state;
mod validation;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpRequest, web};
use app::identity::ClientInfo;

pub use state::{ApiState, Store};

/// Largest request body accepted (SPEC §3): larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Where a request came from: user agent (cut to 300 characters) and peer address.
#[must_use]
pub fn client_info(req: &HttpRequest) -> ClientInfo {
    ClientInfo {
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(300).collect()),
        ip: request_state::RequestState::of(req)
            .client()
            .or_else(|| req.peer_addr().map(|addr| addr.ip()))
            .map(|ip| ip.to_string()),
    }
}

/// Registers every route, extractor configuration and fallback on `cfg`: the documented
/// routes (`routes::configure`), and the three unversioned endpoints the OpenAPI document
/// leaves out on purpose: itself, `/metrics` (Prometheus text) and `/login/qr` (HTML).
pub fn configure<S: Store>(cfg: &mut web::ServiceConfig, state: ApiState<S>) {
    let metrics = state.metrics.clone();
    cfg.app_data(web::Data::new(state))
        .app_data(error::json_config(openapi::requires_credential))
        .app_data(error::path_config())
        .app_data(error::query_config())
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .configure(|cfg| {
            let served = routes::configure::<S>(cfg);
            // What the rate limits and the access log ask "which route is this?" of.
            let table = route_table::RouteTable::new(served.iter().map(|r| r.path.as_str()));
            cfg.app_data(web::Data::new(table));
        })
        .configure(openapi::configure)
        .configure(|cfg| metrics::configure(cfg, metrics))
        .configure(routes::qr::configure_page);
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
    let sender = state::SenderHandle((state.webhooks.make_sender)());
    App::new()
        .app_data(sender)
        .wrap(actix_web::middleware::from_fn(error::keep_json_body))
        .wrap(idempotency::Idempotency)
        .wrap(content_encoding::IdentityOnly)
        .wrap(rate_limit::RateLimit::new(state.limits.clone()))
        .wrap(middleware::RequestContext)
        .configure(|cfg| configure(cfg, state))
        .default_service(web::to(error::not_found))
}
