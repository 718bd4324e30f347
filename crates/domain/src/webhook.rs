//! Webhooks (SPEC §5): event types and subscription filters, signing secrets, the
//! Standard Webhooks signature, the retry schedule, and which addresses a webhook may
//! never reach (the SSRF guard's rule; resolving names is the HTTP adapter's job).

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;
use time::OffsetDateTime;

use crate::FieldErrors;
pub use crate::event::EventType;
use crate::ids::{DeliveryId, SubscriptionId};

/// The resources that emit events.
pub const EVENT_RESOURCES: [&str; 5] = ["contact", "company", "lead", "pipeline", "activity"];

/// Every event type a subscription can name (besides `*` and `<resource>.*`).
#[must_use]
pub fn event_types() -> Vec<String> {
    EventType::ALL
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect()
}

/// Someone was invited into the tenant: the tenant's own system sends the e-mail (the
/// event carries no token; the inviter hands it over).
pub const INVITATION_CREATED: &str = "invitation.created";

/// The type of the event `POST /v1/webhooks/{id}/test` sends.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// Why an event filter was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("must be \"*\", \"<resource>.*\" or one of the event types, e.g. contact.created")]
pub struct EventFilterError;

/// Checks one subscription filter: `*`, `contact.*`, or an exact event type.
///
/// # Errors
/// [`EventFilterError`] for anything else.
pub fn parse_event_filter(filter: &str) -> Result<String, EventFilterError> {
    if filter == "*" || event_types().iter().any(|t| t == filter) {
        return Ok(filter.to_owned());
    }
    match filter.strip_suffix(".*") {
        Some(resource)
            if EVENT_RESOURCES.contains(&resource)
                || resource == "webhook"
                || resource == "invitation" =>
        {
            Ok(filter.to_owned())
        }
        _ => Err(EventFilterError),
    }
}

/// Whether an event of `event_type` is wanted by a subscription with `filters`: the one
/// filter rule. Subscriptions store the event types their filters expand to
/// ([`SubscriptionDraft::event_types`]), so the store's fan-out tests membership only.
#[must_use]
pub fn filters_match(filters: &[String], event_type: EventType) -> bool {
    filters.iter().any(|f| {
        f == "*"
            || f == event_type.as_str()
            || f.strip_suffix(".*")
                .is_some_and(|resource| resource == event_type.resource())
    })
}

/// The prefix of every signing secret (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret, `whsec_<base64 of 24-64 bytes>`: shown once, kept to sign.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(whsec_…)")
    }
}

/// A secret that is not `whsec_` followed by base64 of 24 to 64 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("a webhook secret is whsec_ followed by base64 of 24 to 64 bytes")]
pub struct MalformedSecret;

impl WebhookSecret {
    /// A secret from fresh random bytes (24 to 64 of them).
    ///
    /// # Errors
    /// [`MalformedSecret`] for another length.
    pub fn from_random_bytes(bytes: &[u8]) -> Result<Self, MalformedSecret> {
        if !(24..=64).contains(&bytes.len()) {
            return Err(MalformedSecret);
        }
        Ok(Self {
            text: format!("{SECRET_PREFIX}{}", BASE64.encode(bytes)),
            key: bytes.to_vec(),
        })
    }

    /// Parses a stored or presented secret.
    ///
    /// # Errors
    /// [`MalformedSecret`].
    pub fn parse(text: &str) -> Result<Self, MalformedSecret> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(MalformedSecret)?;
        let key = BASE64.decode(encoded).map_err(|_| MalformedSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(MalformedSecret);
        }
        Ok(Self {
            text: text.to_owned(),
            key,
        })
    }

    /// The secret as shown to its owner and stored.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, the Standard Webhooks
    /// signature of one attempt.
    #[must_use]
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// When a failed delivery is tried again: the delay before each attempt, the first
/// being the delay of the first attempt (normally zero).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// Why a retry schedule was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "expected comma-separated durations such as 0s,5s,5m,30m,2h (ms, s, m, h, d), 1 to 20 of them"
)]
pub struct RetryScheduleError;

