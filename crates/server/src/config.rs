//! Configuration from the environment, validated once at start with messages that say
//! which variable is wrong and what it should look like.

use std::time::Duration;

use api_actix::client_ip::TrustedProxies;
use domain::rate_limit::{PolicyName, RatePolicies, RatePolicy, RatePolicyError};
use thiserror::Error;

/// A configuration problem, named by variable.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is not set: {1}")]
    Missing(&'static str, &'static str),
    /// A variable is set to something unusable.
    #[error("{0}={1:?} is invalid: {2}")]
    Invalid(&'static str, String, &'static str),
}

/// Everything `crm serve` needs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The application role's URL (`crm_app`).
    pub database_url: String,
    /// The owner/superuser URL; when set, pending migrations are applied at start.
    pub migration_database_url: Option<String>,
    /// Where to listen, `host:port`.
    pub bind_addr: String,
    /// Most database connections.
    pub pool_size: u32,
    /// When PostgreSQL is reached through its Unix socket, the statements sent on their
    /// own share this many pipelined connections (`DB_PIPELINES`, default one per core,
    /// at most half of `pool_size`; 0 for one statement per connection).
    pub pipelined_connections: u32,
    /// HTTP worker threads (actix default: one per core).
    pub workers: Option<usize>,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// Session, demo and QR lifetimes.
    pub auth: app::auth::AuthSettings,
    /// How often expired demo sandboxes are swept.
    pub sweep_interval: Duration,
    /// Rate-limit policies, trusted proxies and the optional shared (Redis) limiter.
    pub rate_limits: RateLimitConfig,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// When set, `GET /metrics` needs `Authorization: Bearer <this>` (`METRICS_TOKEN`).
    pub metrics_token: Option<String>,
}

/// Webhook delivery, from `WEBHOOK_*`.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Deliver to private, loopback and link-local addresses (tests, local receivers).
    pub allow_private: bool,
    /// Deliver over plain http.
    pub allow_http: bool,
    /// Retries, attempt batch and lease.
    pub worker: app::webhooks::WorkerSettings,
    /// How often an idle worker looks for due deliveries.
    pub poll_interval: Duration,
    /// How long a rotated-out secret keeps signing.
    pub secret_grace: Duration,
    /// How long events and attempts are kept.
    pub retention: Duration,
    /// Whether `crm serve` also delivers (as well as any `crm worker`).
    pub deliver_in_serve: bool,
    /// How long an endpoint has to answer (SPEC: 2xx within 15 s); shorter in tests.
    pub timeout: Duration,
    /// The worker role's URL (`WORKER_DATABASE_URL`); `None`: the API's `DATABASE_URL`
    /// with its user replaced by `crm_worker` (and no password), see [`as_worker_role`].
    pub worker_database_url: Option<String>,
    /// Connections of the worker's pool (`WEBHOOK_POOL_SIZE`).
    pub worker_pool_size: u32,
    /// Registration DNS look-ups that may run at once, process-wide
    /// (`WEBHOOK_DNS_CONCURRENCY`); more wait up to half a second, then get 503.
    pub dns_concurrency: usize,
}

/// The login role of the delivery worker (migration 0017).
pub const WORKER_ROLE: &str = "crm_worker";

/// `url` with its user replaced by [`WORKER_ROLE`] and any password dropped: the default
/// worker URL, on the API's server and database. A development cluster trusts local
/// connections, so this is all `make run` and the tests need; a deployment with
/// passwords sets `WORKER_DATABASE_URL` instead.
#[must_use]
pub fn as_worker_role(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{WORKER_ROLE}@{host}{tail}")
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            allow_http: false,
            worker: app::webhooks::WorkerSettings::default(),
            poll_interval: Duration::from_millis(500),
            secret_grace: Duration::from_secs(86_400),
            retention: Duration::from_secs(30 * 86_400),
            deliver_in_serve: true,
            timeout: Duration::from_secs(15),
            worker_database_url: None,
            worker_pool_size: 4,
            dns_concurrency: adapters_http::DEFAULT_VET_SLOTS,
        }
    }
}

fn flag(name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(ConfigError::Invalid(name, v, "expected true or false")),
    }
}

