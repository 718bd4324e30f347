//! `Idempotency-Key` on POST: replay, reuse with another body, validation failures,
//! per-tenant and per-credential keys, requests still in flight; and, as an attacker
//! would try it: replays by another or a weakened credential, a record that could be
//! stored apart from its change, bodies read through the application role, old records.

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;

use crate::helpers::{Reply, TestApp, count, scalar_i64, spawn_app};
use crate::identity::{join, set_role, sign_up};

async fn post_with_key(
    app: &TestApp,
    key: &str,
    idempotency_key: &str,
    body: &serde_json::Value,
) -> Reply {
    app.call(
        "POST",
        "/v1/contacts",
        Some(key),
        Some(body),
        &[("Idempotency-Key", idempotency_key)],
    )
    .await
}

#[actix_rt::test]
async fn a_retried_post_is_replayed_and_creates_one_row() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let body = json!({"firstName": "Ada", "email": "ada@example.com"});
    let first = post_with_key(&app, &acme.key, "order-42", &body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = post_with_key(&app, &acme.key, "\"order-42\"", &body).await;
    assert_eq!(again.status, 201, "quoted and bare keys are the same key");
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(
        again.body["data"], first.body["data"],
        "the stored response"
    );
    assert_eq!(
        again.body["metadata"]["requestId"].as_str(),
        again.header("x-request-id").as_deref(),
        "header and body name this request"
    );
    assert_eq!(
        again.header("original-request-id").as_deref(),
        first.body["metadata"]["requestId"].as_str()
    );
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(app.contact_rows().await, 1);

    let other = post_with_key(&app, &acme.key, "order-42", &json!({"firstName": "Grace"})).await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(other.code(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.contact_rows().await, 1);
}

#[actix_rt::test]
async fn a_request_that_failed_validation_stores_nothing() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let bad = post_with_key(
        &app,
        &acme.key,
        "retry-me",
        &json!({"email": "not-an-email"}),
    )
    .await;
    assert_eq!(bad.status, 400);
    let good = post_with_key(
        &app,
        &acme.key,
        "retry-me",
        &json!({"email": "fixed@example.com"}),
    )
    .await;
    assert_eq!(
        good.status, 201,
        "the key was not used up by the failed request: {}",
        good.body
    );
    assert_eq!(good.header("idempotent-replayed"), None);
}

#[actix_rt::test]
async fn keys_belong_to_one_tenant_and_must_be_sane() {
    let app = spawn_app().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let body = json!({"firstName": "Ada"});
    assert_eq!(
        post_with_key(&app, &a.key, "shared", &body).await.status,
        201
    );
    let theirs = post_with_key(&app, &b.key, "shared", &body).await;
    assert_eq!(theirs.status, 201);
    assert_eq!(
        theirs.header("idempotent-replayed"),
        None,
        "another tenant's key is another key"
    );
    assert_eq!(app.contact_rows().await, 2);

    let long = "k".repeat(256);
    let refused = post_with_key(&app, &a.key, &long, &body).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body["details"]["fields"]["Idempotency-Key"].is_array());
    assert_eq!(app.contact_rows().await, 2);
}

#[actix_rt::test]
async fn a_retry_while_the_first_request_runs_is_409() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let body = json!({"firstName": "Ada"});
    let db = app.db.owner().await;
    // Another transaction holds the key, as the first request's does while it runs.
    let first = db.begin().await.expect("begin");
    first
        .execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock(hashtextextended('{tenant}' || '/' || k.id::text || '/busy', 0)) \
               FROM api_keys k WHERE k.tenant_id = '{tenant}'",
            tenant = acme.id
        ))
        .await
        .expect("hold the key");
    let busy = app
        .call(
            "POST",
            "/v1/contacts",
            Some(&acme.key),
            Some(&body),
            &[("Idempotency-Key", "busy")],
        )
        .await;
    assert_eq!(busy.status, 409, "{}", busy.body);
    assert_eq!(busy.code(), "CONFLICT");
    first.rollback().await.expect("rollback");
    let after = app
        .call(
            "POST",
            "/v1/contacts",
            Some(&acme.key),
            Some(&body),
            &[("Idempotency-Key", "busy")],
        )
        .await;
    assert_eq!(after.status, 201, "free again once that transaction ended");
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM contacts").await, 1);
}

