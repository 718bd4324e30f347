//! Webhooks: the tenant's subscriptions, deliveries and event log, and the worker's
//! queue of due deliveries across tenants.

use std::future::Future;

use domain::ids::{DeliveryId, SubscriptionId, TenantId};
use domain::webhook::{Delivery, DeliveryAttempt, NextStep, Subscription, SubscriptionDraft};
use thiserror::Error;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::RepoError;

/// A page of the tenant's event log.
#[derive(Clone, Debug, PartialEq)]
pub struct EventLogPage {
    /// Events in log order.
    pub events: Vec<domain::event::DomainEvent>,
    /// The position of the last event returned: pass it as `after` for the next page.
    pub last_position: Option<i64>,
    /// Whether more events follow.
    pub has_more: bool,
}

/// A subscription, or a delivery, that does not exist in this tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("not found")]
pub struct WebhookNotFound;

/// The tenant's webhook subscriptions, deliveries and event log.
pub trait WebhookRepository {
    /// Stores a new subscription with its signing secret.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_subscription(
        &mut self,
        id: SubscriptionId,
        draft: &SubscriptionDraft,
        secret: &str,
    ) -> impl Future<Output = Result<Subscription, RepoError>> + Send;

    /// Every subscription of the tenant, oldest first.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_subscriptions(
        &mut self,
    ) -> impl Future<Output = Result<Vec<Subscription>, RepoError>> + Send;

    /// One subscription (locked for the rest of the unit of work when `lock`).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_subscription(
        &mut self,
        id: SubscriptionId,
        lock: bool,
    ) -> impl Future<Output = Result<Option<Subscription>, RepoError>> + Send;

    /// Replaces the fields; enabling a disabled subscription clears its reason and its
    /// failure streak.
    ///
    /// # Errors
    /// [`WebhookNotFound`] (as `Ok(None)`) or [`RepoError`].
    fn update_subscription(
        &mut self,
        id: SubscriptionId,
        draft: &SubscriptionDraft,
    ) -> impl Future<Output = Result<Option<Subscription>, RepoError>> + Send;

    /// Deletes a subscription and its deliveries; false when there was none.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn delete_subscription(
        &mut self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<bool, RepoError>> + Send;

    /// Makes `secret` the signing secret; the current one keeps signing beside it until
    /// `previous_until`. False when there is no such subscription.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn rotate_secret(
        &mut self,
        id: SubscriptionId,
        secret: &str,
        previous_until: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, RepoError>> + Send;

    /// The secrets that sign now: the current one, and the previous one during a rotation.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn signing_secrets(
        &mut self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<Option<(String, Option<String>)>, RepoError>> + Send;

    /// A subscription's deliveries, newest first, at most `limit`, before `before` (a
    /// delivery id from the previous page).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_deliveries(
        &mut self,
        subscription: SubscriptionId,
        limit: u32,
        before: Option<DeliveryId>,
    ) -> impl Future<Output = Result<Vec<Delivery>, RepoError>> + Send;

    /// One delivery of a subscription, with its attempts (oldest first).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_delivery(
        &mut self,
        subscription: SubscriptionId,
        id: DeliveryId,
    ) -> impl Future<Output = Result<Option<(Delivery, Vec<DeliveryAttempt>)>, RepoError>> + Send;

    /// Schedules a delivery again now (a failed one by hand, or a pending one sooner).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn retry_delivery(
        &mut self,
        subscription: SubscriptionId,
        id: DeliveryId,
    ) -> impl Future<Output = Result<Option<Delivery>, RepoError>> + Send;

    /// The tenant's event log after `after` (a position from an earlier page), oldest
    /// first, only `types` when given. Events of transactions still open are not shown
    /// yet, so paging by position never skips one that commits late.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_events(
        &mut self,
        after: Option<i64>,
        types: &[String],
        limit: u32,
    ) -> impl Future<Output = Result<EventLogPage, RepoError>> + Send;

    /// The log position of the tenant's event with this id (the `evt_…` of its payload
    /// and `webhook-id` header), to resume after it.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn event_position(
        &mut self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<i64>, RepoError>> + Send;

    /// Records an attempt of a leased delivery and what follows it. Nothing is written
    /// (false) if the lease token is no longer the delivery's: another worker took it over.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn record_attempt(
        &mut self,
        delivery: DeliveryId,
        lease_token: uuid::Uuid,
        attempt: &DeliveryAttempt,
        next: &NextStep,
    ) -> impl Future<Output = Result<bool, RepoError>> + Send;

    /// Since when the subscription's deliveries have all failed (None: its last attempt
    /// succeeded, or it has made none).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn failing_since(
        &mut self,
        subscription: SubscriptionId,
    ) -> impl Future<Output = Result<Option<OffsetDateTime>, RepoError>> + Send;
}

/// A delivery the worker leased, with everything sending needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// Whose.
    pub tenant_id: TenantId,
    /// Which.
    pub delivery_id: DeliveryId,
    /// Proves the lease when recording.
    pub lease_token: uuid::Uuid,
    /// Attempts made before this one.
    pub attempts: i32,
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The event to deliver (its id is the `webhook-id` header).
    pub event: domain::event::DomainEvent,
    /// Where to.
    pub url: String,
    /// The signing secret.
    pub secret: String,
    /// The previous secret, during a rotation.
    pub previous_secret: Option<String>,
}

/// The delivery queue, across tenants (the worker's narrow door).
pub trait DeliveryQueue {
    /// Leases up to `limit` due deliveries for `lease`; concurrent callers get disjoint
    /// sets, and a delivery whose lease expired (its worker died) is handed out again.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn claim_deliveries(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, RepoError>> + Send;

    /// Deletes events and attempts older than `age` (deliveries still pending keep their
    /// events); returns how many rows went.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn sweep_history(
        &self,
        age: std::time::Duration,
    ) -> impl Future<Output = Result<u64, RepoError>> + Send;
}
