//! The authentication extractor: `Authorization: Bearer <token>` to a principal and a unit
//! of work scoped to its tenant, before the handler runs.
//!
//! The credential comes from the request state, parsed and hashed there once (the rate
//! limiter usually asked first); the extractor resolves it in the statement that opens
//! the request's unit of work, records the tenant in the request state, counts the
//! credential's and the tenant's quotas, and holds an idempotency key in that same unit
//! of work (see `idempotency`).

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use app::auth::authenticate_hashed;
use domain::principal::{Actor, Principal};
use futures_util::future::LocalBoxFuture;
use ports::TenantStore;

use crate::ApiState;
use crate::error::{ApiError, unauthenticated};
use crate::idempotency;
use crate::rate_limit;
/// The bearer token of a request (kept at this path for the routes that read it).
pub(crate) use crate::request_state::bearer_token;
use crate::request_state::{AuthenticatedAs, RequestCredential, RequestState};

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

impl<S: TenantStore> FromRequest for Authenticated<S> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let request_state = RequestState::of(req);
        let credential = request_state.credential(req.headers());
        let state = req.app_data::<web::Data<ApiState<S>>>().cloned();
        Box::pin(async move {
            let RequestCredential::Recognised(credential) = credential else {
                return Err(unauthenticated());
            };
            let state = state.ok_or_else(|| ApiError::internal(&"ApiState is not registered"))?;
            let (principal, uow) =
                authenticate_hashed(&state.store, &state.auth, &credential).await?;
            request_state.set_authenticated(
                principal.tenant_id,
                match principal.actor {
                    Actor::ApiKey { .. } => AuthenticatedAs::Key,
                    Actor::User { .. } => AuthenticatedAs::Session,
                },
            );
            // The credential's own quota, if it was new to the limiter, and the tenant
            // policy, now that the tenant is known and before any work: a refusal drops
            // the unit of work, which rolls back, so nothing changes.
            let limits = &state.limits;
            rate_limit::count_resolved(&request_state, limits, &credential).await?;
            let decision = limits
                .limiter
                .check(
                    &limits.policies.tenant,
                    &format!("tenant:{}", principal.tenant_id),
                )
                .await;
            let stamped = rate_limit::record(&request_state, decision);
            if !decision.allowed {
                drop(uow);
                return Err(rate_limit::refused(&stamped));
            }
            // An idempotent POST: its key is looked up in this same unit of work, after
            // authorisation and limits, before the handler (see `idempotency`).
            let uow = idempotency::begin::<S>(&request_state, &principal, uow).await?;
            Ok(Self { principal, uow })
        })
    }
}
