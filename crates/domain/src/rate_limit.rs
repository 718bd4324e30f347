//! Rate-limit policies and decisions (SPEC §7): what a quota is, how it is written in
//! configuration, and what one check answers. The counting itself is an adapter's job
//! (in-process GCRA, or GCRA in Redis); this module only fixes the vocabulary and the
//! arithmetic every adapter shares.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use thiserror::Error;

/// The five named policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyName {
    /// Unauthenticated routes, per client IP.
    Public,
    /// Sign-up, login and demo-login, per client IP (strict: password guessing).
    Auth,
    /// QR generate (per client IP) and QR status polling (per QR session).
    Qr,
    /// Every request bearing a credential, per API key or session token.
    Authenticated,
    /// All of one tenant's traffic together, so many keys do not multiply the quota.
    Tenant,
}

impl PolicyName {
    /// Every policy, in a fixed order.
    pub const ALL: [Self; 5] = [
        Self::Public,
        Self::Auth,
        Self::Qr,
        Self::Authenticated,
        Self::Tenant,
    ];

    /// The name in headers, logs and error details.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Auth => "auth",
            Self::Qr => "qr",
            Self::Authenticated => "authenticated",
            Self::Tenant => "tenant",
        }
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quota: `quota` requests at once, refilled evenly over `window` (GCRA: one request's
/// worth every `window / quota`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RatePolicy {
    /// Which policy.
    pub name: PolicyName,
    /// Requests allowed at once (the burst).
    pub quota: NonZeroU32,
    /// Time to refill a whole quota.
    pub window: Duration,
}

/// Why a `<quota>/<window seconds>` setting was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum RatePolicyError {
    /// Not two whole numbers separated by `/`.
    #[error("expected <quota>/<window seconds>, e.g. 600/60")]
    Shape,
    /// Quota outside 1..=1 000 000.
    #[error("the quota must be 1 to 1000000 requests")]
    Quota,
    /// Window outside 1..=86 400 seconds.
    #[error("the window must be 1 to 86400 seconds")]
    Window,
}

/// Largest quota a policy may have.
pub const QUOTA_MAX: u32 = 1_000_000;
/// Longest window a policy may have, in seconds (a day).
pub const WINDOW_MAX_SECONDS: u64 = 86_400;

impl RatePolicy {
    /// A policy from numbers already checked by the caller's type system.
    #[must_use]
    pub const fn new(name: PolicyName, quota: NonZeroU32, window: Duration) -> Self {
        Self {
            name,
            quota,
            window,
        }
    }

    /// Parses `<quota>/<window seconds>` (as in `RATE_LIMIT_AUTHENTICATED=600/60`).
    ///
    /// # Errors
    /// [`RatePolicyError`] naming what is wrong.
    pub fn parse(name: PolicyName, text: &str) -> Result<Self, RatePolicyError> {
        let (quota, window) = text.trim().split_once('/').ok_or(RatePolicyError::Shape)?;
        let quota: u32 = quota.trim().parse().map_err(|_| RatePolicyError::Shape)?;
        let window: u64 = window.trim().parse().map_err(|_| RatePolicyError::Shape)?;
        let quota = NonZeroU32::new(quota)
            .filter(|q| q.get() <= QUOTA_MAX)
            .ok_or(RatePolicyError::Quota)?;
        if !(1..=WINDOW_MAX_SECONDS).contains(&window) {
            return Err(RatePolicyError::Window);
        }
        Ok(Self::new(name, quota, Duration::from_secs(window)))
    }

    /// The time one request's worth of quota takes to come back (`window / quota`).
    #[must_use]
    pub fn emission_interval(&self) -> Duration {
        self.window / self.quota.get()
    }
}

/// The five policies in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RatePolicies {
    /// `public`.
    pub public: RatePolicy,
    /// `auth`.
    pub auth: RatePolicy,
    /// `qr`.
    pub qr: RatePolicy,
    /// `authenticated`.
    pub authenticated: RatePolicy,
    /// `tenant`.
    pub tenant: RatePolicy,
}

