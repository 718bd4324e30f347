//! Events in the API's shape: one renderer for the event log (`GET /v1/events`) and for
//! webhook bodies (the worker, through [`ports::EventRenderer`]).
//!
//! The object of an event is rendered by the same DTO as the HTTP response of its
//! resource (`ContactResponse::from(&Contact)` and the others), so a delivered contact,
//! the same event in the log and `GET /v1/contacts/{id}` agree field for field. The
//! payload is `{"id": "evt_…", "type", "tenantId", "createdAt", "data": {"object",
//! "previous", "changedFields", "fromStageId", "toStageId"}}`: `previous` and
//! `changedFields` for updates only, the stage ids for `lead.stage_changed` only.

use domain::event::{DomainEvent, ResourceSnapshot};
use ports::{EventRenderError, EventRenderer};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::routes::companies::CompanyResponse;
use crate::routes::contacts::ContactResponse;
use crate::routes::invitations::InvitationResponse;
use crate::routes::leads::{ActivityResponse, LeadResponse};
use crate::routes::pipelines::PipelineResponse;

/// An event as listed and delivered.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventResponse {
    /// `evt_<32 hex digits>`, also the `webhook-id` header of its deliveries.
    pub id: String,
    /// The event type, e.g. `contact.updated`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The tenant.
    pub tenant_id: Uuid,
    /// When the change was made (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// What changed.
    pub data: EventDataResponse,
}

/// The `data` of an event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDataResponse {
    /// The resource after the change (as it was, for a delete), as its `GET` shows it.
    #[schema(value_type = Object)]
    pub object: Value,
    /// The resource before the change (updates only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub previous: Option<Value>,
    /// The fields the update changed, sorted (updates only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_fields: Option<Vec<&'static str>>,
    /// `lead.stage_changed`: the stage the lead left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_stage_id: Option<Uuid>,
    /// `lead.stage_changed`: the stage the lead entered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_stage_id: Option<Uuid>,
}

/// One resource in the shape of its HTTP response.
///
/// # Errors
/// Serialisation errors (none for these DTOs, which have string keys only).
fn object(snapshot: &ResourceSnapshot) -> Result<Value, serde_json::Error> {
    match snapshot {
        ResourceSnapshot::Contact(contact) => serde_json::to_value(ContactResponse::from(contact)),
        ResourceSnapshot::Company(company) => serde_json::to_value(CompanyResponse::from(company)),
        ResourceSnapshot::Lead(lead) => serde_json::to_value(LeadResponse::from(lead)),
        ResourceSnapshot::Pipeline {
            pipeline,
            with_stages,
        } => {
            let mut value = serde_json::to_value(PipelineResponse::from(pipeline))?;
            // A snapshot that does not know the stages says nothing about them.
            if !with_stages && let Value::Object(fields) = &mut value {
                fields.remove("stages");
            }
            Ok(value)
        }
        ResourceSnapshot::Activity(activity) => {
            serde_json::to_value(ActivityResponse::from(activity))
        }
        ResourceSnapshot::Invitation(invitation) => {
            serde_json::to_value(InvitationResponse::from(invitation))
        }
    }
}

impl EventResponse {
    /// The event in the API's shape.
    ///
    /// # Errors
    /// [`EventRenderError`] if a DTO does not serialise (it always does).
    pub fn new(event: &DomainEvent) -> Result<Self, EventRenderError> {
        let failed = |e: serde_json::Error| EventRenderError(e.to_string());
        let stages = event.stage_change();
        Ok(Self {
            id: event.id().public_id(),
            kind: event.kind().as_str(),
            tenant_id: event.tenant_id().as_uuid(),
            created_at: event.created_at(),
            data: EventDataResponse {
                object: object(event.object()).map_err(failed)?,
                previous: event.previous().map(object).transpose().map_err(failed)?,
                changed_fields: event.previous().map(|_| event.changed_fields().to_vec()),
                from_stage_id: stages.map(|(from, _)| from.as_uuid()),
                to_stage_id: stages.map(|(_, to)| to.as_uuid()),
            },
        })
    }
}

/// Renders webhook bodies as JSON with the API's DTOs: the port the delivery worker signs
/// through.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonEventRenderer;

impl EventRenderer for JsonEventRenderer {
    fn render(&self, event: &DomainEvent) -> Result<Vec<u8>, EventRenderError> {
        serde_json::to_vec(&EventResponse::new(event)?).map_err(|e| EventRenderError(e.to_string()))
    }
}
