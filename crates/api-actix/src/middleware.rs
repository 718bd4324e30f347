//! The request-context middleware, applied once around the whole app:
//!
//! 1. picks the request id (the caller's sane `X-Request-Id`, else a new UUID), makes it
//!    current for everything the request runs, and echoes it in the response;
//! 2. puts any error response that is not already in the envelope (actix's own 404/405,
//!    a middleware error) into the envelope, so clients see one shape, always;
//! 3. writes one structured log line per request: id, tenant, credential kind, method,
//!    route pattern, status, latency, and the time the request's statements took in the
//!    database (added up by [`add_database_time`], which the server hooks into the
//!    PostgreSQL adapter).
//!
//! It is also where the request's one [`RequestState`] is made: inserted into the
//! request's extensions before anything else runs, current for the request's task, and
//! read here once more for the log line.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage};
use futures_util::future::LocalBoxFuture;

use crate::error::{ErrorCode, envelope_response};
use crate::request_id;
/// Kept at this path: the server hooks it into the PostgreSQL adapter.
pub use crate::request_state::add_database_time;
use crate::request_state::{AuthenticatedAs, RequestState};

/// The middleware factory.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestContext;

impl<S, B> Transform<S, ServiceRequest> for RequestContext
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = RequestContextService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestContextService {
            service: Rc::new(service),
        }))
    }
}

/// The middleware around one service.
#[derive(Debug)]
pub struct RequestContextService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for RequestContextService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let id = request_id::accept_or_generate(
            req.headers()
                .get(request_id::HEADER)
                .and_then(|v| v.to_str().ok()),
        );
        let service = Rc::clone(&self.service);
        let method = req.method().clone();
        let id_for_scope = id.clone();
        let state = Rc::new(RequestState::default());
        req.extensions_mut().insert(Rc::clone(&state));
        let work = RequestState::scope(Rc::clone(&state), async move {
            let response = match service.call(req).await {
                Ok(response) => response.map_into_boxed_body(),
                Err(error) => {
                    // Only a failing middleware gets here (handlers' errors are already
                    // responses). The request is gone, so hand actix a finished response.
                    let status = error.as_response_error().status_code();
                    tracing::warn!(request_id = %id, %error, "service error");
                    let mut response = envelope_response(
                        ErrorCode::for_status(status),
                        "request failed".to_owned(),
                        None,
                    );
                    set_request_id(response.headers_mut(), &id);
                    return Err(InternalError::from_response(error.to_string(), response).into());
                }
            };
            let mut response = into_envelope_if_bare(response);
            set_request_id(response.headers_mut(), &id);
            // Found once, by the rate limits (without them, asked of actix here).
            let route = state
                .route()
                .or_else(|| response.request().match_pattern())
                .unwrap_or_else(|| "<unmatched>".to_owned());
            let tenant = state
                .tenant()
                .map(|tenant| tenant.to_string())
                .unwrap_or_default();
            let credential = state
                .authenticated_as()
                .map_or("none", AuthenticatedAs::as_str);
            let db_ms = state.database_time().as_secs_f64() * 1000.0;
            let status = response.status().as_u16();
            let elapsed = started.elapsed();
            crate::metrics::record_request(&route, method.as_str(), status, elapsed);
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            tracing::info!(
                target: "crm::access",
                request_id = %id,
                tenant_id = %tenant,
                credential,
                method = %method,
                route = %route,
                status,
                latency_ms,
                db_ms,
                "request"
            );
            Ok(response)
        });
        Box::pin(request_id::scope(id_for_scope, work))
    }
}

fn set_request_id(headers: &mut actix_web::http::header::HeaderMap, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert(HeaderName::from_static(request_id::HEADER), value);
    }
}

/// Error responses that are not JSON were not built by us: wrap them in the envelope.
fn into_envelope_if_bare(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = ErrorCode::for_status(status);
    let message = match code {
        ErrorCode::NotFound => "not found".to_owned(),
        ErrorCode::MethodNotAllowed => "method not allowed on this path".to_owned(),
        ErrorCode::Internal => "internal error".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    let (request, _) = response.into_parts();
    ServiceResponse::new(request, envelope_response(code, message, None))
}
