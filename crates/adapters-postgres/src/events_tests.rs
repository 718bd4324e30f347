//! The snapshot conversion of each resource, on snapshots shaped as `to_jsonb` writes
//! them (snake_case columns, timestamps with the session's offset, `search_text` left
//! in where the trigger keeps it).

use serde_json::json;
use time::macros::datetime;

use super::*;

const TENANT: &str = "0190a000-0000-7000-8000-000000000001";
const EVENT: &str = "6f1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3";

fn stored(kind: &str, object: Value, previous: Option<Value>) -> StoredEvent {
    StoredEvent {
        tenant_id: TENANT.parse().expect("uuid"),
        id: EVENT.parse().expect("uuid"),
        kind: kind.to_owned(),
        created_at: datetime!(2026-01-05 11:00:00.5 +01:00),
        object,
        previous,
    }
}

fn event(kind: &str, object: Value, previous: Option<Value>) -> DomainEvent {
    DomainEvent::try_from(stored(kind, object, previous)).expect("converts")
}

fn contact_json() -> Value {
    json!({
        "tenant_id": TENANT, "id": "0190a000-0000-7000-8000-0000000000c1",
        "first_name": "Ada", "last_name": null, "email": "ada@example.com",
        "phone": "+44 20 7946 0958", "title": null, "tags": ["vip", "partner"],
        "custom_fields": {"plan": "gold", "seats": 12, "trial": false, "note": null},
        "owner_id": null, "company_id": "0190a000-0000-7000-8000-0000000000a1",
        "created_at": "2026-01-05T10:00:00.123456+00:00",
        "updated_at": "2026-01-05T12:00:00+02:00", "version": 1
    })
}

#[test]
fn a_contact_snapshot_becomes_the_contact_with_nulls_tags_and_custom_fields() {
    let e = event("contact.created", contact_json(), None);
    assert_eq!(e.id().public_id(), "evt_6f1c2d3e4f504a6b8c7d8e9fa0b1c2d3");
    assert_eq!(e.kind(), EventType::ContactCreated);
    assert_eq!(e.tenant_id().as_uuid().to_string(), TENANT);
    assert_eq!(e.created_at(), datetime!(2026-01-05 10:00:00.5 UTC));
    assert_eq!(e.created_at().offset(), UtcOffset::UTC, "shown in UTC");
    assert!(e.previous().is_none() && e.changed_fields().is_empty());
    let ResourceSnapshot::Contact(contact) = e.object() else {
        panic!("a contact: {:?}", e.object());
    };
    let f = &contact.fields;
    assert_eq!(f.first_name.as_deref(), Some("Ada"));
    assert_eq!(f.last_name, None);
    assert_eq!(f.title, None);
    assert_eq!(f.owner_id, None);
    assert_eq!(f.email.as_ref().map(Email::as_str), Some("ada@example.com"));
    assert_eq!(
        f.phone.as_ref().map(Phone::as_str),
        Some("+44 20 7946 0958")
    );
    assert_eq!(f.tags.as_slice(), ["vip", "partner"]);
    assert_eq!(
        f.custom_fields.to_value(),
        json!({"plan": "gold", "seats": 12, "trial": false, "note": null})
    );
    assert_eq!(contact.tenant_id.as_uuid().to_string(), TENANT);
    assert_eq!(
        contact.created_at,
        datetime!(2026-01-05 10:00:00.123456 UTC)
    );
    assert_eq!(contact.updated_at, datetime!(2026-01-05 10:00:00 UTC));
    assert_eq!(contact.updated_at.offset(), UtcOffset::UTC);
    assert_eq!(contact.version, 1);
}

#[test]
fn a_contact_update_says_what_changed_by_api_name() {
    let mut after = contact_json();
    after["title"] = json!("CTO");
    after["company_id"] = Value::Null;
    after["version"] = json!(2);
    after["updated_at"] = json!("2026-01-06T09:00:00+00:00");
    let e = event("contact.updated", after, Some(contact_json()));
    assert_eq!(e.changed_fields(), ["companyId", "title"]);
    assert!(matches!(e.previous(), Some(ResourceSnapshot::Contact(c)) if c.fields.title.is_none()));
}