impl Default for RetrySchedule {
    /// SPEC §5: now, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let hours = |h: u64| Duration::from_secs(h * 3600);
        Self(vec![
            Duration::ZERO,
            Duration::from_secs(5),
            minutes(5),
            minutes(30),
            hours(2),
            hours(5),
            hours(10),
            hours(14),
            hours(20),
            hours(24),
        ])
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => number,
        "s" => number.checked_mul(1000)?,
        "m" => number.checked_mul(60_000)?,
        "h" => number.checked_mul(3_600_000)?,
        "d" => number.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

impl RetrySchedule {
    /// Parses `0s,200ms,1s` (as `WEBHOOK_RETRY_SCHEDULE`).
    ///
    /// # Errors
    /// [`RetryScheduleError`].
    pub fn parse(text: &str) -> Result<Self, RetryScheduleError> {
        let delays = text
            .split(',')
            .map(parse_duration)
            .collect::<Option<Vec<_>>>()
            .ok_or(RetryScheduleError)?;
        if delays.is_empty() || delays.len() > 20 {
            return Err(RetryScheduleError);
        }
        Ok(Self(delays))
    }

    /// How many attempts a delivery gets in all.
    #[must_use]
    pub fn attempts(&self) -> usize {
        self.0.len()
    }

    /// The delay before attempt number `attempt` (0-based), `None` after the last.
    #[must_use]
    pub fn delay_before(&self, attempt: usize) -> Option<Duration> {
        self.0.get(attempt).copied()
    }

    /// The delay before attempt `attempt`, with jitter: up to a tenth more, so that
    /// endpoints recovering from an outage are not hit by every retry at once.
    /// `unit` is a random number in `0.0..1.0`.
    #[must_use]
    pub fn jittered_delay_before(&self, attempt: usize, unit: f64) -> Option<Duration> {
        let delay = self.delay_before(attempt)?;
        Some(delay.mul_f64(1.0 + unit.clamp(0.0, 1.0) / 10.0))
    }
}

/// Whether a webhook may be delivered to `ip`: only to globally reachable unicast, never
/// to loopback, private, shared (CGNAT), link-local (cloud metadata at 169.254.169.254),
/// multicast, broadcast, documentation, benchmarking or otherwise special-purpose
/// addresses, nor through the IPv4 forms embedded in IPv6 (mapped, NAT64, 6to4). The
/// blocks are listed in [`crate::special_addresses`].
#[must_use]
pub fn is_public_address(ip: IpAddr) -> bool {
    crate::special_addresses::is_public_address(ip)
}

/// Why a subscription's fields were refused.
fn check_subscription_fields(
    url: &str,
    description: Option<&str>,
    events: &[String],
) -> Result<Vec<String>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let lower = url.to_ascii_lowercase();
    if !(8..=2048).contains(&url.len())
        || !(lower.starts_with("https://") || lower.starts_with("http://"))
        || url.chars().any(char::is_control)
    {
        errors.add("url", "must be an http(s) URL of at most 2048 characters");
    }
    if description.is_some_and(|d| d.chars().count() > 500 || d.chars().any(char::is_control)) {
        errors.add("description", "must be one line of at most 500 characters");
    }
    let mut filters: Vec<String> = Vec::new();
    if events.is_empty() || events.len() > 50 {
        errors.add("events", "must name 1 to 50 event types");
    }
    for event in events {
        match parse_event_filter(event) {
            Ok(filter) if !filters.contains(&filter) => filters.push(filter),
            Ok(_) => {}
            Err(error) => errors.add("events", error.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(filters)
    } else {
        Err(errors)
    }
}

/// The writable fields of a subscription, checked: the body of create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionDraft {
    /// Where events are POSTed (the SSRF guard checks it too, with DNS).
    pub url: String,
    /// Free text for the tenant.
    pub description: Option<String>,
    /// Filters: `*`, `<resource>.*` or exact types, without repeats.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
}

impl SubscriptionDraft {
    /// Checks the fields.
    ///
    /// # Errors
    /// [`FieldErrors`] naming every bad field.
    pub fn new(
        url: String,
        description: Option<String>,
        events: Vec<String>,
        enabled: bool,
    ) -> Result<Self, FieldErrors> {
        let description = description.filter(|d| !d.trim().is_empty());
        let events = check_subscription_fields(&url, description.as_deref(), &events)?;
        Ok(Self {
            url,
            description,
            events,
            enabled,
        })
    }

