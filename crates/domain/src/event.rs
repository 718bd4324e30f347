//! Domain events (SPEC §5): one change of one resource, as the core sees it.
//!
//! An event is typed ([`EventType`], a closed set), names its tenant, and carries the
//! resource as it is after the change (as it was, for a delete) and, for updates, as it
//! was before: whole domain entities ([`ResourceSnapshot`]), so whoever renders an event
//! renders the same entity the HTTP API shows. Which fields an update changed is decided
//! here, once, from the two snapshots ([`DomainEvent::new`]), with the API's field names
//! (as [`crate::FieldErrors`] uses them).
//!
//! How a store captures events is its own business: PostgreSQL writes row snapshots in
//! the writing transaction (triggers) and converts them into this type when they are
//! read; an in-memory store can build them from its entities directly.

use std::fmt;

use thiserror::Error;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::activity::Activity;
use crate::company::Company;
use crate::contact::Contact;
use crate::identity::Invitation;
use crate::ids::{StageId, TenantId};
use crate::lead::Lead;
use crate::pipeline::Pipeline;

/// Every event type there is: `<resource>.created|updated|deleted`, `lead.stage_changed`,
/// `invitation.created`, and the `webhook.test` that `POST /v1/webhooks/{id}/test` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `contact.created`.
    ContactCreated,
    /// `contact.updated`.
    ContactUpdated,
    /// `contact.deleted`.
    ContactDeleted,
    /// `company.created`.
    CompanyCreated,
    /// `company.updated`.
    CompanyUpdated,
    /// `company.deleted`.
    CompanyDeleted,
    /// `lead.created`.
    LeadCreated,
    /// `lead.updated`.
    LeadUpdated,
    /// `lead.deleted`.
    LeadDeleted,
    /// `pipeline.created`.
    PipelineCreated,
    /// `pipeline.updated`.
    PipelineUpdated,
    /// `pipeline.deleted`.
    PipelineDeleted,
    /// `activity.created`.
    ActivityCreated,
    /// `activity.updated`.
    ActivityUpdated,
    /// `activity.deleted`.
    ActivityDeleted,
    /// `lead.stage_changed`: a lead moved from one stage to another (also a
    /// `lead.updated`).
    LeadStageChanged,
    /// `invitation.created`: the tenant's own system sends the e-mail.
    InvitationCreated,
    /// `webhook.test`: sent on request to one subscription, never stored or queued.
    WebhookTest,
}

/// What happened to the resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// It was created: the event has no previous snapshot.
    Created,
    /// It was changed: the event has the previous snapshot.
    Updated,
    /// It was deleted: the snapshot is the resource as it was.
    Deleted,
}

impl EventType {
    /// Every type, in the order the API documents them.
    pub const ALL: [Self; 18] = [
        Self::ContactCreated,
        Self::ContactUpdated,
        Self::ContactDeleted,
        Self::CompanyCreated,
        Self::CompanyUpdated,
        Self::CompanyDeleted,
        Self::LeadCreated,
        Self::LeadUpdated,
        Self::LeadDeleted,
        Self::PipelineCreated,
        Self::PipelineUpdated,
        Self::PipelineDeleted,
        Self::ActivityCreated,
        Self::ActivityUpdated,
        Self::ActivityDeleted,
        Self::LeadStageChanged,
        Self::InvitationCreated,
        Self::WebhookTest,
    ];