#[test]
fn a_company_snapshot_keeps_its_address_size_and_domain() {
    let company = json!({
        "tenant_id": TENANT, "id": "0190a000-0000-7000-8000-0000000000a1",
        "name": "Initech", "domain": "initech.test", "industry": null, "size": "11-50",
        "address": {"city": "Austin", "postalCode": "73301"}, "tags": [],
        "custom_fields": {}, "created_at": "2026-01-05T10:00:00.1+00:00",
        "updated_at": "2026-01-05T10:00:00.1+00:00", "version": 3
    });
    let mut before = company.clone();
    before["industry"] = json!("Software");
    let e = event("company.updated", company, Some(before));
    let ResourceSnapshot::Company(c) = e.object() else {
        panic!("a company");
    };
    assert_eq!(
        c.fields.domain.as_ref().map(Domain::as_str),
        Some("initech.test")
    );
    assert_eq!(c.fields.size, CompanySize::parse("11-50"));
    assert_eq!(
        c.fields.address.to_value(),
        json!({"city": "Austin", "postalCode": "73301"})
    );
    assert_eq!(c.fields.industry, None);
    assert!(c.fields.tags.as_slice().is_empty());
    assert_eq!(e.changed_fields(), ["industry"]);
}

fn lead_json(stage: &str, status: &str) -> Value {
    json!({
        "tenant_id": TENANT, "id": "0190a000-0000-7000-8000-0000000000e1",
        "title": "Site licence", "contact_id": null, "company_id": null,
        "pipeline_id": "0190a000-0000-7000-8000-0000000000b1", "stage_id": stage,
        "value": 1_250_000_i64, "currency": "EUR", "status": status, "owner_id": null,
        "expected_close_date": "2026-03-31", "source": null,
        "created_at": "2026-01-05T10:00:00+00:00", "updated_at": "2026-01-05T10:00:00+00:00",
        "version": 1, "search_text": "site licence "
    })
}

const STAGE_A: &str = "0190a000-0000-7000-8000-0000000000d1";
const STAGE_B: &str = "0190a000-0000-7000-8000-0000000000d2";

#[test]
fn a_lead_snapshot_keeps_its_money_date_and_status_and_a_move_names_its_stages() {
    let e = event(
        "lead.stage_changed",
        lead_json(STAGE_B, "won"),
        Some(lead_json(STAGE_A, "open")),
    );
    let ResourceSnapshot::Lead(lead) = e.object() else {
        panic!("a lead");
    };
    let money = lead.fields.value.as_ref().expect("a value");
    assert_eq!((money.minor, money.currency.as_str()), (1_250_000, "EUR"));
    assert_eq!(
        lead.fields.expected_close_date,
        Some(time::macros::date!(2026 - 03 - 31))
    );
    assert_eq!(lead.status, StageKind::Won);
    assert_eq!(e.changed_fields(), ["stageId", "status"]);
    let (from, to) = e.stage_change().expect("a move");
    assert_eq!(
        (from.as_uuid().to_string(), to.as_uuid().to_string()),
        (STAGE_A.to_owned(), STAGE_B.to_owned())
    );

    let mut no_value = lead_json(STAGE_A, "open");
    no_value["value"] = Value::Null;
    no_value["currency"] = Value::Null;
    no_value["expected_close_date"] = Value::Null;
    let e = event("lead.created", no_value, None);
    assert!(
        matches!(e.object(), ResourceSnapshot::Lead(l) if l.fields.value.is_none() && l.fields.expected_close_date.is_none())
    );

    let mut half = lead_json(STAGE_A, "open");
    half["currency"] = Value::Null;
    assert!(DomainEvent::try_from(stored("lead.created", half, None)).is_err());
}

