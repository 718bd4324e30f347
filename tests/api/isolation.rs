//! Tenant isolation, proved twice: in SQL as the application role (row-level security
//! alone), and over HTTP (tenant A's key against tenant B's ids).

use serde_json::json;

use crate::helpers::{TestApp, TestTenant, as_tenant, count, exec, scalar_i64, spawn_app};

async fn two_tenants_with_a_contact_each(
    app: &TestApp,
) -> (TestTenant, TestTenant, String, String) {
    let a = app.tenant("Tenant A").await;
    let b = app.tenant("Tenant B").await;
    let a_contact = app
        .post(
            "/v1/contacts",
            &a.key,
            &json!({"firstName": "Alice", "email": "alice@a.example"}),
        )
        .await;
    let b_contact = app
        .post(
            "/v1/contacts",
            &b.key,
            &json!({"firstName": "Bob", "email": "bob@b.example"}),
        )
        .await;
    (
        a,
        b,
        a_contact.body["data"]["id"]
            .as_str()
            .expect("id")
            .to_owned(),
        b_contact.body["data"]["id"]
            .as_str()
            .expect("id")
            .to_owned(),
    )
}

#[actix_rt::test]
async fn without_a_tenant_the_application_role_sees_nothing_and_writes_nothing() {
    let app = spawn_app().await;
    let (a, _, _, _) = two_tenants_with_a_contact_each(&app).await;
    let db = app.db.app_role().await;
    for table in ["tenants", "memberships", "api_keys", "contacts", "users"] {
        assert_eq!(
            count(&db, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table} without tenant"
        );
    }
    let insert = exec(
        &db,
        &format!("INSERT INTO contacts (tenant_id, id, first_name) VALUES ('{}', gen_random_uuid(), 'x')", a.id),
    )
    .await;
    assert!(insert.is_err(), "insert without tenant is refused");
    // A pooled connection whose setting expired reads '' rather than NULL: still nothing.
    let txn = as_tenant(&db, &a.id).await;
    txn.commit().await.expect("commit");
    assert_eq!(
        count(&db, "SELECT count(*) FROM contacts").await,
        0,
        "after a committed tenant transaction"
    );
    let owner = app.db.owner().await;
    assert_eq!(scalar_i64(&owner, "SELECT count(*) FROM contacts").await, 2);
}

#[actix_rt::test]
async fn tenant_a_cannot_read_change_delete_or_forge_tenant_b_rows_in_sql() {
    let app = spawn_app().await;
    let (a, b, _, b_contact) = two_tenants_with_a_contact_each(&app).await;
    let db = app.db.app_role().await;
    let txn = as_tenant(&db, &a.id).await;
    assert_eq!(
        count(&txn, "SELECT count(*) FROM contacts").await,
        1,
        "only A's own contact"
    );
    assert_eq!(
        count(
            &txn,
            &format!("SELECT count(*) FROM contacts WHERE id = '{b_contact}'")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &txn,
            &format!("SELECT count(*) FROM contacts WHERE tenant_id = '{}'", b.id)
        )
        .await,
        0
    );
    assert_eq!(count(&txn, "SELECT count(*) FROM tenants").await, 1);
    assert_eq!(
        count(&txn, "SELECT count(*) FROM api_keys").await,
        1,
        "only A's key"
    );
    assert_eq!(
        count(&txn, "SELECT count(*) FROM users").await,
        1,
        "only A's members"
    );
    let updated = exec(
        &txn,
        &format!("UPDATE contacts SET first_name = 'pwned' WHERE id = '{b_contact}'"),
    )
    .await;
    assert_eq!(updated.expect("update runs"), 0);
    let deleted = exec(
        &txn,
        &format!("DELETE FROM contacts WHERE tenant_id = '{}'", b.id),
    )
    .await;
    assert_eq!(deleted.expect("delete runs"), 0);
    txn.commit().await.expect("commit");

    let forge = as_tenant(&db, &a.id).await;
    let forged = exec(
        &forge,
        &format!("INSERT INTO contacts (tenant_id, id, first_name) VALUES ('{}', gen_random_uuid(), 'forged')", b.id),
    )
    .await;
    assert!(forged.is_err(), "a row with B's tenant_id is refused");
    drop(forge);

    let moved = as_tenant(&db, &a.id).await;
    let moving = exec(
        &moved,
        &format!("UPDATE contacts SET tenant_id = '{}'", b.id),
    )
    .await;
    assert!(moving.is_err(), "A cannot move its rows into B");
    drop(moved);

    let owner = app.db.owner().await;
    assert_eq!(
        scalar_i64(
            &owner,
            &format!(
                "SELECT count(*) FROM contacts WHERE id = '{b_contact}' AND first_name = 'Bob'"
            )
        )
        .await,
        1,
        "B's contact untouched"
    );
    assert_eq!(scalar_i64(&owner, "SELECT count(*) FROM contacts").await, 2);
}

