//! Events: every change a use case commits is an event in the tenant's log, read through
//! the same use case as `GET /v1/events` (`list_events`); nothing that fails, or changes
//! nothing, leaves one; and each event is queued for the subscriptions that ask for it.

use adapters_memory::{MemoryStore, MemoryUnitOfWork};
use app::auth::{AuthSettings, Credential, authenticate};
use app::companies::{create_company, delete_company};
use app::contacts::{
    ContactChange, ContactError, IfMatch, create_contact, delete_contact, update_contact,
};
use app::leads::{LeadChange, create_activity, create_lead, update_lead};
use app::pipelines::{StageChange, change_stages, create_pipeline, get_pipeline, list_pipelines};
use app::tenants::provision_tenant;
use app::webhooks::{EventsAfter, list_deliveries, list_events};
use domain::activity::{ActivityInput, ActivityType};
use domain::company::CompanyInput;
use domain::contact::{ContactInput, ContactPatch};
use domain::event::{DomainEvent, EventType, ResourceSnapshot};
use domain::ids::{CompanyId, ContactId, SubscriptionId, TenantId};
use domain::lead::LeadInput;
use domain::pipeline::{StageInput, StageKind};
use domain::principal::Principal;
use domain::webhook::{DeliveryStatus, SubscriptionDraft};
use ports::{ContactRepository, UnitOfWork, WebhookRepository};

struct Tenant {
    id: TenantId,
    key: Credential,
}

async fn tenant(store: &MemoryStore) -> Tenant {
    let made = provision_tenant(store, "Acme", None).await.expect("tenant");
    Tenant {
        id: made.tenant.tenant_id,
        key: Credential::ApiKey(made.api_key),
    }
}

async fn auth(store: &MemoryStore, t: &Tenant) -> (Principal, MemoryUnitOfWork) {
    authenticate(store, &AuthSettings::default(), &t.key)
        .await
        .expect("auth")
}

/// The tenant's whole event log, oldest first, page by page as the API reads it.
async fn log(store: &MemoryStore, t: &Tenant) -> Vec<DomainEvent> {
    let mut events = Vec::new();
    let mut after = None;
    loop {
        let (p, uow) = auth(store, t).await;
        let page = list_events(uow, &p, after, &[], 100)
            .await
            .expect("event log");
        events.extend(page.events);
        match page.last_position {
            Some(position) if page.has_more => after = Some(EventsAfter::Position(position)),
            _ => return events,
        }
    }
}

/// What was logged after the first `before` events.
async fn since(store: &MemoryStore, t: &Tenant, before: usize) -> Vec<DomainEvent> {
    log(store, t).await.split_off(before)
}

fn kinds(events: &[DomainEvent]) -> Vec<EventType> {
    events.iter().map(DomainEvent::kind).collect()
}

fn ada() -> ContactInput {
    ContactInput {
        first_name: Some("Ada".into()),
        email: Some("ada@example.com".into()),
        ..ContactInput::default()
    }
}

/// A call logged against a company.
fn call_with(company: CompanyId) -> ActivityInput {
    ActivityInput {
        kind: ActivityType::Call,
        subject: Some("Intro call".into()),
        body: None,
        due_at: None,
        completed_at: None,
        contact_id: None,
        company_id: Some(company),
        lead_id: None,
    }
}

fn title(to: &str) -> ContactChange {
    ContactChange::Patch(ContactPatch {
        title: Some(Some(to.into())),
        ..ContactPatch::default()
    })
}

#[tokio::test]
async fn a_new_tenant_logs_its_default_pipeline_first() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let events = log(&store, &acme).await;
    assert_eq!(kinds(&events), [EventType::PipelineCreated]);
    let ResourceSnapshot::Pipeline {
        pipeline,
        with_stages,
    } = events[0].object()
    else {
        panic!("a pipeline: {:?}", events[0].object());
    };
    assert!(pipeline.is_default && *with_stages);
    assert_eq!(pipeline.stages.len(), 6);
    assert_eq!(events[0].tenant_id(), acme.id);
}