    /// The wire name (`contact.created`), as stored and delivered.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ContactCreated => "contact.created",
            Self::ContactUpdated => "contact.updated",
            Self::ContactDeleted => "contact.deleted",
            Self::CompanyCreated => "company.created",
            Self::CompanyUpdated => "company.updated",
            Self::CompanyDeleted => "company.deleted",
            Self::LeadCreated => "lead.created",
            Self::LeadUpdated => "lead.updated",
            Self::LeadDeleted => "lead.deleted",
            Self::PipelineCreated => "pipeline.created",
            Self::PipelineUpdated => "pipeline.updated",
            Self::PipelineDeleted => "pipeline.deleted",
            Self::ActivityCreated => "activity.created",
            Self::ActivityUpdated => "activity.updated",
            Self::ActivityDeleted => "activity.deleted",
            Self::LeadStageChanged => "lead.stage_changed",
            Self::InvitationCreated => "invitation.created",
            Self::WebhookTest => "webhook.test",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// The resource part of the name (`contact` in `contact.created`): what `contact.*`
    /// matches.
    #[must_use]
    pub fn resource(self) -> &'static str {
        let name = self.as_str();
        name.split_once('.').map_or(name, |(resource, _)| resource)
    }

    /// What happened to the resource (`None` for `webhook.test`, which is about none).
    #[must_use]
    pub const fn change(self) -> Option<ChangeKind> {
        match self {
            Self::ContactCreated
            | Self::CompanyCreated
            | Self::LeadCreated
            | Self::PipelineCreated
            | Self::ActivityCreated
            | Self::InvitationCreated => Some(ChangeKind::Created),
            Self::ContactUpdated
            | Self::CompanyUpdated
            | Self::LeadUpdated
            | Self::PipelineUpdated
            | Self::ActivityUpdated
            | Self::LeadStageChanged => Some(ChangeKind::Updated),
            Self::ContactDeleted
            | Self::CompanyDeleted
            | Self::LeadDeleted
            | Self::PipelineDeleted
            | Self::ActivityDeleted => Some(ChangeKind::Deleted),
            Self::WebhookTest => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's identifier; public as `evt_<32 hex digits>` (also the `webhook-id` header,
/// the same on every retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(Uuid);

impl EventId {
    /// A new random identifier.
    #[must_use]
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// Wraps a stored UUID.
    #[must_use]
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The underlying UUID.
    #[must_use]
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// `evt_<32 hex digits>`.
    #[must_use]
    pub fn public_id(&self) -> String {
        format!("evt_{}", self.0.simple())
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

/// The resource an event is about, as a whole domain entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceSnapshot {
    /// A contact.
    Contact(Contact),
    /// A company.
    Company(Company),
    /// A lead.
    Lead(Lead),
    /// A pipeline. `with_stages` is false when the snapshot does not know the stages
    /// (PostgreSQL's snapshot of a pipeline before an update: its old stages are gone by
    /// the time the event is written); `pipeline.stages` is then empty and means nothing.
    Pipeline {
        /// The pipeline.
        pipeline: Pipeline,
        /// Whether `pipeline.stages` is part of the snapshot.
        with_stages: bool,
    },
    /// An activity.
    Activity(Activity),
    /// An invitation (never its token).
    Invitation(Invitation),
}

impl ResourceSnapshot {
    /// The resource's name, as in the event type (`contact`).
    #[must_use]
    pub const fn resource(&self) -> &'static str {
        match self {
            Self::Contact(_) => "contact",
            Self::Company(_) => "company",
            Self::Lead(_) => "lead",
            Self::Pipeline { .. } => "pipeline",
            Self::Activity(_) => "activity",
            Self::Invitation(_) => "invitation",
        }
    }

    /// The resource's id.
    #[must_use]
    pub const fn id(&self) -> Uuid {
        match self {
            Self::Contact(c) => c.id.as_uuid(),
            Self::Company(c) => c.id.as_uuid(),
            Self::Lead(l) => l.id.as_uuid(),
            Self::Pipeline { pipeline, .. } => pipeline.id.as_uuid(),
            Self::Activity(a) => a.id.as_uuid(),
            Self::Invitation(i) => i.id.as_uuid(),
        }
    }

    /// The writable and derived fields whose values differ between `self` (after) and
    /// `before`, by their API names, sorted; bookkeeping (`createdAt`, `updatedAt`,
    /// `version`) never counts. A pipeline's stages are not compared (the snapshot before
    /// an update may not know them): a pipeline update that changed neither its name nor
    /// its default flag changed `["stages"]`, the only other thing that bumps its version.
    /// `None` when the two are not the same kind of resource.
    #[must_use]
    pub fn changed_fields(&self, before: &Self) -> Option<Vec<&'static str>> {
        let mut changed: Vec<&'static str> = Vec::new();
        let mut differ = |name: &'static str, different: bool| {
            if different {
                changed.push(name);
            }
        };
        match (self, before) {
            (Self::Contact(a), Self::Contact(b)) => {
                let (a, b) = (&a.fields, &b.fields);
                differ("companyId", a.company_id != b.company_id);
                differ("customFields", a.custom_fields != b.custom_fields);
                differ("email", a.email != b.email);
                differ("firstName", a.first_name != b.first_name);
                differ("lastName", a.last_name != b.last_name);
                differ("ownerId", a.owner_id != b.owner_id);
                differ("phone", a.phone != b.phone);
                differ("tags", a.tags != b.tags);
                differ("title", a.title != b.title);
            }
            (Self::Company(a), Self::Company(b)) => {
                let (a, b) = (&a.fields, &b.fields);
                differ("address", a.address != b.address);
                differ("customFields", a.custom_fields != b.custom_fields);
                differ("domain", a.domain != b.domain);
                differ("industry", a.industry != b.industry);
                differ("name", a.name != b.name);
                differ("size", a.size != b.size);
                differ("tags", a.tags != b.tags);
            }
            (Self::Lead(a), Self::Lead(b)) => {
                let (status, before_status) = (a.status, b.status);
                let (a, b) = (&a.fields, &b.fields);
                differ("companyId", a.company_id != b.company_id);
                differ("contactId", a.contact_id != b.contact_id);
                differ(
                    "currency",
                    a.value.as_ref().map(|m| &m.currency) != b.value.as_ref().map(|m| &m.currency),
                );
                differ(
                    "expectedCloseDate",
                    a.expected_close_date != b.expected_close_date,
                );
                differ("ownerId", a.owner_id != b.owner_id);
                differ("pipelineId", a.pipeline_id != b.pipeline_id);
                differ("source", a.source != b.source);
                differ("stageId", a.stage_id != b.stage_id);
                differ("status", status != before_status);
                differ("title", a.title != b.title);
                differ(
                    "value",
                    a.value.as_ref().map(|m| m.minor) != b.value.as_ref().map(|m| m.minor),
                );
            }
            (Self::Pipeline { pipeline: a, .. }, Self::Pipeline { pipeline: b, .. }) => {
                differ("isDefault", a.is_default != b.is_default);
                differ("name", a.name != b.name);
                if changed.is_empty() {
                    changed.push("stages");
                }
            }
            (Self::Activity(a), Self::Activity(b)) => {
                let (a, b) = (&a.fields, &b.fields);
                differ("body", a.body != b.body);
                differ("companyId", a.company_id != b.company_id);
                differ("completedAt", a.completed_at != b.completed_at);
                differ("contactId", a.contact_id != b.contact_id);
                differ("dueAt", a.due_at != b.due_at);
                differ("leadId", a.lead_id != b.lead_id);
                differ("subject", a.subject != b.subject);
                differ("type", a.kind != b.kind);
            }
            (Self::Invitation(a), Self::Invitation(b)) => {
                differ("acceptedAt", a.accepted_at != b.accepted_at);
                differ("email", a.email != b.email);
                differ("expiresAt", a.expires_at != b.expires_at);
                differ("invitedBy", a.invited_by != b.invited_by);
                differ("revokedAt", a.revoked_at != b.revoked_at);
                differ("role", a.role != b.role);
            }
            _ => return None,
        }
        Some(changed)
    }
}