#[actix_rt::test]
async fn the_application_role_never_reads_key_hashes_and_only_resolves_keys_through_the_function() {
    let app = spawn_app().await;
    let _ = two_tenants_with_a_contact_each(&app).await;
    let db = app.db.app_role().await;
    let hashes = exec(&db, "SELECT key_hash FROM api_keys").await;
    assert!(hashes.is_err(), "no privilege on key_hash");
    let owner = app.db.owner().await;
    let public_can_execute = scalar_i64(
        &owner,
        "SELECT count(*) FROM pg_proc p WHERE p.proname = 'crm_authenticate_api_key' \
           AND has_function_privilege('public', p.oid, 'EXECUTE')",
    )
    .await;
    assert_eq!(public_can_execute, 0, "EXECUTE is revoked from PUBLIC");
    let pinned = scalar_i64(
        &owner,
        "SELECT count(*) FROM pg_proc WHERE proname = 'crm_authenticate_api_key' AND prosecdef \
           AND proconfig @> ARRAY['search_path=pg_catalog, pg_temp']",
    )
    .await;
    assert_eq!(pinned, 1, "SECURITY DEFINER with a pinned search_path");
    let unknown = count(
        &db,
        "SELECT count(*) FROM crm_authenticate_api_key(sha256('nope'::bytea))",
    )
    .await;
    assert_eq!(unknown, 0, "an unknown key resolves to nothing");
}

#[actix_rt::test]
async fn tenant_a_key_on_tenant_b_contacts_is_404_and_changes_nothing() {
    let app = spawn_app().await;
    let (a, b, _, b_contact) = two_tenants_with_a_contact_each(&app).await;
    let path = format!("/v1/contacts/{b_contact}");
    let calls = [
        ("GET", None),
        ("PUT", Some(json!({"firstName": "pwned"}))),
        ("PATCH", Some(json!({"firstName": "pwned"}))),
        ("DELETE", None),
    ];
    for (method, body) in calls {
        let reply = app
            .call(method, &path, Some(&a.key), body.as_ref(), &[])
            .await;
        assert_eq!(reply.status, 404, "{method}: {}", reply.body);
        assert_eq!(reply.code(), "NOT_FOUND");
        assert!(
            !reply.body.to_string().contains("Bob"),
            "no trace of B's data"
        );
    }
    let list = app.get("/v1/contacts", &a.key).await;
    let names: Vec<&str> = list.body["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["firstName"].as_str())
        .collect();
    assert_eq!(names, ["Alice"]);
    let by_email = app.get("/v1/contacts?email=bob@b.example", &a.key).await;
    assert_eq!(by_email.body["data"].as_array().map(Vec::len), Some(0));

    let bob = app.get(&path, &b.key).await;
    assert_eq!(bob.status, 200);
    assert_eq!(bob.body["data"]["firstName"], "Bob");
    assert_eq!(bob.body["data"]["version"], 1, "B's contact unchanged");
}

#[actix_rt::test]
async fn missing_malformed_unknown_and_revoked_keys_are_401() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let unknown_key = format!("crm_sk_{}", "A".repeat(40));
    let cases: [(&str, Option<String>); 5] = [
        ("missing", None),
        ("malformed", Some("Bearer not-a-key".into())),
        ("wrong scheme", Some(format!("Basic {}", acme.key))),
        ("unknown", Some(format!("Bearer {unknown_key}"))),
        ("empty", Some("Bearer ".into())),
    ];
    for (what, header) in cases {
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("Authorization", h)])
            .unwrap_or_default();
        let reply = app.call("GET", "/v1/contacts", None, None, &headers).await;
        assert_eq!(reply.status, 401, "{what}");
        assert_eq!(reply.code(), "UNAUTHENTICATED");
        assert!(reply.header("www-authenticate").is_some());
    }
    assert_eq!(app.get("/v1/contacts", &acme.key).await.status, 200);
    let owner = app.db.owner().await;
    exec(&owner, "UPDATE api_keys SET revoked_at = now()")
        .await
        .expect("revoke");
    let revoked = app.get("/v1/contacts", &acme.key).await;
    assert_eq!(revoked.status, 401, "a revoked key stops working at once");
    let created = app
        .post("/v1/contacts", &acme.key, &json!({"firstName": "x"}))
        .await;
    assert_eq!(created.status, 401);
    assert_eq!(app.contact_rows().await, 0);
}

#[actix_rt::test]
async fn the_search_functions_only_ever_see_the_callers_tenant() {
    let app = spawn_app().await;
    let (a, _, _, _) = two_tenants_with_a_contact_each(&app).await;
    let db = app.db.app_role().await;
    for function in [
        "crm_search_contacts('%')",
        "crm_tagged_contacts('vip')",
        "crm_search_companies('%')",
    ] {
        assert_eq!(
            count(&db, &format!("SELECT count(*) FROM {function}")).await,
            0,
            "{function} without a tenant"
        );
    }
    let txn = as_tenant(&db, &a.id).await;
    assert_eq!(
        count(&txn, "SELECT count(*) FROM crm_search_contacts('%')").await,
        1,
        "only A's contact"
    );
}
