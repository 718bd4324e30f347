//! Rate limiting for every route (SPEC §7), applied once around the whole app.
//!
//! Before the request goes on, the middleware counts it against the policy its route
//! and credential call for:
//!
//! | request (by the route pattern the router matches) | policy | key |
//! |---|---|---|
//! | `POST /v1/auth/signup`, `/login`, `/demo-login`, `/accept-invitation` | `auth` | client IP |
//! | `POST /v1/auth/qr-session/generate` | `qr` | client IP |
//! | `GET /v1/auth/qr-session/status` | `qr` | the QR session polled (its UUID) |
//! | anything else with a bearer credential seen to resolve | `authenticated` | the credential's hash |
//! | anything else with a bearer credential not (yet) seen to resolve | `auth` | client IP |
//! | anything else | `public` | client IP |
//!
//! The route is the one the router will match: the pattern is looked up in the app's
//! resource map with the path as the router sees it (percent-decoded by the same quoter),
//! never by comparing the raw path, so `/v1/auth/%6Cogin` is `/v1/auth/login` here as it
//! is for the router. So every route, the 404 fallback included, is under at least one
//! policy by construction.
//!
//! A credential buys a bucket of its own only once it has resolved: until then it counts
//! against its client address under `auth`, before any database work, so made-up tokens
//! cannot mint fresh buckets. Credentials that resolved are remembered (hashes only, a
//! bounded set per process); the set decides the bucket, never the authority: a revoked
//! key still fails its look-up, and a 401 forgets it. The credential is the request
//! state's ([`RequestState::credential`]): parsed and hashed once per request, by
//! whichever layer asks first, and the same hash is what authentication looks up.
//!
//! The `tenant` policy needs to know the tenant, which only the credential look-up tells:
//! the authentication extractor counts it right after that look-up and before any work
//! (the unit of work is rolled back if refused), so it costs no round trip and a limited
//! request changes nothing. Whether the credential resolved is read from the request
//! state after the response, where the extractor recorded the tenant.
//!
//! Every response of the request then carries the headers of the tightest decision
//! taken: `X-RateLimit-Limit/Remaining/Reset` and the IETF draft-10 `RateLimit-Policy` /
//! `RateLimit`; a 429 adds `Retry-After` and the `RATE_LIMITED` envelope.

use std::collections::HashSet;
use std::future::{Ready, ready};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{Error, HttpRequest, web};
use app::auth::HashedCredential;
use domain::rate_limit::{RateDecision, RatePolicies, RatePolicy};
use domain::token::TokenHash;
use futures_util::future::LocalBoxFuture;
use ports::RateLimiter;
use serde_json::json;

use crate::client_ip::{self, TrustedProxies};
use crate::error::{ApiError, ErrorCode};
pub use crate::request_state::StampedDecision;
use crate::request_state::{RequestCredential, RequestState, credential_limit_key};
use crate::route_table::RouteTable;

