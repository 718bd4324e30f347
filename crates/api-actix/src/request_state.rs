//! The one typed state of a request in flight, which every layer it walks through reads
//! and writes: a request walks forward once, and nothing is read back through ad-hoc
//! extension types.
//!
//! The outermost middleware (`middleware::RequestContext`) inserts one [`RequestState`]
//! into the request's extensions and makes it current for the request's task (so the
//! storage adapter's statement observer can add to its database time, see
//! [`add_database_time`]). The fields, in the order the request fills them:
//!
//! | field | written by | read by |
//! |---|---|---|
//! | client address | `rate_limit` middleware (trusted proxies applied) | the limiter, `client_info` (QR requester details) |
//! | credential | the first layer that asks for it (the limiter, else the extractor): the bearer token parsed and hashed **once** | the limiter, the `Authenticated` extractor |
//! | rate decisions | the limiter, the extractor (the credential's first `authenticated` count, the `tenant` policy) | the limiter, for the response headers |
//! | credential uncounted | the limiter (it counted the credential by address) | the extractor, which counts it once resolved |
//! | idempotent request | the idempotency middleware (key and fingerprint) | the extractor |
//! | idempotency stage | the extractor (key claimed, or a replay) | the idempotency middleware, after the handler |
//! | tenant, credential kind | the extractor, once the credential resolved | the limiter (resolved or not), the access log |
//! | database time | the storage observer, per statement | the access log |
//!
//! The fields are `Cell`/`RefCell`/`OnceCell`: a request is served by one task on one
//! worker thread, so no lock is needed, and every borrow here is short (never held across
//! an `.await`).

use std::cell::{Cell, OnceCell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpMessage, HttpRequest};
use app::auth::{Credential, HashedCredential};
use base64::Engine as _;
use domain::ids::TenantId;
use domain::principal::{Role, Scopes};
use domain::rate_limit::{RateDecision, ceil_seconds};
use futures_util::future::LocalBoxFuture;
use ports::{CommitSlot, IdempotencyScope, RepoError, StoredResponse, UnitOfWork};

/// The bearer token of a request, if the `Authorization` header is well-formed. Only
/// the header's shape is checked here; [`RequestState::credential`] says whether it is
/// one of our credentials.
#[must_use]
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// What a request presented as `Authorization: Bearer …`, recognised and hashed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestCredential {
    /// No bearer token.
    Absent,
    /// A bearer token that is none of our credential formats: it can never resolve, so
    /// it is refused (401) without any database work.
    Unrecognised,
    /// An API key or session token, by its hash (the secret itself is not kept).
    Recognised(HashedCredential),
}

impl RequestCredential {
    /// Parses and hashes the bearer token of `headers`.
    fn from_headers(headers: &HeaderMap) -> Self {
        match bearer_token(headers) {
            None => Self::Absent,
            Some(token) => Credential::from_bearer(token)
                .map_or(Self::Unrecognised, |credential| {
                    Self::Recognised(credential.hashed())
                }),
        }
    }
}

/// The rate-limit bucket of a resolved credential: its hash, so the limiter's memory (or
/// Redis) never holds a usable credential.
#[must_use]
pub fn credential_limit_key(credential: &HashedCredential) -> String {
    format!(
        "cred:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(credential.hash.0)
    )
}

/// How the request authenticated, for the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthenticatedAs {
    /// An API key.
    Key,
    /// A login session.
    Session,
}

impl AuthenticatedAs {
    /// The log's spelling: `key` or `session`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Session => "session",
        }
    }
}

/// A rate-limit decision and when it was taken (since the Unix epoch). Every header and
/// the 429 body are computed from this one moment, so they describe the same instant to
/// the second: for an allowed request, when the quota is whole again; for a refused one,
/// when the next request will be allowed.
#[derive(Clone, Copy, Debug)]
pub struct StampedDecision {
    /// What the limiter answered.
    pub decision: RateDecision,
    at: Duration,
}

impl StampedDecision {
    /// Stamps `decision` with the current time.
    #[must_use]
    pub fn now(decision: RateDecision) -> Self {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self { decision, at }
    }

