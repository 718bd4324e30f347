//! Webhook use cases (SPEC §5): managing subscriptions (admins, or keys with
//! `webhooks:manage`), reading deliveries and the event log, and the delivery worker's
//! step: claim due deliveries, sign each per Standard Webhooks, send, record the attempt
//! and decide what follows.

use std::time::Duration;

use domain::FieldErrors;
use domain::ids::{DeliveryId, SubscriptionId};
use domain::principal::{Forbidden, Permission, Principal};
use domain::webhook::{
    Delivery, DeliveryAttempt, RetrySchedule, Subscription, SubscriptionDraft, WebhookSecret,
    next_step,
};
use ports::{
    Clock, DeliveryQueue, EventLogPage, EventRenderer, OutgoingWebhook, RepoError, TenantStore,
    UnitOfWork, WebhookRepository, WebhookSendError, WebhookSender,
};
use rand::{Rng, RngCore};
use thiserror::Error;

/// Why a webhook operation failed.
#[derive(Debug, Error)]
pub enum WebhookError {
    /// Role or scopes do not allow it.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The input breaks a rule (the URL refused by the SSRF guard included).
    #[error("invalid webhook: {0}")]
    Invalid(FieldErrors),
    /// No such subscription or delivery in the caller's tenant.
    #[error("not found")]
    NotFound,
    /// `after` names an event id that is not one of the caller's tenant's events.
    #[error("no such event")]
    EventNotFound,
    /// Too many destination checks are under way; nothing was changed. Try again shortly.
    #[error("too many webhook registrations under way")]
    Unavailable,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The fields of a subscription as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionInput {
    /// Where to POST.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Event filters.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
}

/// A subscription and its secret, shown this once.
#[derive(Debug)]
pub struct WithSecret {
    /// The subscription.
    pub subscription: Subscription,
    /// `whsec_…`.
    pub secret: WebhookSecret,
}

fn new_secret() -> Result<WebhookSecret, RepoError> {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    // 32 bytes are within the 24..=64 a secret takes.
    WebhookSecret::from_random_bytes(&bytes)
        .map_err(|e| RepoError::Unexpected(format!("secret generation: {e}")))
}

/// Checks the fields, no I/O.
fn drafted(input: SubscriptionInput) -> Result<SubscriptionDraft, WebhookError> {
    SubscriptionDraft::new(input.url, input.description, input.events, input.enabled)
        .map_err(WebhookError::Invalid)
}

/// A subscription's fields whose URL passed [`vet_destination`]: only this can be
/// created, so no caller can skip the check.
#[derive(Clone, Debug)]
pub struct VettedDraft(SubscriptionDraft);

/// A patch whose resulting URL passed [`vet_patch`].
#[derive(Clone, Debug)]
pub struct VettedPatch(SubscriptionPatch);

/// The first step of a registration: may `principal` register webhooks, and are the
/// fields valid? No I/O, so the caller can end its unit of work right after.
///
/// # Errors
/// [`WebhookError::Forbidden`] or [`WebhookError::Invalid`].
pub fn draft_subscription(
    principal: &Principal,
    input: SubscriptionInput,
) -> Result<SubscriptionDraft, WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    drafted(input)
}

/// Checks the URL: its scheme, and every address its host resolves to now. This is DNS,
/// which a tenant's name server controls (it may answer slowly on purpose): call it while
/// holding no unit of work, no connection and no row lock. The sender bounds how many
/// run at once and answers `Busy` when they are all taken.
///
/// # Errors
/// [`WebhookError::Invalid`] for a refused destination, [`WebhookError::Unavailable`]
/// when too many checks are under way.
pub async fn vet_destination<S: WebhookSender + ?Sized>(
    sender: &S,
    draft: SubscriptionDraft,
) -> Result<VettedDraft, WebhookError> {
    vetted(sender, &draft.url).await?;
    Ok(VettedDraft(draft))
}

/// [`vet_destination`] for a patch: the URL the subscription `seen` would have after it
/// (a PATCH that does not name a URL re-checks the current one, as the configuration or
/// the name's addresses may have changed).
///
/// # Errors
/// As [`vet_destination`], and [`WebhookError::Invalid`] for invalid fields.
pub async fn vet_patch<S: WebhookSender + ?Sized>(
    sender: &S,
    patch: SubscriptionPatch,
    seen: &Subscription,
) -> Result<VettedPatch, WebhookError> {
    let url = drafted(patch.merged_onto(seen.fields.clone()))?.url;
    vetted(sender, &url).await?;
    Ok(VettedPatch(patch))
}

