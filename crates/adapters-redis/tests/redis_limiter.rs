//! The Redis limiter against a real Redis: `TEST_REDIS_URL` (set by `make test`, which
//! starts a private `redis-server` when none answers), else 127.0.0.1:6379.

use std::num::NonZeroU32;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use adapters_governor::GovernorRateLimiter;
use adapters_redis::RedisRateLimiter;
use domain::rate_limit::{RatePolicies, RatePolicy};
use ports::RateLimiter;

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

fn policies(quota: u32, window_seconds: u64) -> RatePolicies {
    RatePolicies::uniform(
        NonZeroU32::new(quota).expect("non-zero"),
        Duration::from_secs(window_seconds),
    )
}

/// A limiter on `url` under a prefix of this test's own.
fn limiter(url: &str, prefix: &str, all: &RatePolicies) -> RedisRateLimiter<GovernorRateLimiter> {
    RedisRateLimiter::new(url, prefix, GovernorRateLimiter::new(all)).expect("valid URL")
}

fn unique_prefix() -> String {
    format!("crm-test:{}:", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn two_instances_sharing_redis_allow_the_quota_once_not_twice() {
    let all = policies(5, 60);
    let prefix = unique_prefix();
    let first = limiter(&redis_url(), &prefix, &all);
    let second = limiter(&redis_url(), &prefix, &all);
    let mut allowed = 0;
    for n in 0..12 {
        let instance = if n % 2 == 0 { &first } else { &second };
        if instance.check(&all.authenticated, "one-key").await.allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5, "one combined limit");
    let refused = first.check(&all.authenticated, "one-key").await;
    assert!(!refused.allowed);
    assert_eq!(
        refused.retry_after_seconds(),
        12,
        "60 s / 5 requests, rounded up"
    );
    assert!(
        second.check(&all.authenticated, "other-key").await.allowed,
        "keys are independent"
    );
}

#[tokio::test]
async fn remaining_counts_down_by_one_and_reset_stays_within_the_window() {
    let all = policies(4, 60);
    let redis = limiter(&redis_url(), &unique_prefix(), &all);
    let mut previous = u32::MAX;
    for expected in (0..4).rev() {
        let decision = redis.check(&all.tenant, "tenant-a").await;
        assert!(decision.allowed);
        assert_eq!(decision.remaining, expected);
        assert!(decision.remaining < previous);
        assert!(decision.reset_after <= Duration::from_secs(60));
        assert!(decision.reset_after > Duration::ZERO);
        previous = decision.remaining;
    }
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_the_in_process_limit() {
    let all = policies(3, 60);
    // Nothing listens on port 1.
    let redis = limiter("redis://127.0.0.1:1", &unique_prefix(), &all);
    let outcomes: Vec<bool> = futures_outcomes(&redis, &all.public, "ip:203.0.113.9", 4).await;
    assert_eq!(
        outcomes,
        vec![true, true, true, false],
        "still limited, by the fallback"
    );
}

async fn futures_outcomes(
    limiter: &RedisRateLimiter<GovernorRateLimiter>,
    policy: &RatePolicy,
    key: &str,
    count: usize,
) -> Vec<bool> {
    let mut outcomes = Vec::with_capacity(count);
    for _ in 0..count {
        outcomes.push(limiter.check(policy, key).await.allowed);
    }
    outcomes
}

/// A private `redis-server` on a free port, killed on drop.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = Command::new(
            std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned()),
        )
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts (make test installs it)");
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not start on {}", self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn the_shared_limit_returns_when_redis_comes_back() {
    let all = policies(2, 60);
    let port = free_port();
    let server = PrivateRedis::start(port);
    server.wait_ready().await;
    let prefix = unique_prefix();
    let first = limiter(&server.url(), &prefix, &all);
    let second = limiter(&server.url(), &prefix, &all);
    assert!(first.check(&all.authenticated, "k").await.allowed);
    assert!(second.check(&all.authenticated, "k").await.allowed);
    assert!(
        !first.check(&all.authenticated, "k").await.allowed,
        "shared: quota spent"
    );

    drop(server);
    // Redis is gone: each instance answers from its own fallback, which has seen none of
    // this key's requests yet.
    assert!(first.check(&all.authenticated, "k").await.allowed);
    assert!(second.check(&all.authenticated, "k").await.allowed);

    let server = PrivateRedis::start(port);
    server.wait_ready().await;
    // After the one-second rest, Redis is asked again; the restarted server kept nothing,
    // so the key starts whole there and both instances share it once more.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(first.check(&all.authenticated, "k").await.allowed);
    assert!(second.check(&all.authenticated, "k").await.allowed);
    assert!(
        !first.check(&all.authenticated, "k").await.allowed,
        "shared again"
    );
    assert!(!second.check(&all.authenticated, "k").await.allowed);
}
