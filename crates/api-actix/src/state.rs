//! What the server hands the API at start: storage, hashing, auth settings, limits, the
//! webhook sender factory, the metrics endpoint ([`ApiState`]); and the per-thread webhook
//! sender ([`SenderHandle`]). Handlers read it as `web::Data<ApiState<S>>`.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use app::auth::AuthSettings;
use ports::{
    ContactCreateByApiKey, ContactListByApiKey, ContactReadByApiKey, HealthCheck, PasswordHasher,
    PreAuthStore, TenantStore, WebhookSender,
};

/// Everything the API needs from storage: tenant-scoped units of work, one-statement reads,
/// creates and lists, the pre-authentication look-ups, and a readiness check.
pub trait Store:
    TenantStore
    + PreAuthStore
    + HealthCheck
    + ContactReadByApiKey
    + ContactCreateByApiKey
    + ContactListByApiKey
{
}

impl<T> Store for T where
    T: TenantStore
        + PreAuthStore
        + HealthCheck
        + ContactReadByApiKey
        + ContactCreateByApiKey
        + ContactListByApiKey
{
}

/// What handlers need.
#[derive(Clone)]
pub struct ApiState<S> {
    /// Opens tenant-scoped units of work; answers pre-authentication look-ups.
    pub store: S,
    /// Password hashing (argon2id).
    pub hasher: Arc<dyn PasswordHasher>,
    /// Session, demo and QR lifetimes.
    pub auth: AuthSettings,
    /// The limiter, the five policies and the trusted proxies.
    pub limits: crate::rate_limit::RateLimits,
    /// The webhook sender (one per worker thread) and the rotation grace period.
    pub webhooks: WebhookApi,
    /// `GET /metrics`: the renderer and the optional scrape token.
    pub metrics: crate::metrics::MetricsEndpoint,
}

impl<S: std::fmt::Debug> std::fmt::Debug for ApiState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.store)
            .field("auth", &self.auth)
            .field("limits", &self.limits)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

/// What the webhook routes need besides storage.
#[derive(Clone)]
pub struct WebhookApi {
    /// Makes the HTTP sender of one worker thread (awc is single-threaded).
    pub make_sender: Arc<dyn Fn() -> Rc<dyn WebhookSender> + Send + Sync>,
    /// How long a rotated-out secret keeps signing beside the new one.
    pub secret_grace: Duration,
}

impl std::fmt::Debug for WebhookApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookApi")
            .field("secret_grace", &self.secret_grace)
            .finish_non_exhaustive()
    }
}

/// This worker thread's sender, registered once per thread by [`crate::app`].
#[derive(Clone)]
pub struct SenderHandle(pub Rc<dyn WebhookSender>);