async fn vetted<S: WebhookSender + ?Sized>(sender: &S, url: &str) -> Result<(), WebhookError> {
    match sender.vet(url).await {
        Ok(()) => Ok(()),
        Err(WebhookSendError::Refused(reason)) => {
            let mut fields = FieldErrors::new();
            fields.add("url", reason);
            Err(WebhookError::Invalid(fields))
        }
        Err(WebhookSendError::Busy) => Err(WebhookError::Unavailable),
        // A name that does not resolve (yet) is accepted, as Stripe does: DNS may not be set
        // up, and nothing can be reached through it now. Every connection checks again.
        Err(WebhookSendError::Failed(_) | WebhookSendError::Timeout(_)) => Ok(()),
    }
}

/// Creates a subscription from vetted fields; its secret is returned this once.
///
/// A registration is three steps so that no unit of work is open while DNS answers:
/// [`draft_subscription`] with the request's unit of work (then ended),
/// [`vet_destination`] with none, then this in a new one.
///
/// # Errors
/// [`WebhookError`].
pub async fn create_subscription<U: UnitOfWork + WebhookRepository>(
    mut uow: U,
    principal: &Principal,
    draft: VettedDraft,
) -> Result<WithSecret, WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    let secret = new_secret()?;
    let subscription = uow
        .insert_subscription(SubscriptionId::new(), &draft.0, secret.expose())
        .await?;
    uow.commit().await?;
    Ok(WithSecret {
        subscription,
        secret,
    })
}

/// Every subscription of the tenant (never their secrets).
///
/// # Errors
/// [`WebhookError`].
pub async fn list_subscriptions<U: UnitOfWork + WebhookRepository>(
    mut uow: U,
    principal: &Principal,
) -> Result<Vec<Subscription>, WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    Ok(uow.list_subscriptions().await?)
}

/// One subscription.
///
/// # Errors
/// [`WebhookError::NotFound`] and the others.
pub async fn get_subscription<U: UnitOfWork + WebhookRepository>(
    mut uow: U,
    principal: &Principal,
    id: SubscriptionId,
) -> Result<Subscription, WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    uow.get_subscription(id, false)
        .await?
        .ok_or(WebhookError::NotFound)
}

/// What a PATCH changes; absent fields stay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionPatch {
    /// New URL.
    pub url: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New filters.
    pub events: Option<Vec<String>>,
    /// Enable or disable (enabling clears the platform's reason).
    pub enabled: Option<bool>,
}

/// Changes a subscription with a vetted patch (see [`vet_patch`]: read the subscription
/// with [`get_subscription`], end that unit of work, vet, then call this in a new one).
/// The patch is merged onto the row as it is now, under a row lock; a URL someone else
/// changed meanwhile was vetted by that writer.
///
/// # Errors
/// [`WebhookError`].
pub async fn update_subscription<U: UnitOfWork + WebhookRepository>(
    mut uow: U,
    principal: &Principal,
    id: SubscriptionId,
    patch: VettedPatch,
) -> Result<Subscription, WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    let current = uow
        .get_subscription(id, true)
        .await?
        .ok_or(WebhookError::NotFound)?;
    let draft = drafted(patch.0.merged_onto(current.fields))?;
    let updated = uow
        .update_subscription(id, &draft)
        .await?
        .ok_or(WebhookError::NotFound)?;
    uow.commit().await?;
    Ok(updated)
}

impl SubscriptionPatch {
    /// The fields after this patch, absent ones taken from `fields`.
    fn merged_onto(&self, fields: SubscriptionDraft) -> SubscriptionInput {
        SubscriptionInput {
            url: self.url.clone().unwrap_or(fields.url),
            description: self.description.clone().unwrap_or(fields.description),
            events: self.events.clone().unwrap_or(fields.events),
            enabled: self.enabled.unwrap_or(fields.enabled),
        }
    }
}

/// Deletes a subscription and its deliveries.
///
/// # Errors
/// [`WebhookError`].
pub async fn delete_subscription<U: UnitOfWork + WebhookRepository>(
    mut uow: U,
    principal: &Principal,
    id: SubscriptionId,
) -> Result<(), WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    if !uow.delete_subscription(id).await? {
        return Err(WebhookError::NotFound);
    }
    uow.commit().await?;
    Ok(())
}