impl WebhookConfig {
    /// Reads and checks the webhook variables.
    ///
    /// # Errors
    /// [`ConfigError`] for the first bad variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let schedule = match var("WEBHOOK_RETRY_SCHEDULE") {
            None => defaults.worker.schedule.clone(),
            Some(raw) => domain::webhook::RetrySchedule::parse(&raw).map_err(|_| {
                ConfigError::Invalid(
                    "WEBHOOK_RETRY_SCHEDULE",
                    raw.clone(),
                    "expected comma-separated durations, e.g. 0s,5s,5m,30m,2h (1 to 20)",
                )
            })?,
        };
        let config = Self {
            allow_private: flag("WEBHOOK_ALLOW_PRIVATE", false)?,
            allow_http: flag("WEBHOOK_ALLOW_HTTP", false)?,
            worker: app::webhooks::WorkerSettings {
                schedule,
                lease: seconds(
                    "WEBHOOK_LEASE_SECS",
                    defaults.worker.lease.as_secs(),
                    1..=3600,
                )?,
                ..defaults.worker
            },
            poll_interval: milliseconds("WEBHOOK_POLL_INTERVAL_MS", 500, 10..=60_000)?,
            secret_grace: seconds("WEBHOOK_SECRET_GRACE_SECS", 86_400, 0..=2_592_000)?,
            // The database keeps at least 7 days whatever the worker asks (migration
            // 0017): refuse a shorter setting here rather than silently not honour it.
            retention: Duration::from_secs(
                86_400
                    * bounded(
                        "WEBHOOK_RETENTION_DAYS",
                        30,
                        7..=3650,
                        "expected whole days",
                    )?,
            ),
            deliver_in_serve: flag("WEBHOOK_DELIVER_IN_SERVE", true)?,
            timeout: milliseconds("WEBHOOK_TIMEOUT_MS", 15_000, 100..=15_000)?,
            worker_database_url: var("WORKER_DATABASE_URL")
                .map(|url| postgres_url("WORKER_DATABASE_URL", url))
                .transpose()?,
            worker_pool_size: u32::try_from(bounded(
                "WEBHOOK_POOL_SIZE",
                u64::from(defaults.worker_pool_size),
                1..=1000,
                "expected a number of connections, 1-1000",
            )?)
            .unwrap_or(defaults.worker_pool_size),
            dns_concurrency: usize::try_from(bounded(
                "WEBHOOK_DNS_CONCURRENCY",
                8,
                1..=256,
                "expected a number of look-ups, 1-256",
            )?)
            .unwrap_or(defaults.dns_concurrency),
        };
        // A lease that can run out while its holder still waits for the endpoint hands
        // the delivery to a second worker: the endpoint would get it twice as a rule.
        if config.worker.lease <= config.timeout {
            return Err(ConfigError::Invalid(
                "WEBHOOK_LEASE_SECS",
                config.worker.lease.as_secs().to_string(),
                "must be longer than the send timeout (WEBHOOK_TIMEOUT_MS, 15 s by default)",
            ));
        }
        Ok(config)
    }
}

/// Rate limiting, from `RATE_LIMIT_<POLICY>`, `TRUSTED_PROXIES`, `RATE_LIMIT_REDIS_URL`
/// and `RATE_LIMIT_REDIS_PREFIX`.
#[derive(Clone, Debug)]
pub struct RateLimitConfig {
    /// The five quotas (defaults in `RatePolicies::default`, documented in operations.md).
    pub policies: RatePolicies,
    /// Proxies whose forwarding headers are believed (none by default).
    pub trusted_proxies: TrustedProxies,
    /// When set, limits are shared through this Redis (GCRA in a Lua script).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so deployments sharing a Redis stay apart.
    pub redis_prefix: String,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            policies: RatePolicies::default(),
            trusted_proxies: TrustedProxies::default(),
            redis_url: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
        }
    }
}

/// Default prefix of the rate limiter's Redis keys.
pub const DEFAULT_REDIS_PREFIX: &str = "crm:ratelimit:";

/// The environment variable of a policy: `RATE_LIMIT_AUTHENTICATED`, ...
fn policy_variable(name: PolicyName) -> &'static str {
    match name {
        PolicyName::Public => "RATE_LIMIT_PUBLIC",
        PolicyName::Auth => "RATE_LIMIT_AUTH",
        PolicyName::Qr => "RATE_LIMIT_QR",
        PolicyName::Authenticated => "RATE_LIMIT_AUTHENTICATED",
        PolicyName::Tenant => "RATE_LIMIT_TENANT",
    }
}

