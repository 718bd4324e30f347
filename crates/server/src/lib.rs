//! The composition root: configuration, wiring of adapters into the API, and the
//! subcommands of the `crm` binary. The only crate that knows every other crate.

pub mod config;
pub mod metrics;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpServer;
use actix_web::dev::Server;
use adapters_governor::GovernorRateLimiter;
use adapters_http::{AwcWebhookSender, SenderConfig, VetSlots};
use adapters_postgres::{PgProvisioning, PgStore, PoolOptions};
use adapters_redis::RedisRateLimiter;
use api_actix::ApiState;
use api_actix::rate_limit::RateLimits;
use api_actix::state::WebhookApi;
use serde_json::json;

pub use config::{ConfigError, RateLimitConfig, ServeConfig, WebhookConfig, as_worker_role};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] adapters_postgres::MigrateError),
    /// The database could not be reached.
    #[error(transparent)]
    Connect(#[from] adapters_postgres::ConnectError),
    /// The connection role could bypass row-level security.
    #[error(transparent)]
    Role(#[from] adapters_postgres::RoleCheckError),
    /// The delivery worker's database could not be reached.
    #[error(
        "cannot connect the webhook worker as {url} (WORKER_DATABASE_URL, else DATABASE_URL as crm_worker): {cause}"
    )]
    WorkerConnect {
        /// The URL tried, without its password.
        url: String,
        /// Why.
        cause: adapters_postgres::ConnectError,
    },
    /// The password hasher could not be set up.
    #[error("cannot set up password hashing: {0}")]
    Hasher(ports::RepoError),
    /// The rate limiter could not be set up.
    #[error("cannot set up rate limiting: {0}")]
    RateLimit(String),
    /// The address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}

/// A started server: its address and the future that runs it until shutdown.
#[allow(missing_debug_implementations)] // actix's Server is not Debug
pub struct Running {
    /// Where it listens (the real port when 0 was asked for).
    pub address: SocketAddr,
    /// Drives the server; resolves after a graceful shutdown.
    pub server: Server,
    /// The pool, to close after the server stops.
    pub store: PgStore,
    /// The delivery worker's pool, as the worker role, when `crm serve` delivers too
    /// (`WEBHOOK_DELIVER_IN_SERVE`): connected and checked before the server binds.
    pub worker_store: Option<PgStore>,
}

/// Migrates (when a migration URL is configured), connects as the application role,
/// refuses a role that can bypass RLS, binds, and returns the server ready to be awaited.
///
/// # Errors
/// [`StartError`] saying which step failed and why.
pub async fn start(config: &ServeConfig) -> Result<Running, StartError> {
    start_with_sender(config, None).await
}

/// Makes the webhook sender of one HTTP worker thread (awc is single-threaded).
pub type MakeSender = Arc<dyn Fn() -> Rc<dyn ports::WebhookSender> + Send + Sync>;