    /// Whole seconds from the decision's second to the instant described (rounded up, so
    /// never early; at least 1 when refused). This is `t`, and `Retry-After` on a 429.
    #[must_use]
    pub fn seconds_to_instant(&self) -> u64 {
        let d = &self.decision;
        let wait = if d.allowed {
            d.reset_after
        } else {
            d.retry_after
        };
        let seconds = ceil_seconds(self.at + wait) - self.at.as_secs();
        if d.allowed { seconds } else { seconds.max(1) }
    }

    /// The same instant in UTC epoch seconds (`X-RateLimit-Reset`).
    #[must_use]
    pub fn instant_epoch_seconds(&self) -> u64 {
        self.at.as_secs() + self.seconds_to_instant()
    }
}

/// A POST that carries a valid `Idempotency-Key`: the key and the request's fingerprint
/// (method, path and body), found by the idempotency middleware before the body is read
/// by anyone else.
#[derive(Clone, Debug)]
pub(crate) struct IdempotentRequest {
    /// The key, unquoted.
    pub key: String,
    /// SHA-256 of method, path with query, and body.
    pub request_hash: [u8; 32],
}

/// What the extractor found for an idempotent request, handed forward to the
/// middleware's response half.
#[derive(Default)]
pub(crate) enum IdempotencyStage {
    /// Nothing held: not an idempotent request, the extractor never ran, or the stage
    /// was taken.
    #[default]
    None,
    /// The extractor holds the key in the request's unit of work, parked at its commit.
    Claimed(ClaimedKey),
    /// The extractor found this request's response stored: the middleware replays it.
    Replay(StoredResponse),
}

/// A key held by the request's unit of work: what to store, with which power, and where
/// the unit of work waits when its use case commits.
pub(crate) struct ClaimedKey {
    /// The credential, key and fingerprint the record is about.
    pub scope: IdempotencyScope,
    /// The role the request ran with (a replay needs at least as much).
    pub role: Role,
    /// The scopes the request ran with (a replay needs them still).
    pub scopes: Scopes,
    /// The unit of work, once its use case committed.
    pub parked: Box<dyn ParkedCommit>,
}

/// The slot where a unit of work waits at its commit, seen without its store's type, so
/// the request state (and the idempotency middleware) need not be generic over the store.
pub(crate) trait ParkedCommit {
    /// The parked unit of work; `None` when the use case never committed (nothing
    /// changed, nothing is to be stored).
    fn take_parked(&self) -> Option<Box<dyn ParkedUnitOfWork>>;
}

impl<U: UnitOfWork + ports::IdempotencyRepository + 'static> ParkedCommit for CommitSlot<U> {
    fn take_parked(&self) -> Option<Box<dyn ParkedUnitOfWork>> {
        self.take()
            .map(|uow| Box::new(uow) as Box<dyn ParkedUnitOfWork>)
    }
}

/// A unit of work taken back from its commit slot: what the idempotency middleware does
/// with it after the handler.
pub(crate) trait ParkedUnitOfWork {
    /// Commits the use case's changes alone (the response is not one to store).
    fn commit_alone(self: Box<Self>) -> LocalBoxFuture<'static, Result<(), RepoError>>;

    /// Stores the response in the same transaction as the change, then commits both.
    fn store_and_commit(
        self: Box<Self>,
        scope: IdempotencyScope,
        stored: StoredResponse,
    ) -> LocalBoxFuture<'static, Result<(), RepoError>>;
}

impl<U: UnitOfWork + ports::IdempotencyRepository + 'static> ParkedUnitOfWork for U {
    fn commit_alone(self: Box<Self>) -> LocalBoxFuture<'static, Result<(), RepoError>> {
        Box::pin(UnitOfWork::commit(*self))
    }

    fn store_and_commit(
        self: Box<Self>,
        scope: IdempotencyScope,
        stored: StoredResponse,
    ) -> LocalBoxFuture<'static, Result<(), RepoError>> {
        let mut uow = *self;
        Box::pin(async move {
            uow.store_idempotent(&scope, &stored).await?;
            UnitOfWork::commit(uow).await
        })
    }
}

