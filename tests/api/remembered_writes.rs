//! `POST /v1/contacts` with a key this process checked a moment ago is one statement in
//! all (SPEC §9): it checks the key in its remembered tenant and inserts in the same
//! statement, outside any transaction block (`adapters-postgres/src/one_statement.rs`).
//! These tests take the attacker's side of that shortcut: a remembered key must not write
//! past its tenant, its limits or a right it lost a moment ago, and a refused write must
//! leave nothing behind, not even an event.

use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

use crate::helpers::{TestApp, count, idle_after, spawn_app, spawn_app_with};
use crate::rate_limit::{limits, policy};
use domain::rate_limit::PolicyName;

/// One request with `key`, so that this process resolves and remembers it.
async fn remember(app: &TestApp, key: &str) {
    let reply = app.get("/v1/contacts?limit=1", key).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// The application's sessions idle after the one-statement create.
async fn one_statement_creates_seen(owner: &DatabaseConnection) -> i64 {
    idle_after(owner, "/* contact create, known key */").await
}

/// Rows of `table` (every tenant's: the superuser's view) matching `condition`.
async fn rows(owner: &DatabaseConnection, table: &str, condition: &str) -> i64 {
    count(
        owner,
        &format!("SELECT count(*) FROM {table} WHERE {condition}"),
    )
    .await
}

#[actix_rt::test]
async fn a_post_with_a_remembered_key_is_one_statement_that_writes_the_contact_and_its_event() {
    let app = spawn_app().await;
    let owner = app.db.owner().await;
    let acme = app.tenant("Acme").await;
    remember(&app, &acme.key).await;
    assert_eq!(one_statement_creates_seen(&owner).await, 0);

    let created = app
        .post(
            "/v1/contacts",
            &acme.key,
            &json!({"firstName": "Ada", "email": "ada@example.com", "tags": ["vip"],
                    "customFields": {"tier": "gold"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.id();
    assert_eq!(created.body["data"]["tags"], json!(["vip"]));
    assert_eq!(
        created.body["data"]["customFields"],
        json!({"tier": "gold"})
    );
    assert!(
        created.header("etag").is_some(),
        "an ETag as on every create"
    );
    assert_eq!(
        one_statement_creates_seen(&owner).await,
        1,
        "the create was one statement, on its own"
    );
    assert_eq!(
        rows(
            &owner,
            "contacts",
            &format!("id = '{id}' AND tenant_id = '{}'", acme.id)
        )
        .await,
        1,
        "written in the key's tenant"
    );
    assert_eq!(
        rows(
            &owner,
            "events",
            &format!(
                "type = 'contact.created' AND object->>'id' = '{id}' AND tenant_id = '{}'",
                acme.id
            )
        )
        .await,
        1,
        "with its event, by the same statement"
    );
    let read = app.get(&format!("/v1/contacts/{id}"), &acme.key).await;
    assert_eq!(read.status, 200);
    assert_eq!(
        read.body["data"], created.body["data"],
        "read back as answered"
    );
}

#[actix_rt::test]
async fn a_remembered_key_cannot_reach_another_tenants_owner_or_company() {
    let app = spawn_app().await;
    let owner = app.db.owner().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let members = app.get("/v1/members", &globex.key).await;
    assert_eq!(members.status, 200, "{}", members.body);
    let globex_user = members.body["data"][0]["userId"]
        .as_str()
        .expect("a member")
        .to_owned();
    let company = app
        .post(
            "/v1/companies",
            &globex.key,
            &json!({"name": "Globex Corp"}),
        )
        .await;
    assert_eq!(company.status, 201, "{}", company.body);
    let globex_company = company.id();
    remember(&app, &acme.key).await;
    let before = app.contact_rows().await;

    for (body, field) in [
        (
            json!({"firstName": "Eve", "ownerId": globex_user}),
            "ownerId",
        ),
        (
            json!({"firstName": "Eve", "companyId": globex_company}),
            "companyId",
        ),
    ] {
        let refused = app.post("/v1/contacts", &acme.key, &body).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(refused.code(), "VALIDATION_FAILED");
        assert!(
            refused.body["details"]["fields"][field].is_array(),
            "{field} is named: {}",
            refused.body
        );
    }
    assert_eq!(app.contact_rows().await, before, "nothing written");
    assert_eq!(
        rows(&owner, "events", "type = 'contact.created'").await,
        0,
        "no event either"
    );
}

#[actix_rt::test]
async fn a_taken_email_on_the_one_statement_path_is_409_and_leaves_nothing() {
    let app = spawn_app().await;
    let owner = app.db.owner().await;
    let acme = app.tenant("Acme").await;
    remember(&app, &acme.key).await;
    let body = json!({"firstName": "Ada", "email": "ada@example.com"});
    let first = app.post("/v1/contacts", &acme.key, &body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let second = app.post("/v1/contacts", &acme.key, &body).await;
    assert_eq!(second.status, 409, "{}", second.body);
    assert_eq!(app.contact_rows().await, 1);
    assert_eq!(
        rows(&owner, "events", "type = 'contact.created'").await,
        1,
        "the refused create wrote no event"
    );

    // Another tenant may use the address: the check is within the key's tenant.
    let globex = app.tenant("Globex").await;
    remember(&app, &globex.key).await;
    let theirs = app.post("/v1/contacts", &globex.key, &body).await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
}

#[actix_rt::test]
async fn the_tenant_limit_refuses_a_remembered_key_before_it_writes() {
    let app = spawn_app_with(limits(&[policy(PolicyName::Tenant, 3, 60)])).await;
    let acme = app.tenant("Acme").await;
    remember(&app, &acme.key).await; // the tenant's 1st request
    let mut statuses = Vec::new();
    for n in 0..3 {
        let reply = app
            .post(
                "/v1/contacts",
                &acme.key,
                &json!({"firstName": format!("P{n}")}),
            )
            .await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert_eq!(reply.body["details"]["policy"], "tenant", "{}", reply.body);
        }
    }
    assert_eq!(statuses, vec![201, 201, 429]);
    assert_eq!(
        app.contact_rows().await,
        2,
        "the refused request wrote nothing"
    );
}

#[actix_rt::test]
async fn a_remembered_key_with_an_idempotency_key_or_a_bad_body_takes_the_unit_of_work() {
    let app = spawn_app().await;
    let owner = app.db.owner().await;
    let acme = app.tenant("Acme").await;
    remember(&app, &acme.key).await;
    let body = json!({"firstName": "Ada"});
    let replies: Vec<Value> = {
        let mut replies = Vec::new();
        for _ in 0..2 {
            let reply = app
                .call(
                    "POST",
                    "/v1/contacts",
                    Some(&acme.key),
                    Some(&body),
                    &[("Idempotency-Key", "remembered-1")],
                )
                .await;
            assert_eq!(reply.status, 201, "{}", reply.body);
            replies.push(reply.body["data"].clone());
        }
        replies
    };
    assert_eq!(replies[0], replies[1], "replayed, not created twice");
    assert_eq!(app.contact_rows().await, 1);
    assert_eq!(
        one_statement_creates_seen(&owner).await,
        0,
        "an idempotent create stores its answer in its unit of work"
    );

    let invalid = app
        .post(
            "/v1/contacts",
            &acme.key,
            &json!({"email": "not an address"}),
        )
        .await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    let unknown = app
        .post(
            "/v1/contacts",
            "crm_sk_not_a_key_of_anyone_0000000000000000",
            &json!({"email": "not an address"}),
        )
        .await;
    assert_eq!(
        unknown.status, 401,
        "an invalid body tells nothing to a caller without a key"
    );
    assert_eq!(app.contact_rows().await, 1);
}