#[tokio::test]
async fn creating_updating_and_deleting_a_contact_emits_its_three_events_with_what_changed() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let before = log(&store, &acme).await.len();

    let (p, uow) = auth(&store, &acme).await;
    let created = create_contact(uow, &p, ada()).await.expect("created");
    let (p, uow) = auth(&store, &acme).await;
    let updated = update_contact(uow, &p, created.id, None, title("CTO"))
        .await
        .expect("updated");
    let (p, uow) = auth(&store, &acme).await;
    delete_contact(uow, &p, created.id, None)
        .await
        .expect("deleted");

    let events = since(&store, &acme, before).await;
    assert_eq!(
        kinds(&events),
        [
            EventType::ContactCreated,
            EventType::ContactUpdated,
            EventType::ContactDeleted
        ]
    );
    let [made, changed, gone] = &events[..] else {
        unreachable!("three events");
    };
    assert_eq!(made.object(), &ResourceSnapshot::Contact(created.clone()));
    assert_eq!(made.previous(), None);
    assert!(made.changed_fields().is_empty());
    assert_eq!(
        changed.object(),
        &ResourceSnapshot::Contact(updated.clone())
    );
    assert_eq!(
        changed.previous(),
        Some(&ResourceSnapshot::Contact(created))
    );
    assert_eq!(changed.changed_fields(), ["title"]);
    assert_eq!(
        gone.object(),
        &ResourceSnapshot::Contact(updated),
        "a deleted contact is described as it was"
    );
    assert!(events.iter().all(|e| e.tenant_id() == acme.id));
    let ids: std::collections::HashSet<_> = events.iter().map(DomainEvent::id).collect();
    assert_eq!(ids.len(), 3, "every event has its own id");
}

#[tokio::test]
async fn an_update_that_changes_nothing_emits_nothing() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (p, uow) = auth(&store, &acme).await;
    let ada = create_contact(uow, &p, ada()).await.expect("created");
    let before = log(&store, &acme).await.len();

    let (p, uow) = auth(&store, &acme).await;
    let same = ContactChange::Patch(ContactPatch {
        first_name: Some(Some("Ada".into())),
        ..ContactPatch::default()
    });
    let kept = update_contact(uow, &p, ada.id, None, same)
        .await
        .expect("a no-op");
    assert_eq!(kept.version, ada.version);
    assert!(since(&store, &acme, before).await.is_empty());
}

#[tokio::test]
async fn a_use_case_that_fails_or_never_commits_emits_nothing() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (p, uow) = auth(&store, &acme).await;
    let ada = create_contact(uow, &p, ada()).await.expect("created");
    let before = log(&store, &acme).await.len();

    // A taken e-mail, and a stale If-Match: refused, nothing committed.
    let (p, uow) = auth(&store, &acme).await;
    let taken = create_contact(uow, &p, self::ada()).await;
    assert!(
        matches!(taken, Err(ContactError::DuplicateEmail)),
        "{taken:?}"
    );
    let (p, uow) = auth(&store, &acme).await;
    let stale = IfMatch::Tags(vec!["\"7\"".into()]);
    let refused = update_contact(uow, &p, ada.id, Some(&stale), title("CEO")).await;
    assert!(
        matches!(refused, Err(ContactError::PreconditionFailed { .. })),
        "{refused:?}"
    );
    // A write whose unit of work is dropped instead of committed is rolled back, its
    // event with it.
    let (_, mut uow) = auth(&store, &acme).await;
    let draft = domain::contact::ContactDraft::new(ContactInput {
        first_name: Some("Ghost".into()),
        ..ContactInput::default()
    })
    .expect("draft");
    uow.insert_contact(ContactId::new(), &draft)
        .await
        .expect("written, not committed");
    drop(uow);

    assert!(since(&store, &acme, before).await.is_empty());
}

#[tokio::test]
async fn moving_a_lead_emits_its_update_then_its_stage_change_from_and_to_then_its_note() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (p, uow) = auth(&store, &acme).await;
    let lead = create_lead(
        uow,
        &p,
        LeadInput {
            title: Some("Site licence".into()),
            ..LeadInput::default()
        },
    )
    .await
    .expect("lead");
    let (p, uow) = auth(&store, &acme).await;
    let pipeline = get_pipeline(uow, &p, lead.fields.pipeline_id)
        .await
        .expect("the default pipeline");
    let (from, to) = (pipeline.stages[0].id, pipeline.stages[1].id);
    assert_eq!(
        lead.fields.stage_id, from,
        "a new lead starts at the first stage"
    );
    let before = log(&store, &acme).await.len();

    let (p, uow) = auth(&store, &acme).await;
    let moved = update_lead(uow, &p, lead.id, None, LeadChange::Move(to))
        .await
        .expect("moved");

    // The move also logs a note on the lead (its own activity.created).
    let events = since(&store, &acme, before).await;
    assert_eq!(
        kinds(&events),
        [
            EventType::LeadUpdated,
            EventType::LeadStageChanged,
            EventType::ActivityCreated
        ]
    );
    assert_eq!(events[0].changed_fields(), ["stageId"]);
    assert_eq!(events[1].stage_change(), Some((from, to)));
    assert_eq!(events[1].object(), &ResourceSnapshot::Lead(moved));
    assert_eq!(events[1].previous(), Some(&ResourceSnapshot::Lead(lead)));
}