const fn policy(name: PolicyName, quota: u32, window_seconds: u64) -> RatePolicy {
    let quota = match NonZeroU32::new(quota) {
        Some(quota) => quota,
        None => NonZeroU32::MIN,
    };
    RatePolicy::new(name, quota, Duration::from_secs(window_seconds))
}

impl Default for RatePolicies {
    /// The documented defaults (docs/operations.md).
    fn default() -> Self {
        Self {
            public: policy(PolicyName::Public, 300, 60),
            auth: policy(PolicyName::Auth, 10, 60),
            qr: policy(PolicyName::Qr, 30, 60),
            authenticated: policy(PolicyName::Authenticated, 600, 60),
            tenant: policy(PolicyName::Tenant, 3000, 60),
        }
    }
}

impl RatePolicies {
    /// The policy of that name.
    #[must_use]
    pub const fn get(&self, name: PolicyName) -> &RatePolicy {
        match name {
            PolicyName::Public => &self.public,
            PolicyName::Auth => &self.auth,
            PolicyName::Qr => &self.qr,
            PolicyName::Authenticated => &self.authenticated,
            PolicyName::Tenant => &self.tenant,
        }
    }

    /// Replaces the policy of the same name.
    pub fn set(&mut self, policy: RatePolicy) {
        match policy.name {
            PolicyName::Public => self.public = policy,
            PolicyName::Auth => self.auth = policy,
            PolicyName::Qr => self.qr = policy,
            PolicyName::Authenticated => self.authenticated = policy,
            PolicyName::Tenant => self.tenant = policy,
        }
    }

    /// The same quotas everywhere: for test and benchmark set-ups that must not be limited.
    #[must_use]
    pub fn uniform(quota: NonZeroU32, window: Duration) -> Self {
        let make = |name| RatePolicy::new(name, quota, window);
        Self {
            public: make(PolicyName::Public),
            auth: make(PolicyName::Auth),
            qr: make(PolicyName::Qr),
            authenticated: make(PolicyName::Authenticated),
            tenant: make(PolicyName::Tenant),
        }
    }
}

/// What one check answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// The policy checked.
    pub policy: RatePolicy,
    /// Whether the request may go on (and was counted).
    pub allowed: bool,
    /// Requests still allowed at once after this one.
    pub remaining: u32,
    /// Until the quota is whole again.
    pub reset_after: Duration,
    /// Until the next request would be allowed (zero when `remaining > 0`).
    pub retry_after: Duration,
}

impl RateDecision {
    /// Whole seconds to tell a limited client to wait: rounded up, at least 1.
    #[must_use]
    pub fn retry_after_seconds(&self) -> u64 {
        ceil_seconds(self.retry_after).max(1)
    }

    /// Whether this decision is tighter than `other`: refused beats allowed, then fewer
    /// requests left, then the longer wait to be whole again.
    #[must_use]
    pub fn is_tighter_than(&self, other: &Self) -> bool {
        (!self.allowed, other.remaining, self.reset_after)
            > (!other.allowed, self.remaining, other.reset_after)
    }
}

