//! Webhook subscriptions, deliveries and the event log in memory, for use-case tests.
//!
//! Every event the store records (`crate::events` decides which) is appended to its
//! tenant's log and fanned out here, as PostgreSQL's `crm_fan_out_events` does: one
//! pending delivery per enabled subscription whose expanded event types
//! ([`SubscriptionDraft::event_types`], the one filter rule) hold the event's type, within
//! a sandbox tenant's budget. Subscriptions and their secrets behave as in PostgreSQL, so
//! the management use cases run the same against both adapters.

use std::collections::BTreeMap;

use domain::event::{DomainEvent, EventType};
use domain::ids::{DeliveryId, SubscriptionId};
use domain::webhook::{
    Delivery, DeliveryAttempt, DeliveryStatus, NextStep, Subscription, SubscriptionDraft,
};
use ports::{EventLogPage, RepoError, WebhookRepository};
use time::OffsetDateTime;

use crate::store::MemoryUnitOfWork;

/// A subscription with what only the worker sees.
#[derive(Clone, Debug)]
struct StoredSubscription {
    subscription: Subscription,
    secret: String,
    previous: Option<(String, OffsetDateTime)>,
    failing_since: Option<OffsetDateTime>,
}

/// One tenant's webhook data.
#[derive(Clone, Debug, Default)]
pub(crate) struct WebhookData {
    subscriptions: BTreeMap<SubscriptionId, StoredSubscription>,
    deliveries: BTreeMap<DeliveryId, (Delivery, Vec<DeliveryAttempt>, Option<uuid::Uuid>)>,
    /// Events, in log order (position = index + 1).
    events: Vec<DomainEvent>,
}

/// How many deliveries a sandbox (expiring) tenant gets an hour, as in PostgreSQL.
const SANDBOX_DELIVERIES_PER_HOUR: usize = 20;

impl WebhookData {
    /// Appends an event to the log and queues its deliveries: one per enabled
    /// subscription that wants its type, in subscription order; a sandbox tenant's
    /// deliveries stop at its hourly budget. `webhook.test` is never queued.
    pub(crate) fn append(&mut self, event: DomainEvent, at: OffsetDateTime, sandbox: bool) {
        let kind = event.kind();
        if kind != EventType::WebhookTest {
            let wanting: Vec<SubscriptionId> = self
                .subscriptions
                .values()
                .filter(|s| s.subscription.fields.enabled)
                .filter(|s| s.subscription.fields.event_types().contains(&kind))
                .map(|s| s.subscription.id)
                .collect();
            let budget = if sandbox {
                let hour_ago = at - time::Duration::hours(1);
                let recent = self
                    .deliveries
                    .values()
                    .filter(|(d, _, _)| d.created_at > hour_ago)
                    .count();
                SANDBOX_DELIVERIES_PER_HOUR.saturating_sub(recent)
            } else {
                usize::MAX
            };
            for subscription_id in wanting.into_iter().take(budget) {
                let id = DeliveryId::new();
                let delivery = Delivery {
                    id,
                    subscription_id,
                    event_id: event.id().public_id(),
                    event_type: kind.as_str().to_owned(),
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    next_attempt_at: Some(at),
                    last_status_code: None,
                    last_error: None,
                    created_at: at,
                };
                self.deliveries.insert(id, (delivery, Vec::new(), None));
            }
        }
        self.events.push(event);
    }
}

impl MemoryUnitOfWork {
    fn webhooks(&mut self) -> Result<&mut WebhookData, RepoError> {
        Ok(&mut self.data_mut()?.webhooks)
    }
}

impl WebhookRepository for MemoryUnitOfWork {
    async fn insert_subscription(
        &mut self,
        id: SubscriptionId,
        draft: &SubscriptionDraft,
        secret: &str,
    ) -> Result<Subscription, RepoError> {
        let now = self.now();
        let at = now;
        let subscription = Subscription {
            id,
            fields: draft.clone(),
            disabled_reason: None,
            created_at: at,
            updated_at: at,
            version: 1,
        };
        self.webhooks()?.subscriptions.insert(
            id,
            StoredSubscription {
                subscription: subscription.clone(),
                secret: secret.to_owned(),
                previous: None,
                failing_since: None,
            },
        );
        Ok(subscription)
    }

