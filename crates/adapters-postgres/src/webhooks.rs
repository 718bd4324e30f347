//! Webhook subscriptions, deliveries, attempts and the event log in PostgreSQL (migration
//! 0012): tenant-scoped through the unit of work, plus the worker's cross-tenant claim
//! and sweep through their SECURITY DEFINER functions.

use domain::event::DomainEvent;
use domain::ids::{DeliveryId, SubscriptionId};
use domain::webhook::{
    Delivery, DeliveryAttempt, DeliveryStatus, NextStep, Subscription, SubscriptionDraft,
};
use ports::{ClaimedDelivery, DeliveryQueue, EventLogPage, RepoError, WebhookRepository};
use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::repo_error;
use crate::events::{ClaimRow, EventRow, StoredEvent};
use crate::store::{PgStore, PgUnitOfWork, statement};

const SUBSCRIPTION_COLUMNS: &str =
    "id, url, description, events, enabled, disabled_reason, created_at, updated_at, version";

/// Rows of each kind one sweep chunk deletes.
const SWEEP_CHUNK: i32 = 5_000;
/// Chunks one sweep runs at most (what is left waits for the next sweep, an hour later).
const SWEEP_MAX_CHUNKS: usize = 1_000;

#[derive(Debug, FromQueryResult)]
struct SubscriptionRow {
    id: Uuid,
    url: String,
    description: Option<String>,
    events: Vec<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    version: i64,
}