/// The limiter and the rules the middleware applies.
#[derive(Clone)]
pub struct RateLimits {
    /// Counts requests (in process, or shared through Redis).
    pub limiter: Arc<dyn RateLimiter>,
    /// The five quotas.
    pub policies: RatePolicies,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` are believed.
    pub trusted_proxies: TrustedProxies,
    /// Hashes of credentials that resolved: they count under `authenticated`.
    pub resolved: ResolvedCredentials,
}

/// The hashes of credentials that resolved recently, shared by the worker threads.
/// Bounded: when full it starts again (each credential then pays one `auth` token anew).
#[derive(Clone, Debug, Default)]
pub struct ResolvedCredentials(Arc<Mutex<HashSet<[u8; 32]>>>);

impl ResolvedCredentials {
    /// At most this many hashes are kept.
    pub const CAPACITY: usize = 100_000;

    fn contains(&self, hash: &TokenHash) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(&hash.0))
    }

    fn insert(&self, hash: TokenHash) {
        if let Ok(mut set) = self.0.lock() {
            if set.len() >= Self::CAPACITY {
                set.clear();
            }
            set.insert(hash.0);
        }
    }

    fn remove(&self, hash: &TokenHash) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(&hash.0);
        }
    }
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("policies", &self.policies)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

/// Records a decision (the middleware's, or the extractor's) in the request state, so
/// the response headers can report it; returns it stamped.
pub fn record(state: &RequestState, decision: RateDecision) -> StampedDecision {
    let stamped = StampedDecision::now(decision);
    state.record_decision(stamped);
    stamped
}

/// The `RATE_LIMITED` error for a refused decision.
#[must_use]
pub fn refused(stamped: &StampedDecision) -> ApiError {
    let decision = &stamped.decision;
    metrics::counter!("rate_limit_refusals_total", "policy" => decision.policy.name.as_str())
        .increment(1);
    let wait = stamped.seconds_to_instant();
    ApiError::new(
        ErrorCode::RateLimited,
        format!(
            "rate limit \"{}\" exceeded: retry in {wait} s",
            decision.policy.name
        ),
    )
    .with_details(json!({"policy": decision.policy.name.as_str(), "retryAfterSeconds": wait}))
}

/// The client address as the rate limits see it (trusted proxies applied).
#[must_use]
pub fn client_address(req: &HttpRequest, trusted: &TrustedProxies) -> Option<IpAddr> {
    client_ip::resolve(req.peer_addr().map(|a| a.ip()), req.headers(), trusted)
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Counts a request whose credential just resolved under `authenticated`, if the
/// middleware could not yet (the credential was new to it, so it counted the request
/// against its address under `auth`): every request of a credential is in its bucket.
///
/// # Errors
/// The `RATE_LIMITED` error when the credential's quota is spent.
pub(crate) async fn count_resolved(
    state: &RequestState,
    limits: &RateLimits,
    credential: &HashedCredential,
) -> Result<(), ApiError> {
    if !state.take_credential_uncounted() {
        return Ok(());
    }
    let decision = limits
        .limiter
        .check(
            &limits.policies.authenticated,
            &credential_limit_key(credential),
        )
        .await;
    let stamped = record(state, decision);
    if decision.allowed {
        Ok(())
    } else {
        Err(refused(&stamped))
    }
}

/// The route pattern the router will match for this request (`/v1/contacts/{id}`), if
/// any, for the path as the router sees it: the documented routes' table (no regular
/// expressions: `route_table`), else the app's resource map.
fn route_pattern(req: &ServiceRequest) -> Option<String> {
    let path = req.match_info().as_str();
    if let Some(table) = req.app_data::<web::Data<RouteTable>>()
        && let Some(pattern) = table.find(path)
    {
        return Some(pattern.to_owned());
    }
    req.request().resource_map().match_pattern(path)
}

/// What a request is counted under before it runs: the policy, the bucket, and the
/// hash of the credential whose resolution the response will tell.
struct Counting {
    policy: RatePolicy,
    key: String,
    credential: Option<TokenHash>,
    /// The credential was counted by its address: the extractor counts it under
    /// `authenticated` once it resolves.
    uncounted: bool,
}

/// The policy and key a request is counted under before it runs. The credential, when
/// the route's policy depends on it, is taken from the request state (parsed and hashed
/// there, once per request).
fn counting(
    req: &ServiceRequest,
    state: &RequestState,
    pattern: Option<&str>,
    limits: &RateLimits,
    client: Option<IpAddr>,
) -> Counting {
    let ip_key = || client.map_or_else(|| "ip:unknown".to_owned(), client_ip::limit_key);
    let policies = &limits.policies;
    let by = |policy: RatePolicy, key: String| Counting {
        policy,
        key,
        credential: None,
        uncounted: false,
    };
    match pattern {
        Some(
            "/v1/auth/signup"
            | "/v1/auth/login"
            | "/v1/auth/demo-login"
            | "/v1/auth/accept-invitation",
        ) => by(policies.auth, ip_key()),
        Some("/v1/auth/qr-session/generate") => by(policies.qr, ip_key()),
        Some("/v1/auth/qr-session/status") => {
            // Per QR session: the waiting device polls on its own schedule, and many
            // devices behind one address do not share a quota. The id is taken in its
            // canonical form, so no other spelling of it gets a bucket of its own; a poll
            // naming no session counts against its address.
            let key = query_value(req.query_string(), "sessionId")
                .and_then(|id| uuid::Uuid::parse_str(id).ok())
                .map_or_else(ip_key, |id| format!("qr:{id}"));
            by(policies.qr, key)
        }
        _ => match state.credential(req.headers()) {
            RequestCredential::Recognised(credential)
                if limits.resolved.contains(&credential.hash) =>
            {
                Counting {
                    policy: policies.authenticated,
                    key: credential_limit_key(&credential),
                    credential: Some(credential.hash),
                    uncounted: false,
                }
            }
            // Not seen to resolve: it buys nothing of its own.
            RequestCredential::Recognised(credential) => Counting {
                policy: policies.auth,
                key: ip_key(),
                credential: Some(credential.hash),
                uncounted: true,
            },
            // Not one of ours: it never resolves (401 without a look-up), and counts
            // against its address as any credential not seen to resolve does.
            RequestCredential::Unrecognised => by(policies.auth, ip_key()),
            RequestCredential::Absent => by(policies.public, ip_key()),
        },
    }
}

/// Writes the rate-limit headers of `stamped` on a response: `X-RateLimit-Reset` is the
/// decision's second plus `t`, and `Retry-After` (on a 429) is `t`.
fn set_headers(headers: &mut HeaderMap, stamped: &StampedDecision) {
    let decision = &stamped.decision;
    let policy = &decision.policy;
    let name = policy.name.as_str();
    let reset_seconds = stamped.seconds_to_instant();
    let mut values = vec![
        ("x-ratelimit-limit", policy.quota.get().to_string()),
        ("x-ratelimit-remaining", decision.remaining.to_string()),
        (
            "x-ratelimit-reset",
            stamped.instant_epoch_seconds().to_string(),
        ),
        (
            "ratelimit-policy",
            format!(
                "\"{name}\";q={};w={}",
                policy.quota,
                policy.window.as_secs()
            ),
        ),
        (
            "ratelimit",
            format!("\"{name}\";r={};t={reset_seconds}", decision.remaining),
        ),
    ];
    if !decision.allowed {
        values.push(("retry-after", reset_seconds.to_string()));
    }
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// The middleware factory.
#[derive(Clone, Debug)]
pub struct RateLimit {
    limits: RateLimits,
}

impl RateLimit {
    /// Limits every request by `limits`.
    #[must_use]
    pub fn new(limits: RateLimits) -> Self {
        Self { limits }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RateLimit
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = RateLimitService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RateLimitService {
            service: Rc::new(service),
            limits: self.limits.clone(),
        }))
    }
}

/// The middleware around the app.
#[derive(Debug)]
pub struct RateLimitService<S> {
    service: Rc<S>,
    limits: RateLimits,
}

impl<S, B> Service<ServiceRequest> for RateLimitService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let limits = self.limits.clone();
        Box::pin(async move {
            let state = RequestState::of(req.request());
            let client = client_address(req.request(), &limits.trusted_proxies);
            state.set_client(client);
            let pattern = route_pattern(&req);
            state.set_route(pattern.clone());
            // The scrape is watched traffic's monitor: never locked out by it.
            if pattern.as_deref() == Some(crate::metrics::PATH) {
                return service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_boxed_body);
            }
            let counting = counting(&req, &state, pattern.as_deref(), &limits, client);
            let decision = limits.limiter.check(&counting.policy, &counting.key).await;
            if counting.uncounted {
                state.mark_credential_uncounted();
            }
            let stamped = record(&state, decision);
            let mut response = if decision.allowed {
                service.call(req).await?.map_into_boxed_body()
            } else {
                // Refused before anything ran: no handler, no side effect.
                let error = refused(&stamped);
                req.into_response(actix_web::ResponseError::error_response(&error))
            };
            if let Some(credential) = counting.credential {
                // The authentication extractor records the tenant once the credential
                // resolved; a 401 means it did not.
                if state.tenant().is_some() {
                    limits.resolved.insert(credential);
                } else if response.status() == actix_web::http::StatusCode::UNAUTHORIZED {
                    limits.resolved.remove(&credential);
                }
            }
            if let Some(tightest) = state.tightest_decision() {
                set_headers(response.headers_mut(), &tightest);
            }
            Ok(response)
        })
    }
}