    async fn list_subscriptions(&mut self) -> Result<Vec<Subscription>, RepoError> {
        let mut all: Vec<Subscription> = self
            .webhooks()?
            .subscriptions
            .values()
            .map(|s| s.subscription.clone())
            .collect();
        all.sort_by_key(|s| (s.created_at, s.id));
        Ok(all)
    }

    async fn get_subscription(
        &mut self,
        id: SubscriptionId,
        _lock: bool,
    ) -> Result<Option<Subscription>, RepoError> {
        Ok(self
            .webhooks()?
            .subscriptions
            .get(&id)
            .map(|s| s.subscription.clone()))
    }

    async fn update_subscription(
        &mut self,
        id: SubscriptionId,
        draft: &SubscriptionDraft,
    ) -> Result<Option<Subscription>, RepoError> {
        let now = self.now();
        let Some(stored) = self.webhooks()?.subscriptions.get_mut(&id) else {
            return Ok(None);
        };
        let subscription = &mut stored.subscription;
        if draft.enabled {
            subscription.disabled_reason = None;
            if !subscription.fields.enabled {
                stored.failing_since = None;
            }
        }
        subscription.fields = draft.clone();
        subscription.version += 1;
        subscription.updated_at = now.max(subscription.updated_at);
        Ok(Some(subscription.clone()))
    }

    async fn delete_subscription(&mut self, id: SubscriptionId) -> Result<bool, RepoError> {
        let data = self.webhooks()?;
        data.deliveries
            .retain(|_, (delivery, _, _)| delivery.subscription_id != id);
        Ok(data.subscriptions.remove(&id).is_some())
    }

    async fn rotate_secret(
        &mut self,
        id: SubscriptionId,
        secret: &str,
        previous_until: OffsetDateTime,
    ) -> Result<bool, RepoError> {
        let Some(stored) = self.webhooks()?.subscriptions.get_mut(&id) else {
            return Ok(false);
        };
        let old = std::mem::replace(&mut stored.secret, secret.to_owned());
        stored.previous = Some((old, previous_until));
        stored.subscription.version += 1;
        Ok(true)
    }

    async fn signing_secrets(
        &mut self,
        id: SubscriptionId,
    ) -> Result<Option<(String, Option<String>)>, RepoError> {
        let now = self.now();
        let at = now;
        Ok(self.webhooks()?.subscriptions.get(&id).map(|s| {
            let previous = s
                .previous
                .as_ref()
                .filter(|(_, until)| *until > at)
                .map(|(secret, _)| secret.clone());
            (s.secret.clone(), previous)
        }))
    }

    async fn list_deliveries(
        &mut self,
        subscription: SubscriptionId,
        limit: u32,
        before: Option<DeliveryId>,
    ) -> Result<Vec<Delivery>, RepoError> {
        let data = self.webhooks()?;
        let cut = before.and_then(|id| {
            data.deliveries
                .get(&id)
                .map(|(d, _, _)| (d.created_at, d.id))
        });
        let mut found: Vec<Delivery> = data
            .deliveries
            .values()
            .map(|(d, _, _)| d)
            .filter(|d| d.subscription_id == subscription)
            .filter(|d| cut.is_none_or(|c| (d.created_at, d.id) < c))
            .cloned()
            .collect();
        found.sort_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
        found.truncate(usize::try_from(limit.clamp(1, 100)).unwrap_or(100));
        Ok(found)
    }

    async fn get_delivery(
        &mut self,
        subscription: SubscriptionId,
        id: DeliveryId,
    ) -> Result<Option<(Delivery, Vec<DeliveryAttempt>)>, RepoError> {
        Ok(self
            .webhooks()?
            .deliveries
            .get(&id)
            .filter(|(d, _, _)| d.subscription_id == subscription)
            .map(|(d, attempts, _)| (d.clone(), attempts.clone())))
    }