impl From<SubscriptionRow> for Subscription {
    fn from(row: SubscriptionRow) -> Self {
        Self {
            id: SubscriptionId::from_uuid(row.id),
            fields: SubscriptionDraft {
                url: row.url,
                description: row.description,
                events: row.events,
                enabled: row.enabled,
            },
            disabled_reason: row.disabled_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

const DELIVERY_SELECT: &str = "SELECT d.id, d.subscription_id, 'evt_' || replace(e.id::text, '-', '') AS event_id, \
     e.type AS event_type, d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, \
     d.created_at \
     FROM webhook_deliveries d JOIN events e ON e.tenant_id = d.tenant_id AND e.seq = d.event_seq";

#[derive(Debug, FromQueryResult)]
struct DeliveryRow {
    id: Uuid,
    subscription_id: Uuid,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i32,
    next_attempt_at: Option<OffsetDateTime>,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    created_at: OffsetDateTime,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = RepoError;

    fn try_from(row: DeliveryRow) -> Result<Self, RepoError> {
        Ok(Self {
            id: DeliveryId::from_uuid(row.id),
            subscription_id: SubscriptionId::from_uuid(row.subscription_id),
            event_id: row.event_id,
            event_type: row.event_type,
            status: DeliveryStatus::parse(&row.status)
                .ok_or_else(|| RepoError::Unexpected(format!("delivery status {}", row.status)))?,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_status_code: row.last_status_code,
            last_error: row.last_error,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, FromQueryResult)]
struct AttemptRow {
    attempted_at: OffsetDateTime,
    status_code: Option<i32>,
    latency_ms: i32,
    response_body: Option<String>,
    error: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct SecretsRow {
    secret: String,
    previous_secret: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct FailingRow {
    failing_since: Option<OffsetDateTime>,
}

#[derive(Debug, FromQueryResult)]
struct CountRow {
    count: i64,
}

/// Bytes of an answer's body kept with its attempt (`webhook_attempts.response_body`).
const STORED_BODY_BYTES: usize = 1024;
/// Bytes of an attempt's error kept (`error`, `last_error`: at most 1024 characters).
const STORED_ERROR_BYTES: usize = 1024;

/// `text` as PostgreSQL can store it: without NUL (which `text` cannot hold: one NUL in a
/// receiver's answer used to make recording the attempt fail, so the delivery was sent
/// again at every lease expiry, forever) and at most `max_bytes` long, cut at a character
/// boundary. The sender already made the bytes valid UTF-8 (lossily).
fn storable(text: &str, max_bytes: usize) -> String {
    let mut kept = String::with_capacity(text.len().min(max_bytes));
    for character in text.chars().filter(|c| *c != '\0') {
        if kept.len() + character.len_utf8() > max_bytes {
            break;
        }
        kept.push(character);
    }
    kept
}

/// The draft's columns, `$3` to `$7`: the filters, and the event types they expand to
/// by the domain's rule (`event_types`, what the fan-out tests membership of).
fn draft_values(draft: &SubscriptionDraft) -> Vec<Value> {
    let types: Vec<String> = draft
        .event_types()
        .into_iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    vec![
        draft.url.clone().into(),
        draft.description.clone().into(),
        draft.events.clone().into(),
        draft.enabled.into(),
        types.into(),
    ]
}

impl PgUnitOfWork {
    async fn one_subscription(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<Subscription>, RepoError> {
        Ok(SubscriptionRow::find_by_statement(statement(sql, values))
            .one(&self.txn)
            .await
            .map_err(repo_error)?
            .map(Subscription::from))
    }

    async fn one_delivery(
        &self,
        subscription: SubscriptionId,
        id: DeliveryId,
    ) -> Result<Option<Delivery>, RepoError> {
        DeliveryRow::find_by_statement(statement(
            &format!(
                "{DELIVERY_SELECT} WHERE d.tenant_id = $1 AND d.subscription_id = $2 AND d.id = $3"
            ),
            vec![
                self.tenant_id.as_uuid().into(),
                subscription.as_uuid().into(),
                id.as_uuid().into(),
            ],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?
        .map(Delivery::try_from)
        .transpose()
    }
}

impl WebhookRepository for PgUnitOfWork {
    async fn insert_subscription(
        &mut self,
        id: SubscriptionId,
        draft: &SubscriptionDraft,
        secret: &str,
    ) -> Result<Subscription, RepoError> {
        let mut values = vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()];
        values.extend(draft_values(draft));
        values.push(secret.to_owned().into());
        self.one_subscription(
            &format!(
                "INSERT INTO webhook_subscriptions (tenant_id, id, url, description, events, enabled, \
                   event_types, secret) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {SUBSCRIPTION_COLUMNS}"
            ),
            values,
        )
        .await?
        .ok_or_else(|| RepoError::Unexpected("insert returned no row".into()))
    }

    async fn list_subscriptions(&mut self) -> Result<Vec<Subscription>, RepoError> {
        Ok(SubscriptionRow::find_by_statement(statement(
            &format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE tenant_id = $1 \
                 ORDER BY created_at, id"
            ),
            vec![self.tenant_id.as_uuid().into()],
        ))
        .all(&self.txn)
        .await
        .map_err(repo_error)?
        .into_iter()
        .map(Subscription::from)
        .collect())
    }

    async fn get_subscription(
        &mut self,
        id: SubscriptionId,
        lock: bool,
    ) -> Result<Option<Subscription>, RepoError> {
        let lock = if lock { " FOR UPDATE" } else { "" };
        self.one_subscription(
            &format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions \
                 WHERE tenant_id = $1 AND id = $2{lock}"
            ),
            vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
        )
        .await
    }

    async fn update_subscription(
        &mut self,
        id: SubscriptionId,
        draft: &SubscriptionDraft,
    ) -> Result<Option<Subscription>, RepoError> {
        let mut values = vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()];
        values.extend(draft_values(draft));
        self.one_subscription(
            &format!(
                "UPDATE webhook_subscriptions SET url = $3, description = $4, events = $5, enabled = $6, \
                   event_types = $7, disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END, \
                   failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END, \
                   version = version + 1, updated_at = greatest(now(), updated_at) \
                 WHERE tenant_id = $1 AND id = $2 RETURNING {SUBSCRIPTION_COLUMNS}"
            ),
            values,
        )
        .await
    }

    async fn delete_subscription(&mut self, id: SubscriptionId) -> Result<bool, RepoError> {
        Ok(self
            .txn
            .execute_raw(statement(
                "DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2",
                vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
            ))
            .await
            .map_err(repo_error)?
            .rows_affected()
            > 0)
    }

    async fn rotate_secret(
        &mut self,
        id: SubscriptionId,
        secret: &str,
        previous_until: OffsetDateTime,
    ) -> Result<bool, RepoError> {
        Ok(self
            .txn
            .execute_raw(statement(
                "UPDATE webhook_subscriptions SET previous_secret = secret, secret = $3, \
                   previous_secret_expires_at = $4, version = version + 1, \
                   updated_at = greatest(now(), updated_at) \
                 WHERE tenant_id = $1 AND id = $2",
                vec![
                    self.tenant_id.as_uuid().into(),
                    id.as_uuid().into(),
                    secret.to_owned().into(),
                    previous_until.into(),
                ],
            ))
            .await
            .map_err(repo_error)?
            .rows_affected()
            > 0)
    }

    async fn signing_secrets(
        &mut self,
        id: SubscriptionId,
    ) -> Result<Option<(String, Option<String>)>, RepoError> {
        Ok(SecretsRow::find_by_statement(statement(
            "SELECT secret, CASE WHEN previous_secret_expires_at > now() THEN previous_secret END \
                    AS previous_secret \
               FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2",
            vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?
        .map(|row| (row.secret, row.previous_secret)))
    }

    async fn list_deliveries(
        &mut self,
        subscription: SubscriptionId,
        limit: u32,
        before: Option<DeliveryId>,
    ) -> Result<Vec<Delivery>, RepoError> {
        let mut values: Vec<Value> = vec![
            self.tenant_id.as_uuid().into(),
            subscription.as_uuid().into(),
            i64::from(limit.clamp(1, 100)).into(),
        ];
        let before_clause = match before {
            Some(id) => {
                values.push(id.as_uuid().into());
                " AND (d.created_at, d.id) < (SELECT created_at, id FROM webhook_deliveries \
                   WHERE tenant_id = $1 AND id = $4)"
            }
            None => "",
        };
        DeliveryRow::find_by_statement(statement(
            &format!(
                "{DELIVERY_SELECT} WHERE d.tenant_id = $1 AND d.subscription_id = $2{before_clause} \
                 ORDER BY d.created_at DESC, d.id DESC LIMIT $3"
            ),
            values,
        ))
        .all(&self.txn)
        .await
        .map_err(repo_error)?
        .into_iter()
        .map(Delivery::try_from)
        .collect()
    }

    async fn get_delivery(
        &mut self,
        subscription: SubscriptionId,
        id: DeliveryId,
    ) -> Result<Option<(Delivery, Vec<DeliveryAttempt>)>, RepoError> {
        let Some(delivery) = self.one_delivery(subscription, id).await? else {
            return Ok(None);
        };
        let attempts = AttemptRow::find_by_statement(statement(
            "SELECT attempted_at, status_code, latency_ms, response_body, error FROM webhook_attempts \
             WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY attempted_at, id",
            vec![self.tenant_id.as_uuid().into(), id.as_uuid().into()],
        ))
        .all(&self.txn)
        .await
        .map_err(repo_error)?
        .into_iter()
        .map(|row| DeliveryAttempt {
            attempted_at: row.attempted_at,
            status_code: row.status_code,
            latency_ms: row.latency_ms,
            response_body: row.response_body,
            error: row.error,
        })
        .collect();
        Ok(Some((delivery, attempts)))
    }

    async fn retry_delivery(
        &mut self,
        subscription: SubscriptionId,
        id: DeliveryId,
    ) -> Result<Option<Delivery>, RepoError> {
        // A succeeded delivery stays as it is; the answer shows it.
        self.txn
            .execute_raw(statement(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), \
                   lease_until = NULL, lease_token = NULL, updated_at = now() \
                 WHERE tenant_id = $1 AND subscription_id = $2 AND id = $3 AND status <> 'succeeded'",
                vec![
                    self.tenant_id.as_uuid().into(),
                    subscription.as_uuid().into(),
                    id.as_uuid().into(),
                ],
            ))
            .await
            .map_err(repo_error)?;
        self.one_delivery(subscription, id).await
    }

    async fn list_events(
        &mut self,
        after: Option<i64>,
        types: &[String],
        limit: u32,
    ) -> Result<EventLogPage, RepoError> {
        let limit = i64::from(limit.clamp(1, 100));
        let rows = EventRow::find_by_statement(statement(
            "SELECT e.seq, e.tenant_id, e.id, e.type, e.created_at, e.object, e.previous FROM events e \
              WHERE e.tenant_id = $1 AND e.seq > $2 AND e.type <> 'webhook.test' \
                AND (cardinality($3::text[]) = 0 OR e.type = ANY($3)) \
                AND e.xid < pg_snapshot_xmin(pg_current_snapshot()) \
              ORDER BY e.seq LIMIT $4",
            vec![
                self.tenant_id.as_uuid().into(),
                after.unwrap_or(0).into(),
                types.to_vec().into(),
                (limit + 1).into(),
            ],
        ))
        .all(&self.txn)
        .await
        .map_err(repo_error)?;
        let has_more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
        let rows: Vec<EventRow> = rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(100))
            .collect();
        Ok(EventLogPage {
            last_position: rows.last().map(|row| row.seq),
            events: rows
                .into_iter()
                .map(|row| DomainEvent::try_from(StoredEvent::from(row)))
                .collect::<Result<_, _>>()?,
            has_more,
        })
    }

    async fn event_position(&mut self, id: Uuid) -> Result<Option<i64>, RepoError> {
        #[derive(Debug, FromQueryResult)]
        struct Position {
            seq: i64,
        }
        Ok(Position::find_by_statement(statement(
            "SELECT seq FROM events WHERE tenant_id = $1 AND id = $2",
            vec![self.tenant_id.as_uuid().into(), id.into()],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?
        .map(|p| p.seq))
    }

    async fn record_attempt(
        &mut self,
        delivery: DeliveryId,
        lease_token: Uuid,
        attempt: &DeliveryAttempt,
        next: &NextStep,
    ) -> Result<bool, RepoError> {
        let (status, next_at, disable): (&str, Option<OffsetDateTime>, Option<&str>) = match next {
            NextStep::Succeeded => ("succeeded", None, None),
            NextStep::RetryAt(at) => ("pending", Some(*at), None),
            NextStep::GiveUp => ("failed", None, None),
            NextStep::Disable(reason) => ("failed", None, Some(reason.as_str())),
        };
        let succeeded = matches!(next, NextStep::Succeeded);
        let error = attempt
            .error
            .as_deref()
            .map(|e| storable(e, STORED_ERROR_BYTES));
        let body = attempt
            .response_body
            .as_deref()
            .map(|b| storable(b, STORED_BODY_BYTES));
        let updated = self
            .txn
            .execute_raw(statement(
                "UPDATE webhook_deliveries SET status = $4, attempts = attempts + 1, \
                   next_attempt_at = $5, lease_until = NULL, lease_token = NULL, \
                   last_status_code = $6, last_error = $7, updated_at = now() \
                 WHERE tenant_id = $1 AND id = $2 AND lease_token = $3",
                vec![
                    self.tenant_id.as_uuid().into(),
                    delivery.as_uuid().into(),
                    lease_token.into(),
                    status.to_owned().into(),
                    next_at.into(),
                    attempt.status_code.into(),
                    error.clone().into(),
                ],
            ))
            .await
            .map_err(repo_error)?
            .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        self.txn
            .execute_raw(statement(
                "INSERT INTO webhook_attempts (tenant_id, id, delivery_id, status_code, latency_ms, \
                   response_body, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                vec![
                    self.tenant_id.as_uuid().into(),
                    Uuid::now_v7().into(),
                    delivery.as_uuid().into(),
                    attempt.status_code.into(),
                    attempt.latency_ms.max(0).into(),
                    body.into(),
                    error.into(),
                ],
            ))
            .await
            .map_err(repo_error)?;
        self.txn
            .execute_raw(statement(
                "UPDATE webhook_subscriptions s SET \
                   failing_since = CASE WHEN $3 THEN NULL ELSE coalesce(s.failing_since, now()) END, \
                   enabled = CASE WHEN $4::text IS NULL THEN s.enabled ELSE false END, \
                   disabled_reason = coalesce($4::text, s.disabled_reason), \
                   updated_at = CASE WHEN $4::text IS NULL THEN s.updated_at ELSE now() END \
                 FROM webhook_deliveries d \
                 WHERE d.tenant_id = $1 AND d.id = $2 AND s.tenant_id = d.tenant_id \
                   AND s.id = d.subscription_id",
                vec![
                    self.tenant_id.as_uuid().into(),
                    delivery.as_uuid().into(),
                    succeeded.into(),
                    disable.map(str::to_owned).into(),
                ],
            ))
            .await
            .map_err(repo_error)?;
        Ok(true)
    }

    async fn failing_since(
        &mut self,
        subscription: SubscriptionId,
    ) -> Result<Option<OffsetDateTime>, RepoError> {
        Ok(FailingRow::find_by_statement(statement(
            "SELECT failing_since FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2",
            vec![
                self.tenant_id.as_uuid().into(),
                subscription.as_uuid().into(),
            ],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?
        .and_then(|row| row.failing_since))
    }
}

impl DeliveryQueue for PgStore {
    async fn claim_deliveries(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<ClaimedDelivery>, RepoError> {
        let lease_seconds = lease.as_secs_f64();
        let rows = ClaimRow::find_by_statement(statement(
            "SELECT tenant_id, delivery_id, lease_token, attempts, subscription_id, url, secret, \
                    previous_secret, event_id, event_type, event_created_at, event_object, \
                    event_previous \
               FROM crm_claim_webhook_deliveries($1, make_interval(secs => $2))",
            vec![
                i32::try_from(limit).unwrap_or(1000).into(),
                lease_seconds.into(),
            ],
        ))
        .all(self.db()?)
        .await
        .map_err(repo_error)?;
        // One event that does not convert (a bug) must not hold up the others: it is
        // left out and logged; its lease runs out and it is claimed (and logged) again.
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let delivery = row.delivery_id;
                ClaimedDelivery::try_from(row)
                    .inspect_err(|error| {
                        tracing::error!(%error, %delivery, "a claimed delivery's event does not convert");
                    })
                    .ok()
            })
        .collect())
    }

    async fn sweep_history(&self, age: std::time::Duration) -> Result<u64, RepoError> {
        // Chunks, each its own short transaction: one long DELETE would hold back every
        // tenant's event log (`list_events` waits for older transactions) while it ran.
        let mut removed = 0_u64;
        for _ in 0..SWEEP_MAX_CHUNKS {
            let count = CountRow::find_by_statement(statement(
                "SELECT crm_sweep_webhook_history(make_interval(secs => $1), $2) AS count",
                vec![age.as_secs_f64().into(), SWEEP_CHUNK.into()],
            ))
            .one(self.db()?)
            .await
            .map_err(repo_error)?
            .map_or(0, |row| row.count);
            if count <= 0 {
                break;
            }
            removed += u64::try_from(count).unwrap_or(0);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::storable;

    #[test]
    fn stored_text_has_no_nul_and_fits_its_column() {
        assert_eq!(storable("a\0b\0", 100), "ab");
        assert_eq!(storable("", 10), "");
        // Cut at a character boundary, never inside one.
        assert_eq!(storable("éé", 3), "é");
        let replacement = "\u{fffd}".repeat(1024);
        let kept = storable(&replacement, 1024);
        assert!(kept.len() <= 1024 && kept.chars().all(|c| c == '\u{fffd}'));
        assert_eq!(kept.chars().count(), 341);
    }
}