impl RateLimitConfig {
    /// Reads and checks the rate-limit variables.
    ///
    /// # Errors
    /// [`ConfigError`] for the first bad variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut policies = RatePolicies::default();
        for name in PolicyName::ALL {
            let variable = policy_variable(name);
            if let Some(raw) = var(variable) {
                let policy = RatePolicy::parse(name, &raw).map_err(|error| {
                    ConfigError::Invalid(variable, raw.clone(), rate_policy_reason(error))
                })?;
                policies.set(policy);
            }
        }
        let trusted_proxies = match var("TRUSTED_PROXIES") {
            None => TrustedProxies::default(),
            Some(raw) => TrustedProxies::parse(&raw).map_err(|_| {
                ConfigError::Invalid(
                    "TRUSTED_PROXIES",
                    raw.clone(),
                    "expected comma-separated CIDRs, e.g. 127.0.0.1/32,10.0.0.0/8",
                )
            })?,
        };
        let redis_url = var("RATE_LIMIT_REDIS_URL");
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(ConfigError::Invalid(
                "RATE_LIMIT_REDIS_URL",
                url.clone(),
                "expected redis://host:port[/db] or rediss://...",
            ));
        }
        let redis_prefix =
            var("RATE_LIMIT_REDIS_PREFIX").unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned());
        Ok(Self {
            policies,
            trusted_proxies,
            redis_url,
            redis_prefix,
        })
    }
}

const fn rate_policy_reason(error: RatePolicyError) -> &'static str {
    match error {
        RatePolicyError::Shape => "expected <quota>/<window seconds>, e.g. 600/60",
        RatePolicyError::Quota => "the quota must be 1 to 1000000 requests",
        RatePolicyError::Window => "the window must be 1 to 86400 seconds",
    }
}

fn seconds(
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    bounded(name, default, range, "expected whole seconds").map(Duration::from_secs)
}

fn milliseconds(
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    bounded(name, default, range, "expected milliseconds").map(Duration::from_millis)
}

/// A whole number from `name` (else `default`) that must lie in `range`.
fn bounded(
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &'static str,
) -> Result<u64, ConfigError> {
    let value: u64 = number(name, default, unit)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid(
            name,
            value.to_string(),
            "out of range",
        ))
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn postgres_url(name: &'static str, value: String) -> Result<String, ConfigError> {
    if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        Ok(value)
    } else {
        Err(ConfigError::Invalid(
            name,
            value,
            "expected postgres://user@host:port/database",
        ))
    }
}

fn number<T: std::str::FromStr>(
    name: &'static str,
    default: T,
    what: &'static str,
) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| ConfigError::Invalid(name, raw, what)),
    }
}

/// The migration URL alone (`crm migrate`, `crm tenant create`).
///
/// # Errors
/// [`ConfigError`] when unset or malformed.
pub fn migration_url() -> Result<String, ConfigError> {
    let url = var("MIGRATION_DATABASE_URL").ok_or(ConfigError::Missing(
        "MIGRATION_DATABASE_URL",
        "set it to an owner or superuser URL, e.g. postgres://postgres@127.0.0.1:5432/crm",
    ))?;
    postgres_url("MIGRATION_DATABASE_URL", url)
}

/// What `crm worker` needs: the worker role's URL (`WORKER_DATABASE_URL`, else
/// `DATABASE_URL` as [`WORKER_ROLE`]) and the webhook settings.
///
/// # Errors
/// [`ConfigError`] when neither URL is set, or for the first bad variable.
pub fn worker_config() -> Result<(String, WebhookConfig), ConfigError> {
    let webhooks = WebhookConfig::from_env()?;
    let url = match &webhooks.worker_database_url {
        Some(url) => url.clone(),
        None => as_worker_role(&postgres_url(
            "DATABASE_URL",
            var("DATABASE_URL").ok_or(ConfigError::Missing(
                "WORKER_DATABASE_URL",
                "set it to the worker role's URL, e.g. postgres://crm_worker@127.0.0.1:5432/crm (or set DATABASE_URL, whose server and database are then used as crm_worker)",
            ))?,
        )?),
    };
    Ok((url, webhooks))
}

impl ServeConfig {
    /// The URL the delivery worker connects with: `WORKER_DATABASE_URL`, else
    /// `DATABASE_URL` as [`WORKER_ROLE`].
    #[must_use]
    pub fn worker_database_url(&self) -> String {
        self.webhooks
            .worker_database_url
            .clone()
            .unwrap_or_else(|| as_worker_role(&self.database_url))
    }