#[actix_rt::test]
async fn the_stored_response_commits_in_the_same_transaction_as_the_change() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let created = post_with_key(&app, &acme.key, "same-txn", &json!({"firstName": "Ada"})).await;
    assert_eq!(created.status, 201);
    let db = app.db.owner().await;
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM contacts c, idempotency_records r \
                  WHERE c.id = '{}' AND r.key = 'same-txn' AND c.xmin::text = r.xmin::text",
                created.id()
            )
        )
        .await,
        1,
        "one transaction wrote both"
    );
}

#[actix_rt::test]
async fn another_credential_replaying_a_key_runs_its_own_request_and_gets_no_secret() {
    let app = spawn_app().await;
    let (owner, _, _) = sign_up(&app, "owner@example.com").await;
    let (viewer, _) = join(&app, &owner, "viewer@example.com", "viewer").await;
    let body = json!({"name": "deploy", "scopes": ["*"]});
    let made = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(&owner),
            Some(&body),
            &[("Idempotency-Key", "k1")],
        )
        .await;
    assert_eq!(made.status, 201);
    let secret = made.body["data"]["key"].as_str().expect("key").to_owned();
    let replayed = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(&viewer),
            Some(&body),
            &[("Idempotency-Key", "k1")],
        )
        .await;
    assert_eq!(replayed.status, 403, "{}", replayed.body);
    assert!(!replayed.body.to_string().contains(&secret));
    assert_eq!(replayed.header("idempotent-replayed"), None);
}

#[actix_rt::test]
async fn a_demoted_credential_gets_no_replay_of_what_it_could_do_before() {
    let app = spawn_app().await;
    let (owner, _, _) = sign_up(&app, "owner@example.com").await;
    let (admin, admin_id) = join(&app, &owner, "admin@example.com", "admin").await;
    let body = json!({"name": "deploy", "scopes": ["*"]});
    let made = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(&admin),
            Some(&body),
            &[("Idempotency-Key", "k2")],
        )
        .await;
    assert_eq!(made.status, 201);
    let secret = made.body["data"]["key"].as_str().expect("key").to_owned();
    let demoted = set_role(&app, &owner, &admin_id, "member").await;
    assert_eq!(demoted.status, 200);
    let replayed = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(&admin),
            Some(&body),
            &[("Idempotency-Key", "k2")],
        )
        .await;
    assert_eq!(replayed.status, 403, "{}", replayed.body);
    assert!(
        !replayed.body.to_string().contains(&secret),
        "no secret replayed"
    );
}

#[actix_rt::test]
async fn the_application_role_cannot_read_stored_responses_and_old_ones_are_swept() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let made = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(&acme.key),
            Some(&json!({"name": "ci", "scopes": ["*"]})),
            &[("Idempotency-Key", "secret-holder")],
        )
        .await;
    assert_eq!(made.status, 201);
    let app_role = app.db.app_role().await;
    let txn = app_role.begin().await.expect("begin");
    txn.execute_unprepared(&format!(
        "SELECT set_config('app.tenant_id', '{}', true)",
        acme.id
    ))
    .await
    .expect("tenant set");
    let read = txn
        .execute_unprepared("SELECT response_body FROM idempotency_records")
        .await;
    assert!(
        read.is_err(),
        "no privilege on the table, even in its own tenant"
    );
    txn.rollback().await.expect("rollback");

    // A day old: no longer replayed, and swept.
    let db = app.db.owner().await;
    db.execute_unprepared(
        "UPDATE idempotency_records SET created_at = now() - interval '25 hours'",
    )
    .await
    .expect("age it");
    let swept = count(&app_role, "SELECT crm_sweep_idempotency_records()").await;
    assert_eq!(swept, 1);
    assert_eq!(
        count(&db, "SELECT count(*) FROM idempotency_records").await,
        0
    );
}

#[actix_rt::test]
async fn a_record_older_than_a_day_is_not_replayed() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let body = json!({"firstName": "Ada"});
    assert_eq!(
        post_with_key(&app, &acme.key, "old", &body).await.status,
        201
    );
    let db = app.db.owner().await;
    db.execute_unprepared(
        "UPDATE idempotency_records SET created_at = now() - interval '25 hours'",
    )
    .await
    .expect("age it");
    let again = post_with_key(&app, &acme.key, "old", &body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), None);
    assert_eq!(app.contact_rows().await, 2);
}