/// Why parts that do not make one event were refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EventShapeError {
    /// `webhook.test` is about no resource and is never built from snapshots.
    #[error("a {0} event is not about a resource")]
    NotAResourceEvent(EventType),
    /// The snapshot is of another resource than the type says.
    #[error("a {kind} event cannot carry a {resource} snapshot")]
    WrongResource {
        /// The event's type.
        kind: EventType,
        /// The resource of the snapshot given.
        resource: &'static str,
    },
    /// An update without the previous snapshot, or a create/delete with one.
    #[error("a {0} event has a previous snapshot exactly when it is an update")]
    Previous(EventType),
}

/// One change of one resource of one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainEvent {
    id: EventId,
    kind: EventType,
    tenant_id: TenantId,
    created_at: OffsetDateTime,
    object: ResourceSnapshot,
    previous: Option<ResourceSnapshot>,
    changed_fields: Vec<&'static str>,
}

impl DomainEvent {
    /// An event from its parts; the changed fields of an update are derived from the two
    /// snapshots ([`ResourceSnapshot::changed_fields`]).
    ///
    /// # Errors
    /// [`EventShapeError`] when the parts contradict each other: a snapshot of another
    /// resource than the type names, a previous snapshot on anything but an update (or
    /// none on an update), or `webhook.test`.
    pub fn new(
        id: EventId,
        kind: EventType,
        tenant_id: TenantId,
        created_at: OffsetDateTime,
        object: ResourceSnapshot,
        previous: Option<ResourceSnapshot>,
    ) -> Result<Self, EventShapeError> {
        let change = kind
            .change()
            .ok_or(EventShapeError::NotAResourceEvent(kind))?;
        for snapshot in std::iter::once(&object).chain(previous.as_ref()) {
            if snapshot.resource() != kind.resource() {
                return Err(EventShapeError::WrongResource {
                    kind,
                    resource: snapshot.resource(),
                });
            }
        }
        let changed_fields = match (change, &previous) {
            (ChangeKind::Updated, Some(before)) => object
                .changed_fields(before)
                .ok_or(EventShapeError::Previous(kind))?,
            (ChangeKind::Created | ChangeKind::Deleted, None) => Vec::new(),
            (ChangeKind::Updated, None) | (ChangeKind::Created | ChangeKind::Deleted, Some(_)) => {
                return Err(EventShapeError::Previous(kind));
            }
        };
        Ok(Self {
            id,
            kind,
            tenant_id,
            created_at,
            object,
            previous,
            changed_fields,
        })
    }

