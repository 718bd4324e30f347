//! `Idempotency-Key` on POST (SPEC §3), in two halves around the handler.
//!
//! **Before** (this middleware): the key is checked, the body read once (bounded as the
//! JSON extractor bounds it) and fingerprinted with method and path; key and fingerprint
//! go into the request state. No credential is parsed and no database is touched here.
//!
//! **In the authentication extractor** ([`begin`]), once the credential resolved and the
//! rate limits passed, inside the request's own unit of work: the record of this
//! credential and key is looked up and the key held for the transaction. Nothing stored:
//! the unit of work is told to park at its commit ([`ports::CommitSlot`]), the claim is
//! handed forward in the request state, and the handler runs. Stored with the same request: replayed, only if the credential still holds the
//! role and scopes the original ran with (403 otherwise), so authorisation always comes
//! before a replay. Another request: 422. The key held by a running transaction: 409.
//!
//! **After** (this middleware again, reading what the extractor left in the request
//! state): a 2xx whose use case committed has its response stored in the same
//! transaction, which then commits: the change and its stored
//! response are durable together or not at all, so a crash can never make a retry write
//! twice. Anything else stores nothing. A replay answers the stored status, body,
//! `Location` and `ETag` with `Idempotent-Replayed: true`; its `metadata.requestId` is
//! this request's id, equal to `X-Request-Id`, and `Original-Request-Id` names the first.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};
use app::idempotency::{parse_key, request_hash};
use domain::principal::Principal;
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use ports::{
    CommitSlot, IdempotencyClaim, IdempotencyRepository, IdempotencyScope, StoredResponse,
    TenantStore, UnitOfWork,
};
use serde_json::json;

use crate::MAX_BODY_BYTES;
use crate::error::{ApiError, ErrorCode};
use crate::request_state::{ClaimedKey, IdempotencyStage, IdempotentRequest, RequestState};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on replayed responses.
pub const REPLAYED: &str = "idempotent-replayed";
/// On a replay, the request id of the original request.
pub const ORIGINAL_REQUEST_ID: &str = "original-request-id";

/// The extractor's half: looks the key up in `uow` (the request's own unit of work) and
/// either hands the unit of work back, parked at commit, or refuses with the answer.
///
/// # Errors
/// 409 while another transaction holds the key, 422 for another request under it, 403 when
/// the credential no longer holds what the stored answer was made with; a replay is an
/// error here too, which the middleware replaces with the stored response.
pub(crate) async fn begin<S: TenantStore>(
    state: &RequestState,
    principal: &Principal,
    mut uow: S::Uow,
) -> Result<S::Uow, ApiError> {
    let Some(request) = state.idempotent_request() else {
        return Ok(uow);
    };
    let scope = IdempotencyScope {
        credential: principal.credential_id(),
        key: request.key,
        request_hash: request.request_hash,
    };
    match uow.begin_idempotent(&scope).await? {
        IdempotencyClaim::Claimed => {
            let slot = CommitSlot::<S::Uow>::default();
            uow.park_commit(slot.clone());
            state.set_idempotency(IdempotencyStage::Claimed(ClaimedKey {
                scope,
                role: principal.role,
                scopes: principal.scopes.clone(),
                parked: Box::new(slot),
            }));
            Ok(uow)
        }
        IdempotencyClaim::Replay(stored) if principal.holds(stored.role, &stored.scopes) => {
            state.set_idempotency(IdempotencyStage::Replay(stored));
            Err(ApiError::new(ErrorCode::Conflict, "replayed"))
        }
        IdempotencyClaim::Replay(_) => Err(ApiError::new(
            ErrorCode::Forbidden,
            "this credential no longer holds the role or scopes the original request ran \
             with; its response is not replayed",
        )),
        IdempotencyClaim::Mismatch => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with another request; use a new key",
        )
        .with_details(json!({ "idempotencyKey": scope.key }))),
        IdempotencyClaim::InFlight => Err(ApiError::new(
            ErrorCode::Conflict,
            "a request with this Idempotency-Key is still in progress; retry later",
        )),
    }
}

/// The middleware factory. It needs no store type: the unit of work it commits after
/// the handler comes to it through the request state, type-erased.
#[derive(Clone, Copy, Debug, Default)]
pub struct Idempotency;

impl<Svc, B> Transform<Svc, ServiceRequest> for Idempotency
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = IdempotencyService<Svc>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(IdempotencyService {
            service: Rc::new(service),
        }))
    }
}

/// The middleware around one service.
#[derive(Debug)]
pub struct IdempotencyService<Svc> {
    service: Rc<Svc>,
}

/// The stored response again, under this request's id.
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
    let mut body: serde_json::Value = match serde_json::from_slice(&stored.body) {
        Ok(body) => body,
        Err(_) => return builder.body(stored.body),
    };
    if let Some(metadata) = body.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        if let Some(original) = metadata.get("requestId").and_then(|id| id.as_str())
            && let Ok(value) = HeaderValue::from_str(original)
        {
            builder.insert_header((HeaderName::from_static(ORIGINAL_REQUEST_ID), value));
        }
        metadata.insert("requestId".into(), crate::request_id::current().into());
    }
    builder.body(body.to_string())
}

async fn read_body(payload: &mut Payload) -> Result<Option<web::Bytes>, Error> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// After the handler: stores a committed 2xx with its change and commits both; answers
/// a replay. Any failure to commit turns the answer into that error: nothing was written.
async fn finish(
    state: &RequestState,
    response: ServiceResponse<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let claimed = match state.take_idempotency() {
        IdempotencyStage::Replay(stored) => {
            let (request, _) = response.into_parts();
            return Ok(ServiceResponse::new(request, replay(stored)));
        }
        IdempotencyStage::Claimed(claimed) => claimed,
        // The extractor never ran (refused before it, or a route without it), or found
        // nothing to hold.
        IdempotencyStage::None => return Ok(response),
    };
    // Nothing parked: the use case did not commit, so nothing changed and nothing is kept.
    let Some(uow) = claimed.parked.take_parked() else {
        return Ok(response);
    };
    let status = response.status();
    if !status.is_success() {
        let committed = uow.commit_alone().await;
        return Ok(match committed {
            Ok(()) => response,
            Err(error) => response.into_response(ApiError::from(error).error_response()),
        });
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
        role: claimed.role,
        scopes: claimed.scopes,
    };
    let durable = uow.store_and_commit(claimed.scope, stored).await;
    Ok(match durable {
        Ok(()) => ServiceResponse::new(request, head.set_body(bytes).map_into_boxed_body()),
        Err(error) => ServiceResponse::new(request, ApiError::from(error).error_response()),
    })
}

impl<Svc, B> Service<ServiceRequest> for IdempotencyService<Svc>
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
            let Some(body) = read_body(&mut payload).await? else {
                let error = ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "request body is larger than 1 MiB",
                );
                return Ok(req.into_response(error.error_response()));
            };
            let request_hash = request_hash("POST", &path, &body);
            req.set_payload(Payload::from(body));
            let state = RequestState::of(req.request());
            state.set_idempotent_request(IdempotentRequest { key, request_hash });
            let response = service.call(req).await?.map_into_boxed_body();
            finish(&state, response).await
        })
    }
}