/// Everything one request has learnt so far; see the module documentation for who
/// writes and reads each field.
#[derive(Default)]
pub struct RequestState {
    client: Cell<Option<IpAddr>>,
    credential: OnceCell<RequestCredential>,
    decisions: RefCell<Vec<StampedDecision>>,
    credential_uncounted: Cell<bool>,
    idempotent_request: RefCell<Option<IdempotentRequest>>,
    idempotency: RefCell<IdempotencyStage>,
    tenant: Cell<Option<TenantId>>,
    authenticated_as: Cell<Option<AuthenticatedAs>>,
    database_time: Cell<Duration>,
    route: RefCell<Option<String>>,
}

impl std::fmt::Debug for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestState")
            .field("client", &self.client.get())
            .field("credential", &self.credential.get())
            .field("tenant", &self.tenant.get())
            .field("authenticated_as", &self.authenticated_as.get())
            .field("database_time", &self.database_time.get())
            .finish_non_exhaustive()
    }
}

tokio::task_local! {
    /// The state of the request the current task serves, for callers that have no
    /// request at hand (the storage adapter's statement observer).
    static CURRENT: Rc<RequestState>;
}

/// Adds one statement's time to the request being served (outside one, nothing). The
/// server hooks this into the PostgreSQL adapter's statement observer.
pub fn add_database_time(elapsed: Duration) {
    let _ = CURRENT.try_with(|state| {
        state.database_time.set(state.database_time.get() + elapsed);
    });
}

impl RequestState {
    /// The state of `req`: the one the outermost middleware inserted, or (for an app
    /// assembled without it) a fresh one, inserted now so later layers share it.
    #[must_use]
    pub fn of(req: &HttpRequest) -> Rc<Self> {
        if let Some(state) = req.extensions().get::<Rc<Self>>() {
            return Rc::clone(state);
        }
        let state = Rc::new(Self::default());
        req.extensions_mut().insert(Rc::clone(&state));
        state
    }

    /// Runs `future` (the rest of the request) with `state` current for
    /// [`add_database_time`].
    pub(crate) async fn scope<F: std::future::Future>(state: Rc<Self>, future: F) -> F::Output {
        CURRENT.scope(state, future).await
    }

    /// Records the route pattern the router will match (the rate limits find it first).
    pub fn set_route(&self, route: Option<String>) {
        *self.route.borrow_mut() = route;
    }

    /// The route pattern recorded by [`Self::set_route`], if any.
    #[must_use]
    pub fn route(&self) -> Option<String> {
        self.route.borrow().clone()
    }

    /// Records the client's address (trusted proxies applied).
    pub fn set_client(&self, client: Option<IpAddr>) {
        self.client.set(client);
    }

    /// The client's address as the rate limits saw it, if resolved.
    #[must_use]
    pub fn client(&self) -> Option<IpAddr> {
        self.client.get()
    }

    /// The request's credential: the bearer token of `headers` parsed and hashed on the
    /// first call; every later call (from any layer) answers the same value without
    /// looking at the headers again.
    pub fn credential(&self, headers: &HeaderMap) -> RequestCredential {
        *self
            .credential
            .get_or_init(|| RequestCredential::from_headers(headers))
    }

    /// Records a rate-limit decision for the response headers.
    pub fn record_decision(&self, stamped: StampedDecision) {
        self.decisions.borrow_mut().push(stamped);
    }

    /// The tightest decision taken for this request: a refusal first, then the fewest
    /// remaining.
    #[must_use]
    pub fn tightest_decision(&self) -> Option<StampedDecision> {
        self.decisions
            .borrow()
            .iter()
            .copied()
            .reduce(|tightest, d| {
                if d.decision.is_tighter_than(&tightest.decision) {
                    d
                } else {
                    tightest
                }
            })
    }

    /// The limiter counted the credential against its client address: it is still to be
    /// counted under `authenticated` once it resolves.
    pub fn mark_credential_uncounted(&self) {
        self.credential_uncounted.set(true);
    }

