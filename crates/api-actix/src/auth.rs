//! The authentication extractor: `Authorization: Bearer <token>` to a principal and a unit
//! of work scoped to its tenant, before the handler runs.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use app::auth::{Credential, authenticate};
use domain::principal::Principal;
use futures_util::future::LocalBoxFuture;
use ports::TenantStore;

use crate::ApiState;
use crate::error::{ApiError, unauthenticated};
use crate::middleware::TenantTag;
use crate::rate_limit;

/// An authenticated request: who is calling, and the open unit of work for their tenant.
/// Handlers take it after their body extractor: the body is read (at most 1 MiB) before
/// the transaction opens, so a slow client never holds a pooled connection or a row lock
/// while its body trickles in.
#[derive(Debug)]
pub struct Authenticated<S: TenantStore> {
    /// The caller.
    pub principal: Principal,
    /// The tenant-scoped unit of work the handler passes to its use case.
    pub uow: S::Uow,
}

/// The bearer token of a request, if the header is well-formed.
pub(crate) fn bearer_token(headers: &header::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl<S: TenantStore> FromRequest for Authenticated<S> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let credential = bearer_token(req.headers()).and_then(|t| Credential::from_bearer(t).ok());
        let state = req.app_data::<web::Data<ApiState<S>>>().cloned();
        let req = req.clone();
        Box::pin(async move {
            let credential = credential.ok_or_else(unauthenticated)?;
            let state = state.ok_or_else(|| ApiError::internal(&"ApiState is not registered"))?;
            let (principal, uow) = authenticate(&state.store, &state.auth, &credential).await?;
            req.extensions_mut().insert(TenantTag(principal.tenant_id));
            req.extensions_mut()
                .insert(crate::middleware::CredentialKind(match principal.actor {
                    domain::principal::Actor::ApiKey { .. } => "key",
                    domain::principal::Actor::User { .. } => "session",
                }));
            // The credential's own quota, if it was new to the limiter, and the tenant
            // policy, now that the tenant is known and before any work: a refusal drops
            // the unit of work, which rolls back, so nothing changes.
            let limits = &state.limits;
            rate_limit::count_resolved(&req, limits).await?;
            let decision = limits
                .limiter
                .check(
                    &limits.policies.tenant,
                    &format!("tenant:{}", principal.tenant_id),
                )
                .await;
            let stamped = rate_limit::record(&req, decision);
            if !decision.allowed {
                drop(uow);
                return Err(rate_limit::refused(&stamped));
            }
            // An idempotent POST: its key is looked up in this same unit of work, after
            // authorisation and limits, before the handler (see `idempotency`).
            let uow = crate::idempotency::begin::<S>(&req, &principal, uow).await?;
            Ok(Self { principal, uow })
        })
    }
}
