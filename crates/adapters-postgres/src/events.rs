//! Stored events into domain events, at the seam.
//!
//! The triggers of migration 0013 keep each change as `to_jsonb` row snapshots (object,
//! and previous for updates) in `events`. This module reads one such row ([`StoredEvent`])
//! into a [`DomainEvent`]: each snapshot is deserialised into a private struct shaped like
//! the table's row, then parsed into its domain entity with the same rules as a row read
//! by its repository. No API shape is known here; the API renders the domain event. The
//! query rows of the event log ([`EventRow`]) and of the delivery claim ([`ClaimRow`])
//! live here too, so both reads convert the same way.

use domain::activity::{Activity, ActivityDraft, ActivityType};
use domain::company::{Address, Company, CompanyDraft, CompanySize, Domain};
use domain::contact::{Contact, ContactDraft, CustomFields, Email, Phone, Tags};
use domain::event::{DomainEvent, EventId, EventType, ResourceSnapshot};
use domain::identity::Invitation;
use domain::ids::{
    ActivityId, CompanyId, ContactId, InvitationId, LeadId, PipelineId, StageId, TenantId, UserId,
};
use domain::ids::{DeliveryId, SubscriptionId};
use domain::lead::{Currency, Lead, LeadDraft, Money};
use domain::pipeline::{Pipeline, Stage, StageKind};
use ports::{ClaimedDelivery, RepoError};
use sea_orm::FromQueryResult;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::{Date, OffsetDateTime, UtcOffset};
use uuid::Uuid;

/// One row of `events`, as the event log and the delivery claim read it.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    /// Whose.
    pub(crate) tenant_id: Uuid,
    /// `events.id`.
    pub(crate) id: Uuid,
    /// `events.type`.
    pub(crate) kind: String,
    /// `events.created_at`.
    pub(crate) created_at: OffsetDateTime,
    /// `events.object`.
    pub(crate) object: Value,
    /// `events.previous`.
    pub(crate) previous: Option<Value>,
}

impl TryFrom<StoredEvent> for DomainEvent {
    type Error = RepoError;

    /// Events were written by our triggers from rows that passed the domain's rules; one
    /// that no longer converts is a broken invariant, reported as unexpected.
    fn try_from(row: StoredEvent) -> Result<Self, RepoError> {
        let broken =
            |what: String| RepoError::Unexpected(format!("stored event {}: {what}", row.id));
        let kind =
            EventType::parse(&row.kind).ok_or_else(|| broken(format!("type {}", row.kind)))?;
        let tenant = TenantId::from_uuid(row.tenant_id);
        let object = snapshot(kind, tenant, row.object).map_err(&broken)?;
        let previous = row
            .previous
            .map(|previous| snapshot(kind, tenant, previous))
            .transpose()
            .map_err(&broken)?;
        DomainEvent::new(
            EventId::from_uuid(row.id),
            kind,
            tenant,
            utc(row.created_at),
            object,
            previous,
        )
        .map_err(|e| broken(e.to_string()))
    }
}

/// A row of the event log: its position and the event as stored.
#[derive(Debug, FromQueryResult)]
pub(crate) struct EventRow {
    pub(crate) seq: i64,
    tenant_id: Uuid,
    id: Uuid,
    r#type: String,
    created_at: OffsetDateTime,
    object: serde_json::Value,
    previous: Option<serde_json::Value>,
}

impl From<EventRow> for StoredEvent {
    fn from(row: EventRow) -> Self {
        Self {
            tenant_id: row.tenant_id,
            id: row.id,
            kind: row.r#type,
            created_at: row.created_at,
            object: row.object,
            previous: row.previous,
        }
    }
}

/// A row of `crm_claim_webhook_deliveries`: a leased delivery with its stored event.
#[derive(Debug, FromQueryResult)]
pub(crate) struct ClaimRow {
    tenant_id: Uuid,
    pub(crate) delivery_id: Uuid,
    lease_token: Uuid,
    attempts: i32,
    subscription_id: Uuid,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    event_id: Uuid,
    event_type: String,
    event_created_at: OffsetDateTime,
    event_object: serde_json::Value,
    event_previous: Option<serde_json::Value>,
}