/// A duration in whole seconds, rounded up.
#[must_use]
pub fn ceil_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// The GCRA decision for one request, given the stored theoretical arrival time (`tat`,
/// as an offset on any monotonic time line, `None` for a key never seen) and `now` on
/// the same line. Returns the decision and, when allowed, the new arrival time to store.
/// Shared by adapters that keep the state themselves (Redis runs the same arithmetic in
/// Lua; this is its reference and its test oracle).
#[must_use]
pub fn gcra(
    policy: &RatePolicy,
    tat: Option<Duration>,
    now: Duration,
) -> (RateDecision, Option<Duration>) {
    let interval = policy.emission_interval();
    let tat = tat.map_or(now, |t| t.max(now));
    let new_tat = tat + interval;
    // Allowed when the new arrival time lies at most one window ahead of now.
    let allow_at = new_tat.saturating_sub(policy.window);
    if allow_at > now {
        let reset_after = tat - now;
        let decision = RateDecision {
            policy: *policy,
            allowed: false,
            remaining: 0,
            reset_after,
            retry_after: allow_at - now,
        };
        return (decision, None);
    }
    let reset_after = new_tat - now;
    let headroom = policy.window.saturating_sub(reset_after);
    let remaining = headroom.as_nanos() / interval.as_nanos().max(1);
    let decision = RateDecision {
        policy: *policy,
        allowed: true,
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        reset_after,
        retry_after: Duration::ZERO,
    };
    (decision, Some(new_tat))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn five_per_ten() -> RatePolicy {
        RatePolicy::parse(PolicyName::Authenticated, "5/10").expect("valid")
    }

    #[test]
    fn a_setting_parses_into_quota_and_window() {
        let policy = RatePolicy::parse(PolicyName::Tenant, " 600 / 60 ").expect("valid");
        assert_eq!(policy.quota.get(), 600);
        assert_eq!(policy.window, Duration::from_secs(60));
        assert_eq!(policy.emission_interval(), Duration::from_millis(100));
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let parse = |text| RatePolicy::parse(PolicyName::Public, text);
        assert_eq!(parse("600"), Err(RatePolicyError::Shape));
        assert_eq!(parse("a/60"), Err(RatePolicyError::Shape));
        assert_eq!(parse("-1/60"), Err(RatePolicyError::Shape));
        assert_eq!(parse("0/60"), Err(RatePolicyError::Quota));
        assert_eq!(parse("1000001/60"), Err(RatePolicyError::Quota));
        assert_eq!(parse("10/0"), Err(RatePolicyError::Window));
        assert_eq!(parse("10/86401"), Err(RatePolicyError::Window));
    }

    #[test]
    fn gcra_allows_the_quota_at_once_then_refuses() {
        let policy = five_per_ten();
        let now = Duration::from_secs(100);
        let mut tat = None;
        for expected_remaining in (0..5).rev() {
            let (decision, next) = gcra(&policy, tat, now);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected_remaining);
            tat = next;
        }
        let (refused, next) = gcra(&policy, tat, now);
        assert!(!refused.allowed);
        assert_eq!(next, None, "a refused request is not counted");
        assert_eq!(refused.retry_after, Duration::from_secs(2));
        assert_eq!(refused.retry_after_seconds(), 2);
        assert_eq!(refused.reset_after, Duration::from_secs(10));
    }

    #[test]
    fn gcra_refills_one_request_per_interval() {
        let policy = five_per_ten();
        let start = Duration::from_secs(100);
        let mut tat = None;
        for _ in 0..5 {
            tat = gcra(&policy, tat, start).1;
        }
        let (early, _) = gcra(&policy, tat, start + Duration::from_millis(1999));
        assert!(!early.allowed);
        assert_eq!(early.retry_after_seconds(), 1, "rounded up, never 0");
        let (on_time, next) = gcra(&policy, tat, start + Duration::from_secs(2));
        assert!(on_time.allowed);
        assert_eq!(on_time.remaining, 0);
        let (after_window, _) = gcra(&policy, next, start + Duration::from_secs(60));
        assert_eq!(
            after_window.remaining, 4,
            "a full quota again, less this request"
        );
    }

    #[test]
    fn the_tighter_decision_is_the_refusal_then_the_fewest_remaining() {
        let policy = five_per_ten();
        let (one_used, tat) = gcra(&policy, None, Duration::ZERO);
        let (two_used, _) = gcra(&policy, tat, Duration::ZERO);
        assert!(two_used.is_tighter_than(&one_used));
        assert!(!one_used.is_tighter_than(&two_used));
        let refused = RateDecision {
            allowed: false,
            remaining: 0,
            ..two_used
        };
        assert!(refused.is_tighter_than(&two_used));
    }
}