#[tokio::test]
async fn a_company_a_pipeline_and_an_activity_each_emit_their_created_event() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let before = log(&store, &acme).await.len();

    let (p, uow) = auth(&store, &acme).await;
    let company = create_company(
        uow,
        &p,
        CompanyInput {
            name: Some("Initech".into()),
            ..CompanyInput::default()
        },
    )
    .await
    .expect("company");
    let (p, uow) = auth(&store, &acme).await;
    let stages = vec![
        StageInput {
            name: "Intro".into(),
            probability: None,
            kind: None,
        },
        StageInput {
            name: "Signed".into(),
            probability: None,
            kind: Some(StageKind::Won),
        },
    ];
    let pipeline = create_pipeline(uow, &p, "Partners", stages)
        .await
        .expect("pipeline");
    let (p, uow) = auth(&store, &acme).await;
    let activity = create_activity(uow, &p, call_with(company.id))
        .await
        .expect("activity");

    let events = since(&store, &acme, before).await;
    assert_eq!(
        kinds(&events),
        [
            EventType::CompanyCreated,
            EventType::PipelineCreated,
            EventType::ActivityCreated
        ]
    );
    assert_eq!(events[0].object(), &ResourceSnapshot::Company(company));
    assert_eq!(
        events[1].object(),
        &ResourceSnapshot::Pipeline {
            pipeline,
            with_stages: true
        },
        "the pipeline with its stages"
    );
    assert_eq!(events[2].object(), &ResourceSnapshot::Activity(activity));
}

#[tokio::test]
async fn a_stage_change_is_one_pipeline_update_with_the_final_stages() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (p, uow) = auth(&store, &acme).await;
    let pipeline = list_pipelines(uow, &p).await.expect("pipelines").remove(0);
    let before = log(&store, &acme).await.len();

    let (p, uow) = auth(&store, &acme).await;
    let add = StageChange::Add {
        stage: StageInput {
            name: "Pilot".into(),
            probability: None,
            kind: None,
        },
        position: None,
    };
    let changed = change_stages(uow, &p, pipeline.id, None, add)
        .await
        .expect("stage added");

    let events = since(&store, &acme, before).await;
    assert_eq!(kinds(&events), [EventType::PipelineUpdated]);
    assert_eq!(events[0].changed_fields(), ["stages"]);
    assert_eq!(
        events[0].object(),
        &ResourceSnapshot::Pipeline {
            pipeline: changed,
            with_stages: true
        }
    );
    // As in PostgreSQL, `previous` is the pipeline without its (former) stages.
    assert!(matches!(
        events[0].previous(),
        Some(ResourceSnapshot::Pipeline { pipeline: old, with_stages: false })
            if old.version == pipeline.version && old.stages.is_empty()
    ));
}

#[tokio::test]
async fn deleting_a_company_logs_its_deletion_then_its_contacts_losing_it_then_its_activities() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (p, uow) = auth(&store, &acme).await;
    let initech = create_company(
        uow,
        &p,
        CompanyInput {
            name: Some("Initech".into()),
            ..CompanyInput::default()
        },
    )
    .await
    .expect("company");
    let (p, uow) = auth(&store, &acme).await;
    let peter = create_contact(
        uow,
        &p,
        ContactInput {
            first_name: Some("Peter".into()),
            company_id: Some(initech.id),
            ..ContactInput::default()
        },
    )
    .await
    .expect("contact");
    let (p, uow) = auth(&store, &acme).await;
    let call = create_activity(uow, &p, call_with(initech.id))
        .await
        .expect("activity");
    let before = log(&store, &acme).await.len();

    let (p, uow) = auth(&store, &acme).await;
    delete_company(uow, &p, initech.id, None)
        .await
        .expect("deleted");

    let events = since(&store, &acme, before).await;
    // PostgreSQL's order: the deleting statement's event, then its foreign-key actions.
    assert_eq!(
        kinds(&events),
        [
            EventType::CompanyDeleted,
            EventType::ContactUpdated,
            EventType::ActivityDeleted
        ]
    );
    assert_eq!(events[0].object(), &ResourceSnapshot::Company(initech));
    assert_eq!(events[1].changed_fields(), ["companyId"]);
    assert_eq!(
        events[1].previous(),
        Some(&ResourceSnapshot::Contact(peter.clone()))
    );
    assert!(
        matches!(events[1].object(), ResourceSnapshot::Contact(c)
            if c.fields.company_id.is_none() && c.version == peter.version),
        "the contact stays, without the company, its version unmoved"
    );
    assert_eq!(events[2].object(), &ResourceSnapshot::Activity(call));
}