impl TryFrom<ClaimRow> for ClaimedDelivery {
    type Error = RepoError;

    fn try_from(row: ClaimRow) -> Result<Self, RepoError> {
        let event = DomainEvent::try_from(StoredEvent {
            tenant_id: row.tenant_id,
            id: row.event_id,
            kind: row.event_type,
            created_at: row.event_created_at,
            object: row.event_object,
            previous: row.event_previous,
        })?;
        Ok(Self {
            tenant_id: TenantId::from_uuid(row.tenant_id),
            delivery_id: DeliveryId::from_uuid(row.delivery_id),
            lease_token: row.lease_token,
            attempts: row.attempts,
            subscription_id: SubscriptionId::from_uuid(row.subscription_id),
            event,
            url: row.url,
            secret: row.secret,
            previous_secret: row.previous_secret,
        })
    }
}

/// The snapshot of one resource, by the resource the event type names.
fn snapshot(kind: EventType, tenant: TenantId, json: Value) -> Result<ResourceSnapshot, String> {
    match kind.resource() {
        "contact" => parse::<ContactSnapshot>(json)?
            .into_contact(tenant)
            .map(ResourceSnapshot::Contact),
        "company" => parse::<CompanySnapshot>(json)?
            .into_company(tenant)
            .map(ResourceSnapshot::Company),
        "lead" => parse::<LeadSnapshot>(json)?
            .into_lead(tenant)
            .map(ResourceSnapshot::Lead),
        "pipeline" => parse::<PipelineSnapshot>(json)?.into_pipeline(tenant),
        "activity" => parse::<ActivitySnapshot>(json)?
            .into_activity(tenant)
            .map(ResourceSnapshot::Activity),
        "invitation" => parse::<InvitationSnapshot>(json)?
            .into_invitation()
            .map(ResourceSnapshot::Invitation),
        other => Err(format!("no snapshot for {other} events")),
    }
}

fn parse<T: DeserializeOwned>(json: Value) -> Result<T, String> {
    serde_json::from_value(json).map_err(|e| format!("snapshot: {e}"))
}

/// Timestamps as the API shows them: in UTC (`to_jsonb` writes the session's offset).
fn utc(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(UtcOffset::UTC)
}

fn bad(what: &str) -> String {
    format!("bad {what}")
}

/// A `timestamptz` in a `to_jsonb` snapshot (`2026-01-05T10:00:00.123456+00:00`), or in
/// the API form older `invitation.created` events stored (`…Z`).
mod timestamp {
    use serde::{Deserialize, Deserializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub(super) fn required<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339)
            .map(super::utc)
            .map_err(serde::de::Error::custom)
    }

    pub(super) fn optional<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                OffsetDateTime::parse(&text, &Rfc3339)
                    .map(super::utc)
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

#[derive(Debug, Deserialize)]
struct ContactSnapshot {
    id: Uuid,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    title: Option<String>,
    tags: Vec<String>,
    custom_fields: Value,
    owner_id: Option<Uuid>,
    company_id: Option<Uuid>,
    #[serde(deserialize_with = "timestamp::required")]
    created_at: OffsetDateTime,
    #[serde(deserialize_with = "timestamp::required")]
    updated_at: OffsetDateTime,
    version: i64,
}

