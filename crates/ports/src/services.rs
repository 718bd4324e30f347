//! Services that are not storage: password hashing, rate limiting, webhook delivery over
//! HTTP, readiness, tenant provisioning, and the clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use domain::ids::{TenantId, UserId};
use domain::password::Password;
use domain::token::TokenHash;
use thiserror::Error;
use time::OffsetDateTime;

use crate::errors::RepoError;

/// A future that can be stored behind `dyn` (the hasher is shared as a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Password hashing (argon2id in production). Behind a port so use cases can be shown to
/// do the same work for unknown users as for wrong passwords, by counting calls.
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password into a PHC string.
    fn hash<'a>(&'a self, password: &'a Password) -> BoxFuture<'a, Result<String, RepoError>>;

    /// Checks a password against a PHC string; false for any mismatch or malformed hash.
    fn verify<'a>(&'a self, password: &'a Password, stored: &'a str) -> BoxFuture<'a, bool>;

    /// A valid hash of a password nobody knows: verified against when the user does not
    /// exist, so that case costs the same as a wrong password.
    fn dummy_hash(&self) -> &str;
}

/// What provisioning a tenant produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedTenant {
    /// The new tenant.
    pub tenant_id: TenantId,
    /// Its owner.
    pub owner_id: UserId,
}

/// The request to make a tenant: its name, its first owner, and the hash of an owner API
/// key (the clear key is made and shown by the caller).
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// Display name.
    pub name: String,
    /// The owner's e-mail address.
    pub owner_email: String,
    /// The owner's display name.
    pub owner_name: String,
    /// Name of the first API key.
    pub key_name: String,
    /// Public prefix of the first API key.
    pub key_prefix: String,
    /// Hash of the first API key.
    pub key_hash: TokenHash,
}

/// Creates tenants: a privileged operation that crosses tenants by nature, so it runs
/// with the operator's credentials (`crm tenant create`), not the application role's.
pub trait TenantProvisioning: Send + Sync {
    /// Creates the tenant, its owner user and membership, and its first API key, at once.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails; nothing was created then.
    fn provision_tenant(
        &self,
        tenant: NewTenant,
    ) -> impl Future<Output = Result<ProvisionedTenant, RepoError>> + Send;
}

/// Whether the store can serve requests now (readiness probes).
pub trait HealthCheck: Send + Sync {
    /// Succeeds when the store answers.
    ///
    /// # Errors
    /// [`RepoError`] describing why it cannot serve.
    fn check(&self) -> impl Future<Output = Result<(), RepoError>> + Send;
}

/// Counts requests against the named policies (SPEC §7).
///
/// Object-safe on purpose: the server picks the in-process limiter or the Redis one from
/// configuration at start-up, and the HTTP layer holds it as `Arc<dyn RateLimiter>`.
pub trait RateLimiter: Send + Sync {
    /// Counts one request of `key` against `policy` and answers whether it may go on. A
    /// refused request is not counted. Infallible by design: an adapter that depends on
    /// a remote store answers from a local fallback when the store is unreachable, so a
    /// limiter outage never turns into refused or failed requests.
    fn check<'a>(
        &'a self,
        policy: &'a domain::rate_limit::RatePolicy,
        key: &'a str,
    ) -> BoxFuture<'a, domain::rate_limit::RateDecision>;
}

impl<T: RateLimiter + ?Sized> RateLimiter for Arc<T> {
    fn check<'a>(
        &'a self,
        policy: &'a domain::rate_limit::RatePolicy,
        key: &'a str,
    ) -> BoxFuture<'a, domain::rate_limit::RateDecision> {
        (**self).check(policy, key)
    }
}

/// A future that stays on the thread that made it: awc, the webhook client, is
/// single-threaded (one client per actix worker), so the sender's futures are not `Send`.
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One webhook request, fully formed: the sender adds nothing but transport headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingWebhook {
    /// Where to (already vetted at registration; vetted again at connect time).
    pub url: String,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`, `content-type`, ...
    pub headers: Vec<(String, String)>,
    /// The exact bytes that were signed.
    pub body: Vec<u8>,
}

/// What the receiving endpoint answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookReply {
    /// The HTTP status (3xx included: redirects are never followed).
    pub status: u16,
    /// `Retry-After`, in seconds or as an HTTP date, turned into a delay.
    pub retry_after: Option<std::time::Duration>,
    /// The first 1 KiB of the response body, as lossy UTF-8.
    pub body: String,
    /// From the start of the request to the end of the (capped) body.
    pub latency: std::time::Duration,
}

/// Why a webhook was not answered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WebhookSendError {
    /// The destination is not allowed: a private, loopback, link-local or otherwise
    /// reserved address (directly or by DNS), or `http` while only `https` is allowed,
    /// or not a URL at all. Permanent for that URL.
    #[error("destination refused: {0}")]
    Refused(String),
    /// No complete answer within the time limit (15 s).
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// DNS, connection, TLS or protocol failure.
    #[error("delivery failed: {0}")]
    Failed(String),
    /// Too many destination checks (DNS look-ups) are under way at once; nothing was
    /// tried. Temporary: the caller should try again shortly.
    #[error("too many destination checks under way; try again shortly")]
    Busy,
}

/// Delivers webhooks over HTTP, with the SSRF guard.
pub trait WebhookSender {
    /// Checks that `url` may receive webhooks (scheme, and every address its host resolves
    /// to), as at registration.
    ///
    /// # Errors
    /// [`WebhookSendError::Refused`] with the reason, or `Failed` when the name does not
    /// resolve.
    fn vet<'a>(&'a self, url: &'a str) -> LocalBoxFuture<'a, Result<(), WebhookSendError>>;

    /// Sends one webhook (a POST) and reports the answer, whatever its status.
    ///
    /// # Errors
    /// [`WebhookSendError`] when there was no HTTP answer.
    fn send<'a>(
        &'a self,
        webhook: &'a OutgoingWebhook,
    ) -> LocalBoxFuture<'a, Result<WebhookReply, WebhookSendError>>;
}

/// What time it is, for the rules that depend on it (expiries, lifetimes, signing
/// timestamps). Behind a port so tests can move time instead of sleeping.
///
/// The core reads "now" from the unit of work (`U: UnitOfWork + Clock`) or the
/// pre-authentication store (`P: PreAuthStore + Clock`): the storage adapter carries the
/// clock, so the expiries the adapter checks and the ones the use cases compute follow the
/// same time. The PostgreSQL adapter uses [`SystemClock`] (its SQL uses the database's
/// `now()`, which follows the same wall clock); the in-memory one can be given a clock
/// that a test sets.
pub trait Clock: Send + Sync {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock of the machine. Pure enough for this crate: it reads the system time
/// through `time`, with no I/O crate and no state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}