#[tokio::test]
async fn the_event_log_pages_in_order_after_a_position_or_an_event_id() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    for name in ["Ada", "Grace", "Edsger"] {
        let (p, uow) = auth(&store, &acme).await;
        let input = ContactInput {
            first_name: Some(name.into()),
            ..ContactInput::default()
        };
        create_contact(uow, &p, input).await.expect("created");
    }
    let all = log(&store, &acme).await;
    assert_eq!(
        kinds(&all),
        [
            EventType::PipelineCreated,
            EventType::ContactCreated,
            EventType::ContactCreated,
            EventType::ContactCreated
        ]
    );

    let (p, uow) = auth(&store, &acme).await;
    let first = list_events(uow, &p, None, &[], 2).await.expect("page");
    assert_eq!(first.events, all[..2]);
    assert!(first.has_more);
    let position = first.last_position.expect("a position");
    let (p, uow) = auth(&store, &acme).await;
    let rest = list_events(uow, &p, Some(EventsAfter::Position(position)), &[], 2)
        .await
        .expect("page");
    assert_eq!(rest.events, all[2..]);
    assert!(!rest.has_more);

    // Resuming after an event a receiver kept, and filtering by type.
    let (p, uow) = auth(&store, &acme).await;
    let kept = EventsAfter::Event(all[1].id().as_uuid());
    let contacts = vec!["contact.created".to_owned()];
    let resumed = list_events(uow, &p, Some(kept), &contacts, 100)
        .await
        .expect("page");
    assert_eq!(resumed.events, all[2..]);
}

#[tokio::test]
async fn an_event_is_queued_for_each_subscription_that_asks_for_its_type() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    // Subscriptions straight through the port: vetting the URL (DNS) is not the point.
    let subscribe = |events: &[&str], enabled: bool| {
        SubscriptionDraft::new(
            "https://hooks.example.com/crm".into(),
            None,
            events.iter().map(|e| (*e).to_owned()).collect(),
            enabled,
        )
        .expect("draft")
    };
    let (everything, contacts, companies, off) = (
        SubscriptionId::new(),
        SubscriptionId::new(),
        SubscriptionId::new(),
        SubscriptionId::new(),
    );
    let (_, mut uow) = auth(&store, &acme).await;
    for (id, draft) in [
        (everything, subscribe(&["*"], true)),
        (contacts, subscribe(&["contact.*"], true)),
        (companies, subscribe(&["company.created"], true)),
        (off, subscribe(&["*"], false)),
    ] {
        uow.insert_subscription(id, &draft, "whsec_test")
            .await
            .expect("subscribed");
    }
    uow.commit().await.expect("commit");

    let (p, uow) = auth(&store, &acme).await;
    let ada = create_contact(uow, &p, ada()).await.expect("created");
    let (p, uow) = auth(&store, &acme).await;
    update_contact(uow, &p, ada.id, None, title("CTO"))
        .await
        .expect("updated");
    let mut contact_events: Vec<(String, String)> = log(&store, &acme)
        .await
        .iter()
        .filter(|e| e.kind().resource() == "contact")
        .map(|e| (e.id().public_id(), e.kind().as_str().to_owned()))
        .collect();
    contact_events.sort();
    assert_eq!(contact_events.len(), 2);

    let queued = |subscription| {
        let store = &store;
        let acme = &acme;
        async move {
            let (p, uow) = auth(store, acme).await;
            list_deliveries(uow, &p, subscription, 100, None)
                .await
                .expect("deliveries")
        }
    };
    for subscription in [everything, contacts] {
        let deliveries = queued(subscription).await;
        let mut events: Vec<(String, String)> = deliveries
            .iter()
            .map(|d| (d.event_id.clone(), d.event_type.clone()))
            .collect();
        events.sort();
        assert_eq!(events, contact_events, "{subscription:?}");
        assert!(
            deliveries
                .iter()
                .all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0)
        );
    }
    assert!(queued(companies).await.is_empty(), "another type");
    assert!(queued(off).await.is_empty(), "disabled");
}