/// [`start`], with the webhook sender of the API (registration checks, test sends) made
/// by `make_sender` instead of from the configuration when given: the adapter swap, for
/// tests that need a destination check the network cannot provide (a slow name server).
///
/// # Errors
/// [`StartError`] saying which step failed and why.
pub async fn start_with_sender(
    config: &ServeConfig,
    make_sender: Option<MakeSender>,
) -> Result<Running, StartError> {
    if let Some(url) = &config.migration_database_url {
        let applied = adapters_postgres::migrate(url).await?;
        tracing::info!(count = applied.len(), "migrations up to date");
    }
    // DB_POOL_SIZE bounds the process's connections: half of them (rounded down) are kept
    // for the statements sent on their own, the rest are the pool's.
    let statement_connections = config.pool_size / 2;
    let mut store = PgStore::connect(
        &config.database_url,
        &PoolOptions {
            max_connections: config.pool_size - statement_connections,
            statement_connections,
            pipelined_connections: config.pipelined_connections.min(statement_connections),
            acquire_timeout: Duration::from_secs(5),
            ..PoolOptions::default()
        },
    )
    .await?;
    store.observe_statements(api_actix::middleware::add_database_time);
    store.verify_application_role().await?;
    let worker_store = if config.webhooks.deliver_in_serve {
        Some(connect_worker(&config.worker_database_url(), &config.webhooks).await?)
    } else {
        None
    };
    let hasher = app::passwords::Argon2Hasher::new().map_err(StartError::Hasher)?;
    let state = ApiState {
        store: store.clone(),
        hasher: Arc::new(hasher),
        auth: config.auth.clone(),
        limits: rate_limits(&config.rate_limits)?,
        webhooks: match make_sender {
            None => webhook_api(&config.webhooks),
            Some(make_sender) => WebhookApi {
                secret_grace: config.webhooks.secret_grace,
                make_sender,
            },
        },
        metrics: api_actix::metrics::MetricsEndpoint {
            source: Arc::new(metrics::ServerMetrics::new(store.clone())),
            token: config.metrics_token.clone(),
        },
    };
    let mut server = HttpServer::new(move || api_actix::app(state.clone()))
        // Responses are written as head and body; with Nagle's algorithm on, a body that
        // does not fit the head's segment waits for the client's delayed ACK (40 ms on
        // Linux). `make bench` showed it on every larger response (a 100-item batch).
        .on_connect(|connection, _| {
            if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
                && let Err(error) = tcp.set_nodelay(true)
            {
                tracing::warn!(%error, "could not set TCP_NODELAY");
            }
        })
        .shutdown_timeout(config.shutdown_timeout.as_secs())
        // `crm serve` handles SIGINT/SIGTERM itself, to stop webhook delivery and the
        // HTTP server together (see main.rs); an embedding stops it through its handle.
        .disable_signals()
        .max_connection_rate(1024);
    if let Some(workers) = config.workers {
        server = server.workers(workers);
    }
    let server = server
        .bind(&config.bind_addr)
        .map_err(|e| StartError::Bind(config.bind_addr.clone(), e))?;
    let address = server.addrs().first().copied().ok_or_else(|| {
        StartError::Bind(
            config.bind_addr.clone(),
            std::io::Error::other("no address bound"),
        )
    })?;
    let server = server.run();
    Ok(Running {
        address,
        server,
        store,
        worker_store,
    })
}

/// Connects the delivery worker's pool to `url` (the worker role, `crm_worker`) and
/// refuses a role that could bypass row-level security or cannot claim deliveries, as
/// the API's start-up check does for `crm_app`.
///
/// # Errors
/// [`StartError::WorkerConnect`] or [`StartError::Role`].
pub async fn connect_worker(url: &str, config: &WebhookConfig) -> Result<PgStore, StartError> {
    let store = PgStore::connect(
        url,
        &PoolOptions {
            max_connections: config.worker_pool_size,
            acquire_timeout: Duration::from_secs(5),
            ..PoolOptions::default()
        },
    )
    .await
    .map_err(|cause| StartError::WorkerConnect {
        url: without_password(url),
        cause,
    })?;
    store.verify_worker_role().await?;
    Ok(store)
}

/// `url` without the password of its user, for messages.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// The rate limiter the configuration asks for: in process (governor), or shared through
/// Redis with the in-process one answering while Redis is away. Either way a task
/// forgets idle keys every minute, so memory follows the clients of the last window.
///
/// # Errors
/// [`StartError::RateLimit`] when the Redis URL cannot be parsed.
fn rate_limits(config: &RateLimitConfig) -> Result<RateLimits, StartError> {
    let local = Arc::new(GovernorRateLimiter::new(&config.policies));
    let sweeping = Arc::downgrade(&local);
    actix_web::rt::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticker.tick().await;
            let Some(limiter) = sweeping.upgrade() else {
                return;
            };
            limiter.sweep();
        }
    });
    let limiter: Arc<dyn ports::RateLimiter> = match &config.redis_url {
        None => local,
        Some(url) => {
            tracing::info!("rate limits shared through Redis");
            Arc::new(
                RedisRateLimiter::new(url, &config.redis_prefix, local)
                    .map_err(|e| StartError::RateLimit(e.to_string()))?,
            )
        }
    };
    Ok(RateLimits {
        limiter,
        policies: config.policies,
        trusted_proxies: config.trusted_proxies.clone(),
        resolved: api_actix::rate_limit::ResolvedCredentials::default(),
    })
}

