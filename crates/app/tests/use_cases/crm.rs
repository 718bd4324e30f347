//! Companies, pipelines, batches and idempotency claims on the in-memory adapter.

use adapters_memory::MemoryStore;
use app::auth::{AuthSettings, Credential, authenticate};
use app::batch::{BatchError, BatchMode, ItemError, ItemOutcome, batch_contacts};
use app::companies::{CompanyError, company_contacts, create_company, delete_company};
use app::contacts::{ContactError, create_contact, get_contact};
use app::leads::{create_lead, get_lead};
use app::pipelines::{PipelineError, StageChange, change_stages, delete_pipeline, list_pipelines};
use app::tenants::provision_tenant;
use domain::company::CompanyInput;
use domain::contact::{ContactInput, ContactQuery};
use domain::ids::{CompanyId, TenantId};
use domain::lead::LeadInput;
use domain::pipeline::StageKind;
use ports::{
    CommitSlot, IdempotencyClaim, IdempotencyRepository, IdempotencyScope, StoredResponse,
    UnitOfWork,
};

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

async fn auth(
    store: &MemoryStore,
    t: &Tenant,
) -> (
    domain::principal::Principal,
    adapters_memory::MemoryUnitOfWork,
) {
    authenticate(store, &AuthSettings::default(), &t.key)
        .await
        .expect("auth")
}

fn company(name: &str, domain: &str) -> CompanyInput {
    CompanyInput {
        name: Some(name.into()),
        domain: Some(domain.into()),
        ..CompanyInput::default()
    }
}

#[tokio::test]
async fn deleting_a_company_keeps_its_contacts_without_it() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (p, uow) = auth(&store, &acme).await;
    let initech = create_company(uow, &p, company("Initech", "initech.example"))
        .await
        .expect("company");
    let (p, uow) = auth(&store, &acme).await;
    let input = ContactInput {
        first_name: Some("Peter".into()),
        company_id: Some(initech.id),
        ..ContactInput::default()
    };
    let peter = create_contact(uow, &p, input).await.expect("contact");
    let (p, uow) = auth(&store, &acme).await;
    let page = company_contacts(uow, &p, initech.id, ContactQuery::default())
        .await
        .expect("page");
    assert_eq!(page.items.len(), 1);
    let (p, uow) = auth(&store, &acme).await;
    delete_company(uow, &p, initech.id, None)
        .await
        .expect("deleted");
    let (p, uow) = auth(&store, &acme).await;
    assert_eq!(
        get_contact(uow, &p, peter.id)
            .await
            .expect("kept")
            .fields
            .company_id,
        None
    );
    let (p, uow) = auth(&store, &acme).await;
    assert!(matches!(
        company_contacts(uow, &p, initech.id, ContactQuery::default()).await,
        Err(CompanyError::NotFound)
    ));
}

#[tokio::test]
async fn contacts_cannot_name_an_unknown_company_and_domains_are_unique() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (p, uow) = auth(&store, &acme).await;
    let input = ContactInput {
        first_name: Some("X".into()),
        company_id: Some(CompanyId::new()),
        ..ContactInput::default()
    };
    assert!(matches!(
        create_contact(uow, &p, input).await,
        Err(ContactError::Invalid(_))
    ));
    let (p, uow) = auth(&store, &acme).await;
    create_company(uow, &p, company("A", "a.example"))
        .await
        .expect("first");
    let (p, uow) = auth(&store, &acme).await;
    let again = create_company(uow, &p, company("B", "WWW.A.example")).await;
    assert!(matches!(again, Err(CompanyError::DuplicateDomain)));
    assert_eq!(store.contact_count(acme.id).expect("count"), 0);
}

#[tokio::test]
async fn the_default_pipeline_is_there_stays_and_keeps_a_stage() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (p, uow) = auth(&store, &acme).await;
    let pipelines = list_pipelines(uow, &p).await.expect("list");
    assert_eq!(pipelines.len(), 1);
    let default = &pipelines[0];
    assert!(default.is_default);
    assert_eq!(default.stages.len(), 6);
    let (p, uow) = auth(&store, &acme).await;
    assert!(matches!(
        delete_pipeline(uow, &p, default.id, None).await,
        Err(PipelineError::DefaultPipeline)
    ));

    let mut current = default.clone();
    for stage in default.stages.iter().skip(1) {
        let (p, uow) = auth(&store, &acme).await;
        current = change_stages(
            uow,
            &p,
            default.id,
            None,
            StageChange::Delete {
                stage: stage.id,
                move_to: None,
            },
        )
        .await
        .expect("deleted");
    }
    assert_eq!(current.stages.len(), 1);
    assert_eq!(current.stages[0].position, 0);
    let (p, uow) = auth(&store, &acme).await;
    let last = change_stages(
        uow,
        &p,
        default.id,
        None,
        StageChange::Delete {
            stage: current.stages[0].id,
            move_to: None,
        },
    )
    .await;
    assert!(matches!(last, Err(PipelineError::LastStage)));
}

