//! The in-process rate limiter: one governor keyed GCRA limiter per policy, behind the
//! [`ports::RateLimiter`] port. Production code (the server's limiter, and the Redis
//! limiter's local fallback), so it has a crate of its own rather than living in the
//! in-memory test adapter.
//!
//! Exact for one process; several API instances each count on their own (use the Redis
//! adapter to share). Keys are kept in governor's concurrent map until [`sweep`]
//! forgets those whose quota is whole again, so memory follows the number of clients
//! active within one window, not every client ever seen.
//!
//! [`sweep`]: GovernorRateLimiter::sweep

use std::time::Duration;

use domain::rate_limit::{PolicyName, RateDecision, RatePolicies, RatePolicy};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Governor};
use ports::{BoxFuture, RateLimiter};

type KeyedLimiter =
    Governor<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One keyed governor limiter per policy, built from the configured quotas.
pub struct GovernorRateLimiter {
    limiters: Vec<(RatePolicy, KeyedLimiter)>,
    clock: DefaultClock,
}

impl std::fmt::Debug for GovernorRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernorRateLimiter")
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

fn quota_of(policy: &RatePolicy) -> Quota {
    // A window divided by a quota of at most 1 000 000 is never zero for windows of at
    // least a second (both bounds are enforced by `RatePolicy::parse`); the fallback only
    // guards hand-built policies.
    Quota::with_period(policy.emission_interval())
        .unwrap_or_else(|| Quota::per_second(policy.quota))
        .allow_burst(policy.quota)
}

impl GovernorRateLimiter {
    /// A limiter for each of the five policies.
    #[must_use]
    pub fn new(policies: &RatePolicies) -> Self {
        let limiters = PolicyName::ALL
            .iter()
            .map(|name| {
                let policy = *policies.get(*name);
                let limiter = Governor::keyed(quota_of(&policy))
                    .with_middleware::<StateInformationMiddleware>();
                (policy, limiter)
            })
            .collect();
        Self {
            limiters,
            clock: DefaultClock::default(),
        }
    }

    fn limiter(&self, policy: &RatePolicy) -> Option<&KeyedLimiter> {
        self.limiters
            .iter()
            .find(|(configured, _)| configured.name == policy.name)
            .map(|(_, limiter)| limiter)
    }

    /// Counts one request synchronously (the port's future just wraps this).
    #[must_use]
    pub fn check_now(&self, policy: &RatePolicy, key: &str) -> RateDecision {
        let interval = policy.emission_interval();
        let Some(limiter) = self.limiter(policy) else {
            // A policy this limiter was not built for: count nothing, refuse nothing. Only a
            // wiring mistake gets here; the server builds both from the same configuration.
            return RateDecision {
                policy: *policy,
                allowed: true,
                remaining: policy.quota.get(),
                reset_after: Duration::ZERO,
                retry_after: Duration::ZERO,
            };
        };
        match limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                RateDecision {
                    policy: *policy,
                    allowed: true,
                    remaining,
                    reset_after: interval * (policy.quota.get().saturating_sub(remaining)),
                    retry_after: Duration::ZERO,
                }
            }
            Err(not_until) => RateDecision {
                policy: *policy,
                allowed: false,
                remaining: 0,
                reset_after: policy.window,
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        }
    }

    /// Forgets every key whose quota is whole again and gives the memory back. Run it on
    /// a timer (the server does, every minute).
    pub fn sweep(&self) {
        for (_, limiter) in &self.limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Keys currently remembered, over every policy.
    #[must_use]
    pub fn len(&self) -> usize {
        self.limiters.iter().map(|(_, limiter)| limiter.len()).sum()
    }

    /// True when no key is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RateLimiter for GovernorRateLimiter {
    fn check<'a>(&'a self, policy: &'a RatePolicy, key: &'a str) -> BoxFuture<'a, RateDecision> {
        let decision = self.check_now(policy, key);
        Box::pin(std::future::ready(decision))
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn policies(quota: u32, window_seconds: u64) -> RatePolicies {
        RatePolicies::uniform(
            NonZeroU32::new(quota).expect("non-zero"),
            Duration::from_secs(window_seconds),
        )
    }

    #[test]
    fn the_quota_is_allowed_at_once_and_the_next_request_is_refused() {
        let all = policies(3, 60);
        let limiter = GovernorRateLimiter::new(&all);
        let remaining: Vec<u32> = (0..3)
            .map(|_| limiter.check_now(&all.authenticated, "key-a").remaining)
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = limiter.check_now(&all.authenticated, "key-a");
        assert!(!refused.allowed);
        assert_eq!(
            refused.retry_after_seconds(),
            20,
            "one request back every 20 s"
        );
        assert!(
            limiter.check_now(&all.authenticated, "key-b").allowed,
            "keys are independent"
        );
        assert!(
            limiter.check_now(&all.tenant, "key-a").allowed,
            "policies are independent"
        );
    }

    #[test]
    fn a_million_distinct_keys_are_forgotten_by_a_sweep() {
        // One request per key, with one request's worth coming back every millisecond:
        // moments later every key's quota is whole again, so the sweep may forget them all
        // (governor keeps a key one interval longer than strictly needed).
        let all = policies(1000, 1);
        let limiter = GovernorRateLimiter::new(&all);
        for n in 0..1_000_000_u32 {
            assert!(limiter.check_now(&all.public, &format!("ip:{n}")).allowed);
        }
        assert_eq!(limiter.len(), 1_000_000);
        std::thread::sleep(Duration::from_millis(50));
        limiter.sweep();
        assert_eq!(limiter.len(), 0, "every idle key forgotten");
        assert!(
            limiter.check_now(&all.public, "ip:7").allowed,
            "a forgotten key starts with a whole quota"
        );
    }
}
