//! `GET /metrics` (SPEC §4 ops): Prometheus text format, rendered by the recorder the
//! server installs (`metrics-exporter-prometheus`). This module records what the HTTP
//! layer sees and serves the scrape; the pool and queue figures are refreshed by the
//! server's [`MetricsSource`] just before each rendering.
//!
//! Recorded here: `http_requests_total{route,method,status}` and
//! `http_request_duration_seconds{route,method}` (a histogram), by route *pattern*
//! (`/v1/contacts/{id}`, or `<unmatched>`), so the label set stays bounded whatever the
//! paths; and `rate_limit_refusals_total{policy}` (in `rate_limit`).
//!
//! The scrape is not counted against any rate-limit policy (monitoring must not be
//! locked out by the traffic it watches); with `METRICS_TOKEN` set it needs
//! `Authorization: Bearer <token>`, compared in constant time.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::future::BoxFuture;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, unauthenticated};

/// The path, also as the route pattern the rate limiter exempts.
pub const PATH: &str = "/metrics";

/// Renders the exposition; implemented by the composition root, which owns the recorder
/// and knows the stores.
pub trait MetricsSource: Send + Sync {
    /// Refreshes the gauges read at scrape time and renders everything.
    fn scrape(&self) -> BoxFuture<'_, String>;
}

/// What `GET /metrics` serves.
#[derive(Clone)]
pub struct MetricsEndpoint {
    /// The renderer.
    pub source: Arc<dyn MetricsSource>,
    /// When set, a scrape needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// Records one finished request.
pub(crate) fn record_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let route = route.to_owned();
    let method = method.to_owned();
    metrics::counter!(
        "http_requests_total",
        "route" => route.clone(),
        "method" => method.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "http_request_duration_seconds",
        "route" => route,
        "method" => method
    )
    .record(elapsed.as_secs_f64());
}

fn authorised(req: &HttpRequest, token: &str) -> bool {
    crate::request_state::bearer_token(req.headers())
        .is_some_and(|presented| bool::from(presented.as_bytes().ct_eq(token.as_bytes())))
}

async fn scrape(
    req: HttpRequest,
    endpoint: web::Data<MetricsEndpoint>,
) -> Result<HttpResponse, ApiError> {
    if let Some(token) = &endpoint.token
        && !authorised(&req, token)
    {
        return Err(unauthenticated());
    }
    let body = endpoint.source.scrape().await;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(body))
}

/// Registers `GET /metrics`.
pub fn configure(cfg: &mut web::ServiceConfig, endpoint: MetricsEndpoint) {
    cfg.app_data(web::Data::new(endpoint)).service(
        web::resource(PATH)
            .route(web::get().to(scrape))
            .default_service(crate::routes::method_not_allowed("GET")),
    );
}