    /// Reads and checks the environment.
    ///
    /// # Errors
    /// [`ConfigError`] for the first bad variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let database_url = var("DATABASE_URL").ok_or(ConfigError::Missing(
            "DATABASE_URL",
            "set it to the application role's URL, e.g. postgres://crm_app@127.0.0.1:5432/crm",
        ))?;
        let database_url = postgres_url("DATABASE_URL", database_url)?;
        let migration_database_url = var("MIGRATION_DATABASE_URL")
            .map(|url| postgres_url("MIGRATION_DATABASE_URL", url))
            .transpose()?;
        let bind_addr = var("BIND_ADDR").unwrap_or_else(|| "0.0.0.0:8080".to_owned());
        if bind_addr
            .rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            return Err(ConfigError::Invalid(
                "BIND_ADDR",
                bind_addr,
                "expected host:port, e.g. 127.0.0.1:8080",
            ));
        }
        let pool_size: u32 = number(
            "DB_POOL_SIZE",
            16,
            "expected a number of connections, 1-1000",
        )?;
        if !(1..=1000).contains(&pool_size) {
            return Err(ConfigError::Invalid(
                "DB_POOL_SIZE",
                pool_size.to_string(),
                "expected 1-1000",
            ));
        }
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let pipelined_connections = u32::try_from(bounded(
            "DB_PIPELINES",
            u64::try_from(cores).unwrap_or(1),
            0..=64,
            "expected a number of connections, 0-64",
        )?)
        .unwrap_or(1);
        let workers = match var("HTTP_WORKERS") {
            None => None,
            Some(raw) => Some(
                raw.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .ok_or(ConfigError::Invalid("HTTP_WORKERS", raw, "expected 1-256"))?,
            ),
        };
        let shutdown_secs: u64 = number("SHUTDOWN_TIMEOUT_SECS", 30, "expected whole seconds")?;
        let defaults = app::auth::AuthSettings::default();
        let auth = app::auth::AuthSettings {
            session_ttl: seconds(
                "SESSION_TTL_SECS",
                defaults.session_ttl.as_secs(),
                60..=31_536_000,
            )?,
            session_idle_timeout: seconds(
                "SESSION_IDLE_TIMEOUT_SECS",
                defaults.session_idle_timeout.as_secs(),
                60..=31_536_000,
            )?,
            demo_ttl: seconds("DEMO_TTL_SECS", defaults.demo_ttl.as_secs(), 60..=2_592_000)?,
            qr_ttl: seconds("QR_TTL_SECS", defaults.qr_ttl.as_secs(), 10..=3600)?,
            qr_poll_interval_seconds: i32::try_from(
                seconds("QR_POLL_INTERVAL_SECS", 2, 1..=60)?.as_secs(),
            )
            .unwrap_or(2),
        };
        let sweep_interval = seconds("SWEEP_INTERVAL_SECS", 300, 1..=86_400)?;
        Ok(Self {
            database_url,
            migration_database_url,
            bind_addr,
            pool_size,
            pipelined_connections,
            workers,
            shutdown_timeout: Duration::from_secs(shutdown_secs),
            auth,
            sweep_interval,
            rate_limits: RateLimitConfig::from_env()?,
            webhooks: WebhookConfig::from_env()?,
            metrics_token: metrics_token()?,
        })
    }
}

/// `METRICS_TOKEN`: absent or empty for an open `/metrics`; else 16 to 256 printable
/// characters (a scrape token short enough to guess would guard nothing).
fn metrics_token() -> Result<Option<String>, ConfigError> {
    match var("METRICS_TOKEN").filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(token)
            if (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(token))
        }
        Some(_) => Err(ConfigError::Invalid(
            "METRICS_TOKEN",
            "(hidden)".to_owned(),
            "expected 16 to 256 printable characters without spaces",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::as_worker_role;

    #[test]
    fn the_default_worker_url_is_the_api_url_as_crm_worker_without_password() {
        assert_eq!(
            as_worker_role("postgres://crm_app@127.0.0.1:5432/crm"),
            "postgres://crm_worker@127.0.0.1:5432/crm"
        );
        assert_eq!(
            as_worker_role("postgresql://crm_app:s3cr@t@db.internal/crm?sslmode=require"),
            "postgresql://crm_worker@db.internal/crm?sslmode=require"
        );
        assert_eq!(
            as_worker_role("postgres://127.0.0.1:5432/crm"),
            "postgres://crm_worker@127.0.0.1:5432/crm"
        );
        assert_eq!(
            as_worker_role("postgres://h?user=x"),
            "postgres://crm_worker@h?user=x"
        );
    }
}
