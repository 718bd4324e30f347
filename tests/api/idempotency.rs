//! `Idempotency-Key` on POST: replay, reuse with another body, validation failures,
//! per-tenant keys, requests still in flight.

use serde_json::json;

use crate::helpers::{Reply, TestApp, scalar_i64, spawn_app};

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
    assert_eq!(again.body, first.body, "the stored response, byte for byte");
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
    let raw = serde_json::to_vec(&body).expect("json");
    let hash = app::idempotency::request_hash("POST", "/v1/contacts", &raw);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let db = app.db.owner().await;
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, state) \
             VALUES ('{}', 'busy', '\\x{hex}', 'in_flight')",
            acme.id
        ),
    )
    .await
    .expect("seed an in-flight request");
    let reply = app
        .call_raw(
            "POST",
            "/v1/contacts",
            &acme.key,
            "application/json",
            raw.clone(),
        )
        .await;
    assert_eq!(reply.status, 201, "without the key the request runs");
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
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM contacts").await, 1);
}