#[tokio::test]
async fn a_create_batch_is_all_or_nothing() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (p, uow) = auth(&store, &acme).await;
    let items = vec![
        Ok(ContactInput {
            email: Some("a@example.com".into()),
            ..ContactInput::default()
        }),
        Ok(ContactInput {
            email: Some("A@example.com".into()),
            ..ContactInput::default()
        }),
    ];
    let result = batch_contacts(uow, &p, BatchMode::Create, items).await;
    let Err(BatchError::Rejected(outcomes)) = result else {
        panic!("expected a rejected batch")
    };
    assert_eq!(outcomes[0], ItemOutcome::Error(ItemError::Skipped));
    assert!(matches!(
        outcomes[1],
        ItemOutcome::Error(ItemError::Conflict(_))
    ));
    assert_eq!(store.contact_count(acme.id).expect("count"), 0);
}

#[tokio::test]
async fn an_idempotent_change_and_its_stored_response_commit_together_or_not_at_all() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (principal, mut uow) = auth(&store, &acme).await;
    let scope = IdempotencyScope {
        credential: principal.credential_id(),
        key: "k".into(),
        request_hash: app::idempotency::request_hash("POST", "/v1/contacts", b"{}"),
    };
    assert_eq!(
        uow.begin_idempotent(&scope).await.expect("begin"),
        IdempotencyClaim::Claimed
    );
    let slot = CommitSlot::default();
    uow.park_commit(slot.clone());
    let input = ContactInput {
        first_name: Some("Ada".into()),
        ..ContactInput::default()
    };
    create_contact(uow, &principal, input.clone())
        .await
        .expect("created");
    assert_eq!(
        store.contact_count(acme.id).expect("count"),
        0,
        "parked at its commit: not visible yet"
    );
    let mut parked = slot.take().expect("the use case committed");
    let stored = StoredResponse {
        status: 201,
        headers: vec![],
        body: b"{}".to_vec(),
        role: principal.role,
        scopes: principal.scopes.clone(),
    };
    parked
        .store_idempotent(&scope, &stored)
        .await
        .expect("stored");
    parked.commit().await.expect("committed");
    assert_eq!(store.contact_count(acme.id).expect("count"), 1);

    let (_, mut uow) = auth(&store, &acme).await;
    assert_eq!(
        uow.begin_idempotent(&scope).await.expect("begin"),
        IdempotencyClaim::Replay(stored)
    );
    let other = IdempotencyScope {
        request_hash: app::idempotency::request_hash("POST", "/v1/contacts", b"{\"x\":1}"),
        ..scope.clone()
    };
    assert_eq!(
        uow.begin_idempotent(&other).await.expect("begin"),
        IdempotencyClaim::Mismatch
    );
    let another_credential = IdempotencyScope {
        credential: uuid::Uuid::new_v4(),
        ..scope.clone()
    };
    assert_eq!(
        uow.begin_idempotent(&another_credential)
            .await
            .expect("begin"),
        IdempotencyClaim::Claimed,
        "records belong to their credential"
    );

    // A parked unit of work that is never taken back changes nothing.
    let (principal, mut uow) = auth(&store, &acme).await;
    let slot = CommitSlot::default();
    uow.park_commit(slot.clone());
    create_contact(uow, &principal, input)
        .await
        .expect("created");
    drop(slot);
    assert_eq!(store.contact_count(acme.id).expect("count"), 1);
}

#[tokio::test]
async fn editing_a_stage_kind_re_statuses_the_leads_already_in_it() {
    let store = MemoryStore::new();
    let acme = tenant(&store).await;
    let (p, uow) = auth(&store, &acme).await;
    let sales = list_pipelines(uow, &p).await.expect("list").remove(0);
    let negotiation = sales.stages[3].id;
    assert_eq!(sales.stages[3].kind, StageKind::Open);
    let (p, uow) = auth(&store, &acme).await;
    let lead = create_lead(
        uow,
        &p,
        LeadInput {
            title: Some("Site licence".into()),
            stage_id: Some(negotiation),
            ..LeadInput::default()
        },
    )
    .await
    .expect("lead");
    assert_eq!(lead.status, StageKind::Open);

    let (p, uow) = auth(&store, &acme).await;
    change_stages(
        uow,
        &p,
        sales.id,
        None,
        StageChange::Update {
            stage: negotiation,
            name: None,
            probability: None,
            kind: Some(StageKind::Won),
        },
    )
    .await
    .expect("stage edited");
    let (p, uow) = auth(&store, &acme).await;
    let after = get_lead(uow, &p, lead.id).await.expect("lead");
    assert_eq!(after.status, StageKind::Won);
    assert_eq!(after.version, lead.version + 1, "its ETag changes");
}