    /// Whether the credential is still to be counted under `authenticated`; a second
    /// call answers `false` (it is counted once).
    pub fn take_credential_uncounted(&self) -> bool {
        self.credential_uncounted.replace(false)
    }

    /// Records that the credential resolved: its tenant and how it authenticated.
    pub fn set_authenticated(&self, tenant: TenantId, as_: AuthenticatedAs) {
        self.tenant.set(Some(tenant));
        self.authenticated_as.set(Some(as_));
    }

    /// The tenant the credential resolved to, if it did.
    #[must_use]
    pub fn tenant(&self) -> Option<TenantId> {
        self.tenant.get()
    }

    /// How the request authenticated, if it did.
    #[must_use]
    pub fn authenticated_as(&self) -> Option<AuthenticatedAs> {
        self.authenticated_as.get()
    }

    /// The time the request's statements took in the database so far.
    #[must_use]
    pub fn database_time(&self) -> Duration {
        self.database_time.get()
    }

    /// Records the key and fingerprint of an idempotent POST (the middleware, before
    /// anything reads the body).
    pub(crate) fn set_idempotent_request(&self, request: IdempotentRequest) {
        *self.idempotent_request.borrow_mut() = Some(request);
    }

    /// The key and fingerprint, if the request is an idempotent POST. Not taken: a
    /// handler that ends its unit of work and authenticates again (webhook
    /// registration, around its DNS look-up) holds the key again in the new one.
    pub(crate) fn idempotent_request(&self) -> Option<IdempotentRequest> {
        self.idempotent_request.borrow().clone()
    }

    /// Takes the idempotency stage, leaving [`IdempotencyStage::None`].
    pub(crate) fn take_idempotency(&self) -> IdempotencyStage {
        self.idempotency.take()
    }

    /// Sets the idempotency stage (a later extraction's replaces an earlier one's).
    pub(crate) fn set_idempotency(&self, stage: IdempotencyStage) {
        *self.idempotency.borrow_mut() = stage;
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{AUTHORIZATION, HeaderValue};
    use app::auth::CredentialKind;

    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(authorization).expect("valid header"),
        );
        headers
    }

    const KEY: &str = "crm_sk_0123456789ABCDEFGHIJabcdefghij0123456789";

    #[test]
    fn the_credential_is_parsed_and_hashed_once_per_request() {
        let state = RequestState::default();
        let first = state.credential(&headers(&format!("Bearer {KEY}")));
        let RequestCredential::Recognised(hashed) = first else {
            panic!("an API key is recognised: {first:?}");
        };
        assert_eq!(hashed.kind, CredentialKind::ApiKey);
        assert_eq!(
            hashed.hash,
            domain::token::SecretToken::parse(domain::token::TokenKind::ApiKey, KEY)
                .expect("key shape")
                .hash()
        );
        // A later layer asking again gets the first answer: the headers are not read
        // (nor anything hashed) a second time.
        assert_eq!(state.credential(&HeaderMap::new()), first);
    }

    #[test]
    fn absent_and_foreign_tokens_are_told_apart() {
        assert_eq!(
            RequestState::default().credential(&HeaderMap::new()),
            RequestCredential::Absent
        );
        assert_eq!(
            RequestState::default().credential(&headers("Bearer not-ours")),
            RequestCredential::Unrecognised
        );
        assert_eq!(
            RequestState::default().credential(&headers("Basic abc")),
            RequestCredential::Absent
        );
    }

    #[test]
    fn the_limit_key_is_the_hash_not_the_secret() {
        let RequestCredential::Recognised(hashed) =
            RequestState::default().credential(&headers(&format!("bearer {KEY}")))
        else {
            panic!("recognised");
        };
        let key = credential_limit_key(&hashed);
        assert!(key.starts_with("cred:"));
        assert!(!key.contains(KEY));
    }

    #[test]
    fn the_credential_is_counted_under_authenticated_once() {
        let state = RequestState::default();
        assert!(!state.take_credential_uncounted());
        state.mark_credential_uncounted();
        assert!(state.take_credential_uncounted());
        assert!(!state.take_credential_uncounted());
    }
}