    /// The event types the filters ask for, expanded by [`filters_match`] over the closed
    /// set of types: what a store keeps beside the filters for its fan-out.
    #[must_use]
    pub fn event_types(&self) -> Vec<EventType> {
        EventType::ALL
            .into_iter()
            .filter(|t| filters_match(&self.events, *t))
            .collect()
    }
}

/// A subscription as stored. Its secret is never part of it: it is shown once, at
/// creation and rotation, and read only by the delivery worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Its id.
    pub id: SubscriptionId,
    /// The fields.
    pub fields: SubscriptionDraft,
    /// Why the platform disabled it (410, five days of failures), if it did.
    pub disabled_reason: Option<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or for one in flight).
    Pending,
    /// An attempt got a 2xx.
    Succeeded,
    /// Every attempt failed, or the endpoint is gone (410); retryable by hand.
    Failed,
}

impl DeliveryStatus {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One event's delivery to one subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: DeliveryId,
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The event (`evt_…`, also the `webhook-id` header).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The last answer's status, if there was one.
    pub last_status_code: Option<i32>,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the event was fanned out to this subscription.
    pub created_at: OffsetDateTime,
}

/// One attempt of a delivery, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// When it was made.
    pub attempted_at: OffsetDateTime,
    /// The answer's status, if there was an answer.
    pub status_code: Option<i32>,
    /// How long it took.
    pub latency_ms: i32,
    /// The first 1 KiB of the answer.
    pub response_body: Option<String>,
    /// Why it failed without an answer (timeout, refused, connection).
    pub error: Option<String>,
}

/// What to do after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// 2xx: done.
    Succeeded,
    /// Try again at this time.
    RetryAt(OffsetDateTime),
    /// No attempts left: `failed`, retryable by hand.
    GiveUp,
    /// The endpoint is gone (410) or has failed for five days: fail this delivery and
    /// disable the subscription with this reason.
    Disable(String),
}

/// How long an endpoint may fail before it is disabled (SPEC §5).
pub const DISABLE_AFTER_FAILING: Duration = Duration::from_secs(5 * 24 * 3600);

