//! Contact use cases.

use adapters_memory::MemoryStore;
use app::auth::{AuthError, AuthSettings, Credential, authenticate};
use app::contacts::{
    ContactChange, ContactError, IfMatch, RememberedCreate, create_contact, delete_contact,
    get_contact, get_contact_with_api_key, list_contacts, list_contacts_as_remembered,
    remembered_reader, update_contact,
};
use app::tenants::{generate_api_key, provision_tenant};
use domain::contact::{ContactInput, ContactPatch, ContactQuery};
use domain::ids::{ContactId, TenantId};
use domain::list::Limit;
use domain::principal::Role;

struct Tenant {
    id: TenantId,
    credential: Credential,
}

async fn tenant(store: &MemoryStore, name: &str) -> Tenant {
    let made = provision_tenant(store, name, None)
        .await
        .expect("provisioned");
    Tenant {
        id: made.tenant.tenant_id,
        credential: Credential::ApiKey(made.api_key),
    }
}

fn ada() -> ContactInput {
    ContactInput {
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        email: Some("Ada@Example.com".into()),
        ..ContactInput::default()
    }
}

#[tokio::test]
async fn a_created_contact_can_be_read_back_normalised() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let (principal, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let created = create_contact(uow, &principal, ada())
        .await
        .expect("created");
    assert_eq!(created.version, 1);
    assert_eq!(
        created.fields.email.as_ref().map(|e| e.as_str()),
        Some("ada@example.com")
    );

    let (principal, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let fetched = get_contact(uow, &principal, created.id)
        .await
        .expect("found");
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn duplicate_emails_conflict_within_a_tenant_but_not_across_tenants() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let globex = tenant(&store, "Globex").await;
    for t in [&acme, &globex] {
        let (p, uow) = authenticate(&store, &AuthSettings::default(), &t.credential)
            .await
            .expect("auth");
        create_contact(uow, &p, ada())
            .await
            .expect("first per tenant is fine");
    }
    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let mut again = ada();
    again.email = Some("ADA@example.COM".into());
    let error = create_contact(uow, &p, again).await.expect_err("duplicate");
    assert!(matches!(error, ContactError::DuplicateEmail));
    assert_eq!(store.contact_count(acme.id).expect("count"), 1);
}

#[tokio::test]
async fn another_tenants_contact_is_not_found() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let globex = tenant(&store, "Globex").await;
    let (p, uow) = authenticate(&store, &AuthSettings::default(), &globex.credential)
        .await
        .expect("auth");
    let theirs = create_contact(uow, &p, ada()).await.expect("created");

    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    assert!(matches!(
        get_contact(uow, &p, theirs.id).await,
        Err(ContactError::NotFound)
    ));
    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let patch = ContactChange::Patch(ContactPatch {
        title: Some(Some("pwned".into())),
        ..ContactPatch::default()
    });
    assert!(matches!(
        update_contact(uow, &p, theirs.id, None, patch).await,
        Err(ContactError::NotFound)
    ));
    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    assert!(matches!(
        delete_contact(uow, &p, theirs.id, None).await,
        Err(ContactError::NotFound)
    ));
    assert_eq!(store.contact_count(globex.id).expect("count"), 1);
}

#[tokio::test]
async fn stale_if_match_is_refused_and_changes_nothing() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let created = create_contact(uow, &p, ada()).await.expect("created");

    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let patch = ContactPatch {
        title: Some(Some("Countess".into())),
        ..ContactPatch::default()
    };
    let updated = update_contact(
        uow,
        &p,
        created.id,
        Some(&IfMatch::Tags(vec![created.etag()])),
        ContactChange::Patch(patch.clone()),
    )
    .await
    .expect("matching etag");
    assert_eq!(updated.version, 2);

    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let stale = update_contact(
        uow,
        &p,
        created.id,
        Some(&IfMatch::Tags(vec![created.etag()])),
        ContactChange::Replace(ada()),
    )
    .await;
    assert!(
        matches!(stale, Err(ContactError::PreconditionFailed { current_etag }) if current_etag == "\"2\"")
    );
    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let now = get_contact(uow, &p, created.id).await.expect("still there");
    assert_eq!(now.fields.title.as_deref(), Some("Countess"));
}

#[tokio::test]
async fn a_patch_that_changes_nothing_keeps_the_version() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let created = create_contact(uow, &p, ada()).await.expect("created");
    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let same = update_contact(
        uow,
        &p,
        created.id,
        None,
        ContactChange::Patch(ContactPatch {
            first_name: Some(Some(" Ada ".into())),
            ..ContactPatch::default()
        }),
    )
    .await
    .expect("no-op");
    assert_eq!(same.version, 1);
}