    async fn retry_delivery(
        &mut self,
        subscription: SubscriptionId,
        id: DeliveryId,
    ) -> Result<Option<Delivery>, RepoError> {
        let now = self.now();
        let at = now;
        Ok(self
            .webhooks()?
            .deliveries
            .get_mut(&id)
            .filter(|(d, _, _)| d.subscription_id == subscription)
            .map(|(d, _, lease)| {
                if d.status != DeliveryStatus::Succeeded {
                    d.status = DeliveryStatus::Pending;
                    d.next_attempt_at = Some(at);
                    *lease = None;
                }
                d.clone()
            }))
    }

    async fn list_events(
        &mut self,
        after: Option<i64>,
        types: &[String],
        limit: u32,
    ) -> Result<EventLogPage, RepoError> {
        let skip = usize::try_from(after.unwrap_or(0).max(0)).unwrap_or(usize::MAX);
        let limit = usize::try_from(limit.clamp(1, 100)).unwrap_or(100);
        let matching: Vec<(usize, DomainEvent)> = self
            .webhooks()?
            .events
            .iter()
            .enumerate()
            .skip(skip)
            .filter(|(_, event)| event.kind() != EventType::WebhookTest)
            .filter(|(_, event)| {
                types.is_empty() || types.iter().any(|t| t == event.kind().as_str())
            })
            .map(|(index, event)| (index + 1, event.clone()))
            .take(limit + 1)
            .collect();
        let has_more = matching.len() > limit;
        let page: Vec<_> = matching.into_iter().take(limit).collect();
        Ok(EventLogPage {
            last_position: page
                .last()
                .and_then(|(position, _)| i64::try_from(*position).ok()),
            events: page.into_iter().map(|(_, event)| event).collect(),
            has_more,
        })
    }

    async fn event_position(&mut self, id: uuid::Uuid) -> Result<Option<i64>, RepoError> {
        Ok(self
            .webhooks()?
            .events
            .iter()
            .position(|event| event.id().as_uuid() == id)
            .and_then(|index| i64::try_from(index + 1).ok()))
    }

    async fn record_attempt(
        &mut self,
        delivery: DeliveryId,
        lease_token: uuid::Uuid,
        attempt: &DeliveryAttempt,
        next: &NextStep,
    ) -> Result<bool, RepoError> {
        let data = self.webhooks()?;
        let Some((record, attempts, lease)) = data.deliveries.get_mut(&delivery) else {
            return Ok(false);
        };
        if *lease != Some(lease_token) {
            return Ok(false);
        }
        *lease = None;
        record.attempts += 1;
        record.last_status_code = attempt.status_code;
        record.last_error.clone_from(&attempt.error);
        let (status, next_at) = match next {
            NextStep::Succeeded => (DeliveryStatus::Succeeded, None),
            NextStep::RetryAt(at) => (DeliveryStatus::Pending, Some(*at)),
            NextStep::GiveUp | NextStep::Disable(_) => (DeliveryStatus::Failed, None),
        };
        record.status = status;
        record.next_attempt_at = next_at;
        attempts.push(attempt.clone());
        let subscription_id = record.subscription_id;
        if let Some(stored) = data.subscriptions.get_mut(&subscription_id) {
            if matches!(next, NextStep::Succeeded) {
                stored.failing_since = None;
            } else if stored.failing_since.is_none() {
                stored.failing_since = Some(attempt.attempted_at);
            }
            if let NextStep::Disable(reason) = next {
                stored.subscription.fields.enabled = false;
                stored.subscription.disabled_reason = Some(reason.clone());
            }
        }
        Ok(true)
    }

    async fn failing_since(
        &mut self,
        subscription: SubscriptionId,
    ) -> Result<Option<OffsetDateTime>, RepoError> {
        Ok(self
            .webhooks()?
            .subscriptions
            .get(&subscription)
            .and_then(|s| s.failing_since))
    }
}