#[test]
fn a_pipeline_snapshot_has_its_stages_in_order_and_the_row_before_an_update_has_none() {
    let row = json!({
        "tenant_id": TENANT, "id": "0190a000-0000-7000-8000-0000000000b1", "name": "Partners",
        "is_default": false, "created_at": "2026-01-05T10:00:00+00:00",
        "updated_at": "2026-01-05T10:00:00+00:00", "version": 2
    });
    let mut after = row.clone();
    after["version"] = json!(3);
    after["stages"] = json!([
        {"tenant_id": TENANT, "pipeline_id": row["id"], "id": STAGE_B, "name": "Signed",
         "position": 1, "probability": 100, "kind": "won"},
        {"tenant_id": TENANT, "pipeline_id": row["id"], "id": STAGE_A, "name": "Intro",
         "position": 0, "probability": 50, "kind": "open"}
    ]);
    let e = event("pipeline.updated", after, Some(row));
    let ResourceSnapshot::Pipeline {
        pipeline,
        with_stages,
    } = e.object()
    else {
        panic!("a pipeline");
    };
    assert!(with_stages);
    let names: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Intro", "Signed"]);
    assert_eq!(pipeline.stages[1].kind, StageKind::Won);
    assert!(matches!(
        e.previous(),
        Some(ResourceSnapshot::Pipeline { with_stages: false, pipeline }) if pipeline.stages.is_empty()
    ));
    assert_eq!(e.changed_fields(), ["stages"], "only the stages changed");
}

#[test]
fn an_activity_snapshot_keeps_its_times_and_links() {
    let activity = json!({
        "tenant_id": TENANT, "id": "0190a000-0000-7000-8000-0000000000f1", "type": "call",
        "subject": "Intro call", "body": null, "due_at": "2026-01-07T09:30:00-05:00",
        "completed_at": null, "contact_id": "0190a000-0000-7000-8000-0000000000c1",
        "company_id": null, "lead_id": null, "created_at": "2026-01-05T10:00:00+00:00",
        "updated_at": "2026-01-05T10:00:00+00:00", "version": 1, "search_text": "intro call"
    });
    let e = event("activity.deleted", activity, None);
    let ResourceSnapshot::Activity(a) = e.object() else {
        panic!("an activity");
    };
    assert_eq!(a.fields.kind, ActivityType::parse("call").expect("a type"));
    assert_eq!(a.fields.due_at, Some(datetime!(2026-01-07 14:30:00 UTC)));
    assert_eq!(
        a.fields.due_at.map(OffsetDateTime::offset),
        Some(UtcOffset::UTC)
    );
    assert_eq!(a.fields.completed_at, None);
    assert_eq!(a.fields.body, None);
    assert!(a.fields.contact_id.is_some() && a.fields.lead_id.is_none());
}

#[test]
fn invitation_events_read_as_rows_and_in_the_api_shape_older_ones_were_stored_in() {
    let row = json!({
        "tenant_id": TENANT, "id": "0190a000-0000-7000-8000-000000000011",
        "email": "bob@example.com", "role": "member",
        "invited_by": "0190a000-0000-7000-8000-000000000021",
        "created_at": "2026-01-05T10:00:00.25+00:00", "expires_at": "2026-01-12T10:00:00.25+00:00",
        "accepted_at": null, "accepted_by": null, "revoked_at": null
    });
    let api_shape = json!({
        "id": "0190a000-0000-7000-8000-000000000011", "email": "bob@example.com",
        "role": "member", "invitedBy": "0190a000-0000-7000-8000-000000000021",
        "createdAt": "2026-01-05T10:00:00.250000Z", "expiresAt": "2026-01-12T10:00:00.250000Z",
        "acceptedAt": null
    });
    let from_row = event("invitation.created", row, None);
    let from_api_shape = event("invitation.created", api_shape, None);
    assert_eq!(from_row, from_api_shape);
    let ResourceSnapshot::Invitation(i) = from_row.object() else {
        panic!("an invitation");
    };
    assert_eq!(i.role.as_str(), "member");
    assert_eq!(i.expires_at, datetime!(2026-01-12 10:00:00.25 UTC));
}

#[test]
fn what_our_triggers_never_write_is_refused_not_served() {
    let unknown = stored("contact.exploded", contact_json(), None);
    assert!(DomainEvent::try_from(unknown).is_err());
    let test_event = stored("webhook.test", json!({"message": "hi"}), None);
    assert!(DomainEvent::try_from(test_event).is_err());
    let mut bad_email = contact_json();
    bad_email["email"] = json!("not an address");
    assert!(DomainEvent::try_from(stored("contact.created", bad_email, None)).is_err());
    let mut missing = contact_json();
    missing.as_object_mut().map(|o| o.remove("version"));
    assert!(DomainEvent::try_from(stored("contact.created", missing, None)).is_err());
    // An update without its previous snapshot does not make an event.
    assert!(DomainEvent::try_from(stored("contact.updated", contact_json(), None)).is_err());
}