#[tokio::test]
async fn viewers_and_read_only_keys_cannot_write() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    for (role, scopes) in [
        (Role::Viewer, &["*"][..]),
        (Role::Owner, &["contacts:read"][..]),
    ] {
        let key = generate_api_key().expect("key");
        store
            .add_api_key(acme.id, key.hash(), role, scopes)
            .expect("added");
        let (p, uow) = authenticate(&store, &AuthSettings::default(), &Credential::ApiKey(key))
            .await
            .expect("auth");
        let error = create_contact(uow, &p, ada()).await.expect_err("forbidden");
        assert!(matches!(error, ContactError::Forbidden(_)));
    }
    assert_eq!(store.contact_count(acme.id).expect("count"), 0);
}

#[tokio::test]
async fn unknown_and_revoked_keys_do_not_authenticate() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let stranger = Credential::ApiKey(generate_api_key().expect("key"));
    assert!(matches!(
        authenticate(&store, &AuthSettings::default(), &stranger).await,
        Err(AuthError::Unauthenticated)
    ));

    let key = generate_api_key().expect("key");
    store
        .add_api_key(acme.id, key.hash(), Role::Owner, &["*"])
        .expect("added");
    store.revoke_api_key(&key.hash()).expect("revoked");
    let revoked = Credential::ApiKey(key);
    assert!(matches!(
        authenticate(&store, &AuthSettings::default(), &revoked).await,
        Err(AuthError::Unauthenticated)
    ));
}

#[tokio::test]
async fn invalid_input_reports_fields_and_writes_nothing() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let error = create_contact(
        uow,
        &p,
        ContactInput {
            email: Some("not-an-email".into()),
            ..ContactInput::default()
        },
    )
    .await
    .expect_err("invalid");
    let ContactError::Invalid(fields) = error else {
        panic!("expected Invalid, got {error:?}")
    };
    assert!(fields.fields().contains_key("email"));
    assert_eq!(store.contact_count(acme.id).expect("count"), 0);
}

#[tokio::test]
async fn a_dropped_unit_of_work_changes_nothing() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let (_, mut uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let draft = domain::contact::ContactDraft::new(ada()).expect("valid");
    ports::ContactRepository::insert_contact(&mut uow, ContactId::new(), &draft)
        .await
        .expect("staged");
    drop(uow);
    assert_eq!(store.contact_count(acme.id).expect("count"), 0);
}

#[tokio::test]
async fn pages_walk_every_contact_exactly_once() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let mut created = Vec::new();
    for i in 0..23 {
        let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
            .await
            .expect("auth");
        let input = ContactInput {
            last_name: Some(format!("Person {}", i % 5)),
            email: Some(format!("p{i}@example.com")),
            ..ContactInput::default()
        };
        created.push(create_contact(uow, &p, input).await.expect("created").id);
    }
    for sort in ["createdAt", "-createdAt", "lastName", "-email", "updatedAt"] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
                .await
                .expect("auth");
            let query = ContactQuery {
                limit: Limit::new(Some(4)).expect("limit"),
                sort: domain::list::Sort::parse(sort).expect("sort"),
                cursor: cursor.take(),
                ..ContactQuery::default()
            };
            let page = list_contacts(uow, &p, query).await.expect("page");
            seen.extend(page.items.iter().map(|c| c.id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut expected = created.clone();
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected, "sort {sort}");
    }
}

#[tokio::test]
async fn a_contact_read_in_one_statement_answers_as_a_unit_of_work_would() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let globex = tenant(&store, "Globex").await;
    let (p, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let created = create_contact(uow, &p, ada()).await.expect("created");
    let key = |t: &Tenant| match &t.credential {
        Credential::ApiKey(secret) => secret.hash(),
        Credential::Session(_) => unreachable!("tenants here hold API keys"),
    };

    let (caller, outcome) = get_contact_with_api_key(&store, &key(&acme), created.id)
        .await
        .expect("stored")
        .expect("a live key");
    assert_eq!(caller.tenant_id, acme.id);
    assert_eq!(outcome.expect("found"), created);

    // Another tenant's key with the same id: not found, and its caller is known (so the
    // API still counts it against that tenant's limits).
    let (caller, outcome) = get_contact_with_api_key(&store, &key(&globex), created.id)
        .await
        .expect("stored")
        .expect("a live key");
    assert_eq!(caller.tenant_id, globex.id);
    assert!(matches!(outcome, Err(ContactError::NotFound)));

    // A key of the right tenant without `contacts:read`: refused, the contact unseen.
    let narrow = generate_api_key().expect("key");
    store
        .add_api_key(acme.id, narrow.hash(), Role::Owner, &["companies:read"])
        .expect("added");
    let (_, outcome) = get_contact_with_api_key(&store, &narrow.hash(), created.id)
        .await
        .expect("stored")
        .expect("a live key");
    assert!(matches!(outcome, Err(ContactError::Forbidden(_))));

    // Unknown and revoked keys: nobody.
    let stranger = generate_api_key().expect("key");
    assert!(
        get_contact_with_api_key(&store, &stranger.hash(), created.id)
            .await
            .expect("stored")
            .is_none()
    );
    store.revoke_api_key(&narrow.hash()).expect("revoked");
    assert!(
        get_contact_with_api_key(&store, &narrow.hash(), created.id)
            .await
            .expect("stored")
            .is_none()
    );
}