impl ContactSnapshot {
    fn into_contact(self, tenant: TenantId) -> Result<Contact, String> {
        Ok(Contact {
            id: ContactId::from_uuid(self.id),
            tenant_id: tenant,
            fields: ContactDraft {
                first_name: self.first_name,
                last_name: self.last_name,
                email: self
                    .email
                    .as_deref()
                    .map(Email::parse)
                    .transpose()
                    .map_err(|_| bad("email"))?,
                phone: self
                    .phone
                    .as_deref()
                    .map(Phone::parse)
                    .transpose()
                    .map_err(|_| bad("phone"))?,
                title: self.title,
                tags: Tags::parse(&self.tags).map_err(|_| bad("tags"))?,
                custom_fields: CustomFields::parse(self.custom_fields)
                    .map_err(|_| bad("customFields"))?,
                owner_id: self.owner_id.map(UserId::from_uuid),
                company_id: self.company_id.map(CompanyId::from_uuid),
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

#[derive(Debug, Deserialize)]
struct CompanySnapshot {
    id: Uuid,
    name: String,
    domain: Option<String>,
    industry: Option<String>,
    size: Option<String>,
    address: Value,
    tags: Vec<String>,
    custom_fields: Value,
    #[serde(deserialize_with = "timestamp::required")]
    created_at: OffsetDateTime,
    #[serde(deserialize_with = "timestamp::required")]
    updated_at: OffsetDateTime,
    version: i64,
}

impl CompanySnapshot {
    fn into_company(self, tenant: TenantId) -> Result<Company, String> {
        let part = |key: &str| {
            self.address
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let address = Address {
            street: part("street"),
            city: part("city"),
            region: part("region"),
            postal_code: part("postalCode"),
            country: part("country"),
        };
        Ok(Company {
            id: CompanyId::from_uuid(self.id),
            tenant_id: tenant,
            fields: CompanyDraft {
                name: self.name,
                domain: self
                    .domain
                    .as_deref()
                    .map(Domain::parse)
                    .transpose()
                    .map_err(|_| bad("domain"))?,
                industry: self.industry,
                size: match self.size.as_deref() {
                    None => None,
                    Some(raw) => Some(CompanySize::parse(raw).ok_or_else(|| bad("size"))?),
                },
                address,
                tags: Tags::parse(&self.tags).map_err(|_| bad("tags"))?,
                custom_fields: CustomFields::parse(self.custom_fields)
                    .map_err(|_| bad("customFields"))?,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

#[derive(Debug, Deserialize)]
struct LeadSnapshot {
    id: Uuid,
    title: String,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    pipeline_id: Uuid,
    stage_id: Uuid,
    value: Option<i64>,
    currency: Option<String>,
    status: String,
    owner_id: Option<Uuid>,
    /// `YYYY-MM-DD`.
    expected_close_date: Option<String>,
    source: Option<String>,
    #[serde(deserialize_with = "timestamp::required")]
    created_at: OffsetDateTime,
    #[serde(deserialize_with = "timestamp::required")]
    updated_at: OffsetDateTime,
    version: i64,
}

impl LeadSnapshot {
    fn into_lead(self, tenant: TenantId) -> Result<Lead, String> {
        let value = match (self.value, self.currency.as_deref()) {
            (Some(minor), Some(code)) => Some(Money {
                minor,
                currency: Currency::parse(code).map_err(|_| bad("currency"))?,
            }),
            (None, None) => None,
            _ => return Err(bad("value without currency")),
        };
        let expected_close_date = self
            .expected_close_date
            .as_deref()
            .map(|text| {
                Date::parse(
                    text,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .map_err(|_| bad("expectedCloseDate"))
            })
            .transpose()?;
        Ok(Lead {
            id: LeadId::from_uuid(self.id),
            tenant_id: tenant,
            status: StageKind::parse(&self.status).ok_or_else(|| bad("status"))?,
            fields: LeadDraft {
                title: self.title,
                contact_id: self.contact_id.map(ContactId::from_uuid),
                company_id: self.company_id.map(CompanyId::from_uuid),
                pipeline_id: PipelineId::from_uuid(self.pipeline_id),
                stage_id: StageId::from_uuid(self.stage_id),
                value,
                owner_id: self.owner_id.map(UserId::from_uuid),
                expected_close_date,
                source: self.source,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

#[derive(Debug, Deserialize)]
struct StageSnapshot {
    id: Uuid,
    name: String,
    position: i32,
    probability: i32,
    kind: String,
}

#[derive(Debug, Deserialize)]
struct PipelineSnapshot {
    id: Uuid,
    name: String,
    is_default: bool,
    /// `crm_pipeline_snapshot` adds them; the row before an update has none.
    stages: Option<Vec<StageSnapshot>>,
    #[serde(deserialize_with = "timestamp::required")]
    created_at: OffsetDateTime,
    #[serde(deserialize_with = "timestamp::required")]
    updated_at: OffsetDateTime,
    version: i64,
}

impl PipelineSnapshot {
    fn into_pipeline(self, tenant: TenantId) -> Result<ResourceSnapshot, String> {
        let with_stages = self.stages.is_some();
        let mut stages = self
            .stages
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                Ok(Stage {
                    id: StageId::from_uuid(s.id),
                    name: s.name,
                    position: s.position,
                    probability: s.probability,
                    kind: StageKind::parse(&s.kind).ok_or_else(|| bad("stage kind"))?,
                })
            })
            .collect::<Result<Vec<Stage>, String>>()?;
        stages.sort_by_key(|s| s.position);
        Ok(ResourceSnapshot::Pipeline {
            pipeline: Pipeline {
                id: PipelineId::from_uuid(self.id),
                tenant_id: tenant,
                name: self.name,
                is_default: self.is_default,
                stages,
                created_at: self.created_at,
                updated_at: self.updated_at,
                version: self.version,
            },
            with_stages,
        })
    }
}

#[derive(Debug, Deserialize)]
struct ActivitySnapshot {
    id: Uuid,
    r#type: String,
    subject: String,
    body: Option<String>,
    #[serde(default, deserialize_with = "timestamp::optional")]
    due_at: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "timestamp::optional")]
    completed_at: Option<OffsetDateTime>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    lead_id: Option<Uuid>,
    #[serde(deserialize_with = "timestamp::required")]
    created_at: OffsetDateTime,
    #[serde(deserialize_with = "timestamp::required")]
    updated_at: OffsetDateTime,
    version: i64,
}

impl ActivitySnapshot {
    fn into_activity(self, tenant: TenantId) -> Result<Activity, String> {
        Ok(Activity {
            id: ActivityId::from_uuid(self.id),
            tenant_id: tenant,
            fields: ActivityDraft {
                kind: ActivityType::parse(&self.r#type).ok_or_else(|| bad("type"))?,
                subject: self.subject,
                body: self.body,
                due_at: self.due_at,
                completed_at: self.completed_at,
                contact_id: self.contact_id.map(ContactId::from_uuid),
                company_id: self.company_id.map(CompanyId::from_uuid),
                lead_id: self.lead_id.map(LeadId::from_uuid),
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

/// An invitation row (migration 0023 on), or the API shape that `invitation.created`
/// stored before (camelCase, hence the aliases).
#[derive(Debug, Deserialize)]
struct InvitationSnapshot {
    id: Uuid,
    email: String,
    role: String,
    #[serde(alias = "invitedBy")]
    invited_by: Uuid,
    #[serde(alias = "createdAt", deserialize_with = "timestamp::required")]
    created_at: OffsetDateTime,
    #[serde(alias = "expiresAt", deserialize_with = "timestamp::required")]
    expires_at: OffsetDateTime,
    #[serde(
        alias = "acceptedAt",
        default,
        deserialize_with = "timestamp::optional"
    )]
    accepted_at: Option<OffsetDateTime>,
    #[serde(alias = "revokedAt", default, deserialize_with = "timestamp::optional")]
    revoked_at: Option<OffsetDateTime>,
}

impl InvitationSnapshot {
    fn into_invitation(self) -> Result<Invitation, String> {
        Ok(Invitation {
            id: InvitationId::from_uuid(self.id),
            email: self.email,
            role: self.role.parse().map_err(|_| bad("role"))?,
            invited_by: UserId::from_uuid(self.invited_by),
            created_at: self.created_at,
            expires_at: self.expires_at,
            accepted_at: self.accepted_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