/// The webhook sender for the configuration (one is made per worker thread).
#[must_use]
pub fn webhook_sender(config: &WebhookConfig) -> AwcWebhookSender {
    AwcWebhookSender::new(SenderConfig {
        allow_private: config.allow_private,
        allow_http: config.allow_http,
        timeout: config.timeout,
        ..SenderConfig::default()
    })
}

fn webhook_api(config: &WebhookConfig) -> WebhookApi {
    let config = config.clone();
    // One bound for the whole process: every HTTP worker thread's sender shares it.
    let slots = VetSlots::new(config.dns_concurrency);
    WebhookApi {
        secret_grace: config.secret_grace,
        make_sender: Arc::new(move || {
            Rc::new(webhook_sender(&config).with_vet_slots(slots.clone()))
                as Rc<dyn ports::WebhookSender>
        }),
    }
}

/// Delivers due webhooks until `stop` turns true: claims a batch, delivers it, and claims
/// again at once while there is work; idle, it looks every `poll_interval`. Once an hour
/// it forgets events and attempts older than the retention period. Failures are logged
/// and retried (the database may be restarting).
///
/// Stopping is graceful: a pass under way finishes (each send is bounded by the webhook
/// timeout) and records its outcomes, then no new pass starts. A delivery in flight when
/// the process dies instead is retried by any worker once its lease expires.
pub async fn deliver_until(
    store: PgStore,
    config: WebhookConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let sender = webhook_sender(&config);
    let mut last_sweep: Option<std::time::Instant> = None;
    while !*stop.borrow() {
        if last_sweep.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
            last_sweep = Some(std::time::Instant::now());
            match ports::DeliveryQueue::sweep_history(&store, config.retention).await {
                Ok(0) => {}
                Ok(removed) => {
                    metrics::record_sweep("webhook_history", removed);
                    tracing::info!(removed, "old webhook events and attempts deleted");
                }
                Err(error) => tracing::warn!(%error, "webhook history sweep failed"),
            }
        }
        let idle = match app::webhooks::deliver_due(
            &store,
            &sender,
            &api_actix::events::JsonEventRenderer,
            &config.worker,
        )
        .await
        {
            Ok(0) => true,
            Ok(attempted) => {
                tracing::debug!(attempted, "webhook deliveries attempted");
                false
            }
            Err(error) => {
                tracing::warn!(%error, "webhook delivery pass failed; retrying");
                true
            }
        };
        if idle {
            tokio::select! {
                () = tokio::time::sleep(config.poll_interval) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        break; // the sender is gone: nobody can ask us to go on
                    }
                }
            }
        }
    }
    tracing::info!("webhook delivery stopped");
}

/// Runs the demo sweep every `interval` until the process ends; failures are logged and
/// retried next time (the database may be restarting).
pub async fn sweep_forever(store: PgStore, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        match app::demo::sweep_expired(&store).await {
            Ok(0) => {}
            Ok(removed) => {
                metrics::record_sweep("demo_tenants", removed);
                tracing::info!(removed, "expired demo tenants deleted");
            }
            Err(error) => tracing::warn!(%error, "demo sweep failed; retrying next interval"),
        }
    }
}

/// `crm tenant create`: provisions a tenant and prints `{"tenantId", "apiKey"}`.
///
/// # Errors
/// Connection, validation or storage failures, as text for the operator.
pub async fn create_tenant(
    migration_url: &str,
    name: &str,
    owner_email: Option<&str>,
) -> Result<serde_json::Value, String> {
    let provisioning = PgProvisioning::connect(migration_url)
        .await
        .map_err(|e| e.to_string())?;
    let made = app::tenants::provision_tenant(&provisioning, name, owner_email)
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({
        "tenantId": made.tenant.tenant_id.to_string(),
        "apiKey": made.api_key.expose(),
    }))
}