/// Decides what follows an attempt: `status` is the answer's status (None: no answer),
/// `attempts_before` how many attempts preceded this one, `failing_since` since when the
/// endpoint has failed without a success in between (None: it was fine until now).
#[must_use]
pub fn next_step(
    schedule: &RetrySchedule,
    status: Option<u16>,
    retry_after: Option<Duration>,
    attempts_before: usize,
    failing_since: Option<OffsetDateTime>,
    now: OffsetDateTime,
    jitter_unit: f64,
) -> NextStep {
    if let Some(code) = status
        && (200..300).contains(&code)
    {
        return NextStep::Succeeded;
    }
    if status == Some(410) {
        return NextStep::Disable("the endpoint answered 410 Gone".to_owned());
    }
    if failing_since.is_some_and(|since| now - since >= DISABLE_AFTER_FAILING) {
        return NextStep::Disable("every delivery failed for 5 days".to_owned());
    }
    let Some(delay) = schedule.jittered_delay_before(attempts_before + 1, jitter_unit) else {
        return NextStep::GiveUp;
    };
    // 429 and 502/503/504 may say when to come back (at most a day): that replaces the
    // schedule's delay for this retry.
    let honoured = match (status, retry_after) {
        (Some(429 | 502 | 503 | 504), Some(wait)) => wait.min(Duration::from_secs(86_400)),
        _ => delay,
    };
    NextStep::RetryAt(now + honoured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_test_vector_signs_as_published() {
        let secret =
            WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").expect("valid secret");
        let signature = secret.sign(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let made = WebhookSecret::from_random_bytes(&[7; 32]).expect("32 bytes");
        assert!(made.expose().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(made.expose()), Ok(made.clone()));
        assert!(WebhookSecret::from_random_bytes(&[1; 8]).is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("sk_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_err());
        assert_eq!(
            format!("{made:?}"),
            "WebhookSecret(whsec_…)",
            "never printed"
        );
    }

    #[test]
    fn filters_match_exact_types_resource_wildcards_and_everything() {
        let filters = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(filters_match(&filters(&["*"]), EventType::LeadStageChanged));
        assert!(filters_match(
            &filters(&["contact.*"]),
            EventType::ContactDeleted
        ));
        assert!(!filters_match(
            &filters(&["contact.*"]),
            EventType::CompanyCreated
        ));
        assert!(filters_match(
            &filters(&["lead.created", "company.*"]),
            EventType::LeadCreated
        ));
        assert!(!filters_match(
            &filters(&["lead.created"]),
            EventType::LeadUpdated
        ));
        assert!(filters_match(
            &filters(&["lead.*"]),
            EventType::LeadStageChanged
        ));
        assert!(parse_event_filter("contact.*").is_ok());
        assert!(parse_event_filter("lead.stage_changed").is_ok());
        assert!(parse_event_filter("contact.exploded").is_err());
        assert!(parse_event_filter("nothing.*").is_err());
        assert!(parse_event_filter("").is_err());
    }

    #[test]
    fn a_subscription_expands_its_filters_into_the_event_types_it_wants() {
        let draft = |events: &[&str]| {
            SubscriptionDraft::new(
                "https://example.com/hook".to_owned(),
                None,
                events.iter().map(|s| (*s).to_owned()).collect(),
                true,
            )
            .expect("valid")
        };
        assert_eq!(draft(&["*"]).event_types(), EventType::ALL.to_vec());
        assert_eq!(
            draft(&["lead.*"]).event_types(),
            vec![
                EventType::LeadCreated,
                EventType::LeadUpdated,
                EventType::LeadDeleted,
                EventType::LeadStageChanged
            ]
        );
        assert_eq!(
            draft(&["contact.created", "invitation.*"]).event_types(),
            vec![EventType::ContactCreated, EventType::InvitationCreated]
        );
        // Every type a filter can name expands to itself, and every expansion is one
        // that filters_match accepts.
        for kind in EventType::ALL {
            assert_eq!(draft(&[kind.as_str()]).event_types(), vec![kind]);
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn schedules_parse_and_jitter_stays_within_a_tenth() {
        let schedule = RetrySchedule::parse("0s,200ms,1s").expect("valid");
        assert_eq!(schedule.attempts(), 3);
        assert_eq!(schedule.delay_before(1), Some(Duration::from_millis(200)));
        assert_eq!(schedule.delay_before(3), None);
        assert_eq!(
            schedule.jittered_delay_before(2, 0.5),
            Some(Duration::from_millis(1050))
        );
        assert_eq!(RetrySchedule::default().attempts(), 10);
        assert_eq!(
            RetrySchedule::default().delay_before(9),
            Some(Duration::from_secs(86_400))
        );
        for bad in ["", "5", "5x", "1s,,2s", "-1s"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_next_step_follows_the_answer_the_schedule_and_the_failure_streak() {
        let schedule = RetrySchedule::parse("0s,200ms,1s").expect("valid");
        let now = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let step = |status, retry_after, before, since| {
            next_step(&schedule, status, retry_after, before, since, now, 0.0)
        };
        assert_eq!(step(Some(204), None, 2, Some(now)), NextStep::Succeeded);
        assert!(
            matches!(step(Some(410), None, 0, None), NextStep::Disable(r) if r.contains("410"))
        );
        assert_eq!(
            step(Some(500), None, 0, Some(now)),
            NextStep::RetryAt(now + Duration::from_millis(200))
        );
        assert_eq!(
            step(None, None, 1, Some(now)),
            NextStep::RetryAt(now + Duration::from_secs(1)),
            "no answer (timeout, refused) is a failure like any other"
        );
        assert_eq!(
            step(Some(500), None, 2, Some(now)),
            NextStep::GiveUp,
            "after the last attempt"
        );
        assert_eq!(
            step(Some(429), Some(Duration::from_secs(7)), 0, Some(now)),
            NextStep::RetryAt(now + Duration::from_secs(7)),
            "Retry-After replaces the schedule's delay"
        );
        assert_eq!(
            step(Some(500), Some(Duration::from_secs(7)), 0, Some(now)),
            NextStep::RetryAt(now + Duration::from_millis(200)),
            "only 429/502/503/504 are honoured"
        );
        let five_days_ago = now - DISABLE_AFTER_FAILING;
        assert!(matches!(
            step(Some(500), None, 0, Some(five_days_ago)),
            NextStep::Disable(r) if r.contains("5 days")
        ));
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for blocked in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "ff02::1",
        ] {
            let ip: IpAddr = blocked.parse().expect("an address");
            assert!(!is_public_address(ip), "{blocked} must be refused");
        }
        for allowed in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = allowed.parse().expect("an address");
            assert!(is_public_address(ip), "{allowed} is public");
        }
    }
}