    /// Its id.
    #[must_use]
    pub const fn id(&self) -> EventId {
        self.id
    }

    /// Its type.
    #[must_use]
    pub const fn kind(&self) -> EventType {
        self.kind
    }

    /// Whose.
    #[must_use]
    pub const fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    /// When the change was made (the writing transaction's time).
    #[must_use]
    pub const fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// The resource after the change (as it was, for a delete).
    #[must_use]
    pub const fn object(&self) -> &ResourceSnapshot {
        &self.object
    }

    /// The resource before the change (updates only).
    #[must_use]
    pub const fn previous(&self) -> Option<&ResourceSnapshot> {
        self.previous.as_ref()
    }

    /// The fields an update changed, by API name, sorted (empty for creates and deletes).
    #[must_use]
    pub fn changed_fields(&self) -> &[&'static str] {
        &self.changed_fields
    }

    /// A `lead.stage_changed`'s stages: from, to.
    #[must_use]
    pub fn stage_change(&self) -> Option<(StageId, StageId)> {
        match (self.kind, &self.object, &self.previous) {
            (
                EventType::LeadStageChanged,
                ResourceSnapshot::Lead(after),
                Some(ResourceSnapshot::Lead(before)),
            ) => Some((before.fields.stage_id, after.fields.stage_id)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::ContactDraft;
    use crate::ids::ContactId;

    fn contact(title: Option<&str>, version: i64) -> ResourceSnapshot {
        ResourceSnapshot::Contact(Contact {
            id: ContactId::from_uuid(Uuid::nil()),
            tenant_id: TenantId::from_uuid(Uuid::nil()),
            fields: ContactDraft {
                title: title.map(str::to_owned),
                ..ContactDraft::default()
            },
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(version),
            version,
        })
    }

    fn build(
        kind: EventType,
        object: ResourceSnapshot,
        previous: Option<ResourceSnapshot>,
    ) -> Result<DomainEvent, EventShapeError> {
        DomainEvent::new(
            EventId::new(),
            kind,
            TenantId::from_uuid(Uuid::nil()),
            OffsetDateTime::UNIX_EPOCH,
            object,
            previous,
        )
    }

    #[test]
    fn an_update_knows_what_changed_and_bookkeeping_never_counts() {
        let event = build(
            EventType::ContactUpdated,
            contact(Some("CTO"), 2),
            Some(contact(None, 1)),
        )
        .expect("an update");
        assert_eq!(event.changed_fields(), ["title"]);
        let nothing = build(
            EventType::ContactUpdated,
            contact(None, 2),
            Some(contact(None, 1)),
        )
        .expect("an update");
        assert!(
            nothing.changed_fields().is_empty(),
            "version and updatedAt only"
        );
        let created = build(EventType::ContactCreated, contact(None, 1), None).expect("a create");
        assert!(created.changed_fields().is_empty() && created.previous().is_none());
        assert_eq!(created.stage_change(), None);
    }

    #[test]
    fn parts_that_contradict_each_other_make_no_event() {
        assert_eq!(
            build(EventType::LeadCreated, contact(None, 1), None),
            Err(EventShapeError::WrongResource {
                kind: EventType::LeadCreated,
                resource: "contact"
            })
        );
        assert_eq!(
            build(EventType::ContactUpdated, contact(None, 1), None),
            Err(EventShapeError::Previous(EventType::ContactUpdated))
        );
        assert_eq!(
            build(
                EventType::ContactDeleted,
                contact(None, 1),
                Some(contact(None, 1))
            ),
            Err(EventShapeError::Previous(EventType::ContactDeleted))
        );
        assert_eq!(
            build(EventType::WebhookTest, contact(None, 1), None),
            Err(EventShapeError::NotAResourceEvent(EventType::WebhookTest))
        );
    }

    #[test]
    fn event_types_round_trip_and_name_their_resource() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert!(kind.as_str().starts_with(kind.resource()));
        }
        assert_eq!(EventType::LeadStageChanged.resource(), "lead");
        assert_eq!(EventType::parse("contact.exploded"), None);
        let id = EventId::from_uuid(Uuid::nil());
        assert_eq!(id.public_id(), format!("evt_{}", "0".repeat(32)));
    }
}
