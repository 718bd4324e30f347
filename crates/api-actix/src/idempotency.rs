//! `Idempotency-Key` on POST (SPEC §3), applied once around the whole app.
//!
//! A POST with the header is authenticated here (to find its tenant), its body read, and
//! the key claimed for the SHA-256 of method, path and body. The request then runs as
//! usual; its response is stored for 24 hours unless it stored nothing (400/401/413/415,
//! 429, 5xx), in which case the key is released. A retry with the same key and body gets
//! the stored response with `Idempotent-Replayed: true`; another body gets 422
//! `IDEMPOTENCY_KEY_REUSED`; a retry while the first still runs gets 409.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};
use app::auth::{Credential, authenticate};
use app::idempotency::{claim, complete, parse_key, release, request_hash};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use ports::{IdempotencyClaim, StoredResponse};
use serde_json::json;

use crate::error::{ApiError, ErrorCode};
use crate::{ApiState, MAX_BODY_BYTES, Store};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on replayed responses.
pub const REPLAYED: &str = "idempotent-replayed";

/// The middleware factory.
pub struct Idempotency<S> {
    state: ApiState<S>,
}

impl<S> Idempotency<S> {
    /// Wraps the app with idempotent POSTs over `state`'s store.
    pub fn new(state: ApiState<S>) -> Self {
        Self { state }
    }
}

impl<S: Store, Svc, B> Transform<Svc, ServiceRequest> for Idempotency<S>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = IdempotencyService<S, Svc>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(IdempotencyService {
            service: Rc::new(service),
            state: self.state.clone(),
        }))
    }
}

/// The middleware around one service.
pub struct IdempotencyService<S, Svc> {
    service: Rc<Svc>,
    state: ApiState<S>,
}

fn stored_nothing(status: StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 401 | 413 | 415 | 429) || status.is_server_error()
}

fn replay(stored: StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    builder.content_type("application/json");
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            builder.insert_header((name, value));
        }
    }
    builder.insert_header((
        HeaderName::from_static(REPLAYED),
        HeaderValue::from_static("true"),
    ));
    builder.body(stored.body)
}

impl<S: Store, Svc, B> Service<ServiceRequest> for IdempotencyService<S, Svc>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let raw_key = req
            .headers()
            .get(IDEMPOTENCY_KEY)
            .map(|v| v.to_str().map(str::to_owned));
        if req.method() != Method::POST || raw_key.is_none() {
            return Box::pin(async move {
                service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_boxed_body)
            });
        }
        let key = raw_key.and_then(Result::ok).as_deref().and_then(parse_key);
        let credential = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .and_then(|(_, token)| Credential::from_bearer(token.trim()).ok());
        let state = self.state.clone();
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
        let mut payload = req.take_payload();
        Box::pin(async move {
            let Some(key) = key else {
                let error = ApiError::invalid_field(
                    "Idempotency-Key",
                    "must be 1 to 255 printable ASCII characters, optionally in double quotes",
                );
                return Ok(req.into_response(error.error_response()));
            };
            // Read the body once, bounded as the JSON extractor would bound it.
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    let error = ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        "request body is larger than 1 MiB",
                    );
                    return Ok(req.into_response(error.error_response()));
                }
                body.extend_from_slice(&chunk);
            }
            let body = body.freeze();
            req.set_payload(Payload::from(body.clone()));
            let Some(credential) = credential else {
                return service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_boxed_body);
            };
            let Ok((principal, uow)) = authenticate(&state.store, &state.auth, &credential).await
            else {
                // Let the handler answer 401 (or 503) as it always does.
                return service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_boxed_body);
            };
            let tenant = principal.tenant_id;
            let hash = request_hash("POST", &path, &body);
            match claim(uow, &key, &hash).await {
                Err(error) => return Ok(req.into_response(ApiError::from(error).error_response())),
                Ok(IdempotencyClaim::Replay(stored)) => {
                    return Ok(req.into_response(replay(stored)));
                }
                Ok(IdempotencyClaim::Mismatch) => {
                    let error = ApiError::new(
                        ErrorCode::IdempotencyKeyReused,
                        "this Idempotency-Key was used with another request; use a new key",
                    )
                    .with_details(json!({ "idempotencyKey": key }));
                    return Ok(req.into_response(error.error_response()));
                }
                Ok(IdempotencyClaim::InFlight) => {
                    let error = ApiError::new(
                        ErrorCode::Conflict,
                        "a request with this Idempotency-Key is still in progress; retry later",
                    );
                    return Ok(req.into_response(error.error_response()));
                }
                Ok(IdempotencyClaim::Claimed) => {}
            }
            let response = service.call(req).await?.map_into_boxed_body();
            let status = response.status();
            let finish = state.store.begin_for_tenant(tenant).await;
            if stored_nothing(status) {
                if let Ok(uow) = finish
                    && let Err(error) = release(uow, &key).await
                {
                    tracing::warn!(%error, "could not release an idempotency key");
                }
                return Ok(response);
            }
            let (request, response) = response.into_parts();
            let (head, body) = response.into_parts();
            let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
            let headers: Vec<(String, String)> = [header::LOCATION, header::ETAG]
                .iter()
                .filter_map(|name| {
                    head.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(|v| (name.as_str().to_owned(), v.to_owned()))
                })
                .collect();
            let stored = StoredResponse {
                status: status.as_u16(),
                headers,
                body: bytes.to_vec(),
            };
            match finish {
                Ok(uow) => {
                    if let Err(error) = complete(uow, &key, &stored).await {
                        tracing::warn!(%error, "could not store an idempotent response");
                    }
                }
                Err(error) => tracing::warn!(%error, "could not store an idempotent response"),
            }
            Ok(ServiceResponse::new(
                request,
                head.set_body(bytes).map_into_boxed_body(),
            ))
        })
    }
}