/// Replaces the signing secret; the old one keeps signing beside it for `grace`.
///
/// # Errors
/// [`WebhookError`].
pub async fn rotate_secret<U: UnitOfWork + Clock + WebhookRepository>(
    mut uow: U,
    principal: &Principal,
    id: SubscriptionId,
    grace: Duration,
) -> Result<WithSecret, WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    let secret = new_secret()?;
    let until = uow.now() + grace;
    if !uow.rotate_secret(id, secret.expose(), until).await? {
        return Err(WebhookError::NotFound);
    }
    let subscription = uow
        .get_subscription(id, false)
        .await?
        .ok_or(WebhookError::NotFound)?;
    uow.commit().await?;
    Ok(WithSecret {
        subscription,
        secret,
    })
}

/// A subscription's deliveries, newest first.
///
/// # Errors
/// [`WebhookError`].
pub async fn list_deliveries<U: UnitOfWork + WebhookRepository>(
    mut uow: U,
    principal: &Principal,
    subscription: SubscriptionId,
    limit: u32,
    before: Option<DeliveryId>,
) -> Result<Vec<Delivery>, WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    if uow.get_subscription(subscription, false).await?.is_none() {
        return Err(WebhookError::NotFound);
    }
    Ok(uow.list_deliveries(subscription, limit, before).await?)
}

/// One delivery with its attempts.
///
/// # Errors
/// [`WebhookError`].
pub async fn get_delivery<U: UnitOfWork + WebhookRepository>(
    mut uow: U,
    principal: &Principal,
    subscription: SubscriptionId,
    id: DeliveryId,
) -> Result<(Delivery, Vec<DeliveryAttempt>), WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    uow.get_delivery(subscription, id)
        .await?
        .ok_or(WebhookError::NotFound)
}

/// Schedules a delivery again now (by hand, typically after it failed).
///
/// # Errors
/// [`WebhookError`].
pub async fn retry_delivery<U: UnitOfWork + WebhookRepository>(
    mut uow: U,
    principal: &Principal,
    subscription: SubscriptionId,
    id: DeliveryId,
) -> Result<Delivery, WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    let delivery = uow
        .retry_delivery(subscription, id)
        .await?
        .ok_or(WebhookError::NotFound)?;
    uow.commit().await?;
    Ok(delivery)
}

/// What a test send got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestOutcome {
    /// The test event's id (`evt_…`).
    pub event_id: String,
    /// Whether the endpoint answered 2xx.
    pub succeeded: bool,
    /// Its status, if it answered.
    pub status_code: Option<u16>,
    /// How long it took.
    pub latency_ms: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Sends a `webhook.test` event to one subscription now, signed like any delivery, and
/// reports what the endpoint answered. Nothing is queued or retried.
///
/// # Errors
/// [`WebhookError`] (the endpoint's own failure is part of the outcome, not an error).
pub async fn send_test<U: UnitOfWork + Clock + WebhookRepository, S: WebhookSender + ?Sized>(
    mut uow: U,
    principal: &Principal,
    sender: &S,
    id: SubscriptionId,
) -> Result<TestOutcome, WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    let subscription = uow
        .get_subscription(id, false)
        .await?
        .ok_or(WebhookError::NotFound)?;
    let (secret, previous) = uow
        .signing_secrets(id)
        .await?
        .ok_or(WebhookError::NotFound)?;
    let now = uow.now();
    drop(uow);
    let secret = WebhookSecret::parse(&secret)
        .map_err(|e| RepoError::Unexpected(format!("stored secret: {e}")))?;
    let previous = previous.and_then(|p| WebhookSecret::parse(&p).ok());
    let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let body = serde_json::json!({
        "id": event_id,
        "type": domain::webhook::TEST_EVENT_TYPE,
        "tenantId": principal.tenant_id,
        "createdAt": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "data": {"subscriptionId": subscription.id, "message": "A test event: if you can read this, your endpoint works."},
    })
    .to_string()
    .into_bytes();
    let request = OutgoingWebhook {
        url: subscription.fields.url,
        headers: signed_headers(
            &event_id,
            now.unix_timestamp(),
            &body,
            &secret,
            previous.as_ref(),
        ),
        body,
    };
    let started = std::time::Instant::now();
    let outcome = sender.send(&request).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(match outcome {
        Ok(reply) => TestOutcome {
            event_id,
            succeeded: (200..300).contains(&reply.status),
            status_code: Some(reply.status),
            latency_ms,
            error: (!(200..300).contains(&reply.status))
                .then(|| format!("the endpoint answered {}", reply.status)),
        },
        Err(error) => TestOutcome {
            event_id,
            succeeded: false,
            status_code: None,
            latency_ms,
            error: Some(error.to_string()),
        },
    })
}