#[tokio::test]
async fn a_create_for_a_remembered_key_writes_only_for_a_caller_still_allowed() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let writer = generate_api_key().expect("key");
    store
        .add_api_key(acme.id, writer.hash(), Role::Member, &["contacts:write"])
        .expect("added");

    let create = RememberedCreate::prepare(&store, &writer.hash(), &ada()).expect("may write");
    assert_eq!(create.caller().tenant_id, acme.id);
    let created = create
        .run(&store, &writer.hash())
        .await
        .expect("stored")
        .expect("written");
    let (principal, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    assert_eq!(
        get_contact(uow, &principal, created.id)
            .await
            .expect("found"),
        created
    );

    // Not taken at all: a key without the right, an unknown key, an invalid input (the
    // unit of work answers those, for the key as it is now).
    let reader = generate_api_key().expect("key");
    store
        .add_api_key(acme.id, reader.hash(), Role::Owner, &["contacts:read"])
        .expect("added");
    assert!(RememberedCreate::prepare(&store, &reader.hash(), &ada()).is_none());
    let stranger = generate_api_key().expect("key");
    assert!(RememberedCreate::prepare(&store, &stranger.hash(), &ada()).is_none());
    let invalid = ContactInput {
        email: Some("not an address".into()),
        ..ContactInput::default()
    };
    assert!(RememberedCreate::prepare(&store, &writer.hash(), &invalid).is_none());

    // Revoked between the two steps: nothing written.
    let create = RememberedCreate::prepare(&store, &writer.hash(), &ada()).expect("may write");
    store.revoke_api_key(&writer.hash()).expect("revoked");
    assert!(
        create
            .run(&store, &writer.hash())
            .await
            .expect("stored")
            .is_none()
    );
    let (principal, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    let page = list_contacts(uow, &principal, ContactQuery::default())
        .await
        .expect("listed");
    assert_eq!(page.items.len(), 1, "only the first create wrote");
}

#[tokio::test]
async fn a_list_for_a_remembered_key_reads_only_for_a_caller_still_allowed() {
    let store = MemoryStore::new();
    let acme = tenant(&store, "Acme").await;
    let reader = generate_api_key().expect("key");
    store
        .add_api_key(acme.id, reader.hash(), Role::Viewer, &["contacts:read"])
        .expect("added");
    let (principal, uow) = authenticate(&store, &AuthSettings::default(), &acme.credential)
        .await
        .expect("auth");
    create_contact(uow, &principal, ada())
        .await
        .expect("created");

    let caller = remembered_reader(&store, &reader.hash()).expect("may read");
    assert_eq!(caller.tenant_id, acme.id);
    let page =
        list_contacts_as_remembered(&store, &reader.hash(), &caller, &ContactQuery::default())
            .await
            .expect("stored")
            .expect("listed");
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        page.items[0].fields.email.as_ref().map(|e| e.as_str()),
        Some("ada@example.com")
    );

    // Not taken at all: a key without the right, an unknown key.
    let hooks = generate_api_key().expect("key");
    store
        .add_api_key(acme.id, hooks.hash(), Role::Owner, &["webhooks:manage"])
        .expect("added");
    assert!(remembered_reader(&store, &hooks.hash()).is_none());
    let stranger = generate_api_key().expect("key");
    assert!(remembered_reader(&store, &stranger.hash()).is_none());

    // Revoked between the two steps: no page.
    store.revoke_api_key(&reader.hash()).expect("revoked");
    assert!(
        list_contacts_as_remembered(&store, &reader.hash(), &caller, &ContactQuery::default())
            .await
            .expect("stored")
            .is_none()
    );
}
