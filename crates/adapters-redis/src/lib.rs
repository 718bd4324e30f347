//! The shared rate limiter: GCRA computed atomically inside Redis, so several API
//! instances enforce one combined limit per key.
//!
//! One Lua script per check reads the key's theoretical arrival time, decides, and
//! stores the new one, all on Redis' own clock (`TIME`), so instances with skewed clocks
//! still agree. The arithmetic is the same as `domain::rate_limit::gcra`, in
//! microseconds.
//!
//! Redis is a dependency the API must survive losing: when it cannot be reached (or
//! answers too slowly), the check is answered by a local fallback limiter and a warning
//! is logged once per outage; for the next second Redis is not asked at all, so an
//! outage adds no latency. Then it is tried again, and the first success logs the
//! recovery. While Redis is down each instance counts on its own.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::rate_limit::{RateDecision, RatePolicy};
use ports::{BoxFuture, RateLimiter};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script};

/// GCRA in microseconds on Redis' clock. KEYS[1]: the counter. ARGV[1]: emission
/// interval, ARGV[2]: window. Answers {allowed, remaining, reset_after, retry_after}.
const GCRA_SCRIPT: &str = r"
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
return {1, math.floor((window - (new_tat - now)) / interval), new_tat - now, 0}
";

/// How long a check may wait for Redis before the fallback answers.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);
/// How long after a failure Redis is left alone.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Why the Redis limiter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("RATE_LIMIT_REDIS_URL is not a usable Redis URL: {0}")]
pub struct RedisConfigError(String);

#[derive(Default)]
struct Link {
    connection: Option<MultiplexedConnection>,
    /// Set while Redis is considered down: the moment to try again.
    down_until: Option<Instant>,
}

/// A [`RateLimiter`] over Redis, with a local limiter `F` answering while Redis is away.
pub struct RedisRateLimiter<F> {
    client: Client,
    prefix: String,
    script: Script,
    link: Mutex<Link>,
    fallback: F,
}

impl<F> std::fmt::Debug for RedisRateLimiter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Why one Redis check failed (logged, never returned to callers).
#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected reply {0:?}")]
    Reply(Vec<i64>),
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl<F: RateLimiter> RedisRateLimiter<F> {
    /// A limiter on the Redis at `url` (not contacted yet: the first check connects),
    /// with every key under `prefix` (so deployments sharing a Redis stay apart).
    ///
    /// # Errors
    /// [`RedisConfigError`] when the URL cannot be parsed.
    pub fn new(url: &str, prefix: &str, fallback: F) -> Result<Self, RedisConfigError> {
        let client = Client::open(url).map_err(|e| RedisConfigError(e.to_string()))?;
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
            script: Script::new(GCRA_SCRIPT),
            link: Mutex::new(Link::default()),
            fallback,
        })
    }

    /// The connection to use, or `None` while Redis is resting after a failure.
    async fn connection(&self) -> Result<Option<MultiplexedConnection>, CheckError> {
        {
            let link = self
                .link
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if link.down_until.is_some_and(|until| Instant::now() < until) {
                return Ok(None);
            }
            if let Some(connection) = &link.connection {
                return Ok(Some(connection.clone()));
            }
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(RESPONSE_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut link = self
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        link.connection = Some(connection.clone());
        Ok(Some(connection))
    }

    async fn check_redis(
        &self,
        policy: &RatePolicy,
        key: &str,
    ) -> Result<Option<RateDecision>, CheckError> {
        let Some(mut connection) = self.connection().await? else {
            return Ok(None);
        };
        let redis_key = format!("{}{}:{key}", self.prefix, policy.name);
        let mut invocation = self.script.key(redis_key);
        invocation
            .arg(micros(policy.emission_interval()).max(1))
            .arg(micros(policy.window));
        let reply: Vec<i64> =
            tokio::time::timeout(RESPONSE_TIMEOUT, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| CheckError::Timeout(RESPONSE_TIMEOUT))??;
        let [allowed, remaining, reset_after, retry_after] = reply[..] else {
            return Err(CheckError::Reply(reply));
        };
        let duration = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        Ok(Some(RateDecision {
            policy: *policy,
            allowed: allowed == 1,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_after: duration(reset_after),
            retry_after: duration(retry_after),
        }))
    }

    /// Marks Redis down (logging the start of an outage once) or up again.
    fn record(&self, outcome: Result<(), &CheckError>) {
        let mut link = self
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome {
            Ok(()) => {
                if link.down_until.take().is_some() {
                    tracing::info!("Redis rate limiter reachable again; limits are shared");
                }
            }
            Err(error) => {
                if link.down_until.is_none() {
                    tracing::warn!(
                        %error,
                        "Redis rate limiter unreachable; limiting in process until it returns"
                    );
                }
                link.connection = None;
                link.down_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
            }
        }
    }
}

impl<F: RateLimiter> RateLimiter for RedisRateLimiter<F> {
    fn check<'a>(&'a self, policy: &'a RatePolicy, key: &'a str) -> BoxFuture<'a, RateDecision> {
        Box::pin(async move {
            match self.check_redis(policy, key).await {
                Ok(Some(decision)) => {
                    self.record(Ok(()));
                    decision
                }
                Ok(None) => self.fallback.check(policy, key).await,
                Err(error) => {
                    self.record(Err(&error));
                    self.fallback.check(policy, key).await
                }
            }
        })
    }
}