/// The tenant's event log after a position.
///
/// # Errors
/// [`WebhookError`].
pub async fn list_events<U: UnitOfWork + WebhookRepository>(
    mut uow: U,
    principal: &Principal,
    after: Option<EventsAfter>,
    types: &[String],
    limit: u32,
) -> Result<EventLogPage, WebhookError> {
    principal.require(Permission::WebhooksManage)?;
    let after = match after {
        None => None,
        Some(EventsAfter::Position(position)) => Some(position),
        Some(EventsAfter::Event(id)) => Some(
            uow.event_position(id)
                .await?
                .ok_or(WebhookError::EventNotFound)?,
        ),
    };
    Ok(uow.list_events(after, types, limit).await?)
}

/// Where a reader of the event log resumes: after a page's cursor, or after an event it
/// already has (its `evt_…` id, as Stripe's `starting_after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventsAfter {
    /// A `nextCursor`.
    Position(i64),
    /// An event's id.
    Event(uuid::Uuid),
}

/// How the worker works.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Delay before each attempt.
    pub schedule: RetrySchedule,
    /// How long a claimed delivery stays with one worker (longer than a send can take).
    pub lease: Duration,
    /// Deliveries claimed at once.
    pub batch: u32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            lease: Duration::from_secs(60),
            batch: 32,
        }
    }
}

/// The headers of one signed attempt (Standard Webhooks): during a rotation both
/// signatures, space-separated.
#[must_use]
pub fn signed_headers(
    event_id: &str,
    timestamp: i64,
    body: &[u8],
    secret: &WebhookSecret,
    previous: Option<&WebhookSecret>,
) -> Vec<(String, String)> {
    let mut signature = secret.sign(event_id, timestamp, body);
    if let Some(previous) = previous {
        signature.push(' ');
        signature.push_str(&previous.sign(event_id, timestamp, body));
    }
    vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("webhook-id".to_owned(), event_id.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ("webhook-signature".to_owned(), signature),
    ]
}

/// One pass of the delivery worker: claims due deliveries and delivers them concurrently
/// (so one slow endpoint does not hold the others past their lease), recording each
/// outcome in its tenant's unit of work. Returns how many were attempted. Each body is
/// rendered by `renderer` once per attempt and signed over exactly those bytes.
///
/// # Errors
/// [`RepoError`] when the queue cannot be read. A delivery whose outcome cannot be
/// recorded is recorded as a failed attempt instead, on the normal schedule; only when
/// even that fails (the database is away) does it keep its lease until it expires, and
/// is then attempted again (at least once).
pub async fn deliver_due<Q, S, R>(
    store: &Q,
    sender: &S,
    renderer: &R,
    settings: &WorkerSettings,
) -> Result<usize, RepoError>
where
    Q: DeliveryQueue + TenantStore + Clock,
    S: WebhookSender + ?Sized,
    R: EventRenderer + ?Sized,
{
    let claimed = store
        .claim_deliveries(settings.batch, settings.lease)
        .await?;
    let count = claimed.len();
    let outcomes = futures_util::future::join_all(
        claimed
            .into_iter()
            .map(|job| deliver_one(store, sender, renderer, &settings.schedule, job)),
    )
    .await;
    outcomes
        .into_iter()
        .collect::<Result<Vec<()>, RepoError>>()?;
    Ok(count)
}

/// Signs, sends and records one claimed delivery.
async fn deliver_one<Q, S, R>(
    store: &Q,
    sender: &S,
    renderer: &R,
    schedule: &RetrySchedule,
    job: ports::ClaimedDelivery,
) -> Result<(), RepoError>
where
    Q: TenantStore + Clock,
    S: WebhookSender + ?Sized,
    R: EventRenderer + ?Sized,
{
    let held = Held {
        tenant_id: job.tenant_id,
        delivery_id: job.delivery_id,
        lease_token: job.lease_token,
        attempts: job.attempts,
        subscription_id: job.subscription_id,
    };
    let event_id = job.event.id().public_id();
    let timestamp = store.now().unix_timestamp();
    let previous = job
        .previous_secret
        .as_deref()
        .and_then(|p| WebhookSecret::parse(p).ok());
    let attempted_at = store.now();
    // A stored secret always parses (the table checks its prefix, we wrote it), and an
    // event always renders; if either ever does not, the attempt fails visibly instead
    // of going out unsigned or empty.
    let prepared = WebhookSecret::parse(&job.secret)
        .map_err(|error| error.to_string())
        .and_then(|secret| {
            renderer
                .render(&job.event)
                .map(|body| (secret, body))
                .map_err(|error| error.to_string())
        });
    let outcome = match prepared {
        Ok((secret, body)) => {
            let request = OutgoingWebhook {
                url: job.url,
                headers: signed_headers(&event_id, timestamp, &body, &secret, previous.as_ref()),
                body,
            };
            sender.send(&request).await
        }
        Err(error) => Err(WebhookSendError::Failed(error)),
    };
    let (status, retry_after, attempt) = match outcome {
        Ok(reply) => (
            Some(reply.status),
            reply.retry_after,
            DeliveryAttempt {
                attempted_at,
                status_code: Some(i32::from(reply.status)),
                latency_ms: i32::try_from(reply.latency.as_millis()).unwrap_or(i32::MAX),
                response_body: Some(reply.body),
                error: (!(200..300).contains(&reply.status))
                    .then(|| format!("the endpoint answered {}", reply.status)),
            },
        ),
        Err(error) => (
            None,
            None,
            DeliveryAttempt {
                attempted_at,
                status_code: None,
                latency_ms: i32::try_from((store.now() - attempted_at).whole_milliseconds())
                    .unwrap_or(i32::MAX)
                    .max(0),
                response_body: None,
                error: Some(error.to_string().chars().take(1000).collect()),
            },
        ),
    };
    if let Err(error) = record(store, schedule, &held, &attempt, status, retry_after).await {
        // Whatever the cause (an answer the database refuses, a constraint, a lost
        // connection), the attempt must not vanish: unrecorded, the delivery would keep
        // its lease and be sent again at every lease expiry, forever, off the schedule.
        // It counts as a failed attempt instead, with nothing of the answer kept.
        tracing::warn!(
            %error,
            tenant = %held.tenant_id,
            delivery = %held.delivery_id,
            "recording a webhook attempt failed; recording it as a failed attempt"
        );
        let failed = DeliveryAttempt {
            response_body: None,
            error: Some(UNRECORDABLE_ATTEMPT.to_owned()),
            ..attempt
        };
        record(store, schedule, &held, &failed, None, None).await?;
    }
    Ok(())
}

/// What the delivery log says of an attempt whose outcome could not be stored.
pub const UNRECORDABLE_ATTEMPT: &str =
    "the outcome of this attempt could not be recorded; it counts as a failed attempt";

/// What recording needs of a claimed delivery (the rest went into the request).
struct Held {
    tenant_id: domain::ids::TenantId,
    delivery_id: DeliveryId,
    lease_token: uuid::Uuid,
    attempts: i32,
    subscription_id: SubscriptionId,
}

/// Decides what follows `attempt` (answered `status`, if it was answered) and records
/// both in the delivery's tenant, under the job's lease.
async fn record<Q: TenantStore>(
    store: &Q,
    schedule: &RetrySchedule,
    job: &Held,
    attempt: &DeliveryAttempt,
    status: Option<u16>,
    retry_after: Option<Duration>,
) -> Result<(), RepoError> {
    let mut uow = store.begin_for_tenant(job.tenant_id).await?;
    let failing_since = match (status, uow.failing_since(job.subscription_id).await?) {
        (Some(200..=299), _) => None,
        (_, Some(since)) => Some(since),
        (_, None) => Some(attempt.attempted_at),
    };
    let next = next_step(
        schedule,
        status,
        retry_after,
        usize::try_from(job.attempts).unwrap_or(0),
        failing_since,
        uow.now(),
        rand::rng().random::<f64>(),
    );
    let outcome = match &next {
        domain::webhook::NextStep::Succeeded => "succeeded",
        domain::webhook::NextStep::RetryAt(_) => "retry",
        domain::webhook::NextStep::GiveUp => "failed",
        domain::webhook::NextStep::Disable(_) => "disabled",
    };
    metrics::counter!("webhook_attempts_total", "outcome" => outcome).increment(1);
    if uow
        .record_attempt(job.delivery_id, job.lease_token, attempt, &next)
        .await?
    {
        uow.commit().await?;
    }
    Ok(())
}
