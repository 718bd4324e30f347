//! The copies of a member's role and a tenant's expiry on each API key's row (migration
//! 0025), which the check of a remembered key reads instead of joining `memberships` and
//! `tenants` (issue 14). An attacker would want a copy that says more than the truth: a
//! key inserted with a role of its own choosing, a copy written by hand, a key made at
//! the very moment its member is demoted, a sandbox whose end the copy missed. Each is
//! tried here, against the real database as the application role.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::json;

use crate::helpers::{TestApp, as_tenant, count, exec, spawn_app};
use crate::identity::{join, set_role, sign_up};

/// An INSERT of a key for `user` in `tenant`, claiming the copies say `owner` forever.
fn forged_key(tenant: &str, user: &str, n: u8) -> String {
    format!(
        "INSERT INTO api_keys (tenant_id, id, name, prefix, key_hash, role, scopes, created_by,
                               acts_for, member_role, tenant_expires_at)
         VALUES ('{tenant}', gen_random_uuid(), 'forged', 'crm_sk_forged',
                 decode(repeat('{n:02x}', 32), 'hex'), 'owner', ARRAY['*'], '{user}', '{user}',
                 'owner', NULL)"
    )
}

/// The copied role of every key acting for `user`, as stored.
async fn copied_roles(db: &DatabaseConnection, user: &str) -> Vec<Option<String>> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT member_role FROM api_keys WHERE acts_for = '{user}' ORDER BY id"),
        ))
        .await
        .expect("read the copies");
    rows.iter()
        .map(|row| row.try_get_by_index::<Option<String>>(0).expect("role"))
        .collect()
}

/// An admin with a key made in their session, and another made by that key.
async fn member_with_keys(app: &TestApp, owner: &str) -> (String, String) {
    let (member, member_id) = join(app, owner, "admin@example.com", "admin").await;
    let made = app
        .post(
            "/v1/api-keys",
            &member,
            &json!({"name": "member's", "scopes": ["*"]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let key = made.body["data"]["key"].as_str().expect("key").to_owned();
    let chained = app
        .post(
            "/v1/api-keys",
            &key,
            &json!({"name": "by the key", "scopes": ["contacts:write"]}),
        )
        .await;
    assert_eq!(chained.status, 201, "{}", chained.body);
    (key, member_id)
}

/// Whatever an INSERT says, a key's copies are its member's role and its tenant's expiry;
/// the application role cannot write them; a role change rewrites them on every key of
/// the member's chain, which then act on it at once.
#[actix_rt::test]
async fn a_keys_copies_are_the_truth_whatever_its_insert_says() {
    let app = spawn_app().await;
    let (owner, tenant, _) = sign_up(&app, "owner@example.com").await;
    let (key, member_id) = member_with_keys(&app, &owner).await;
    let db = app.db.owner().await;
    assert_eq!(
        copied_roles(&db, &member_id).await,
        vec![Some("admin".to_owned()); 2]
    );

    let app_role = app.db.app_role().await;
    let txn = as_tenant(&app_role, &tenant).await;
    exec(&txn, &forged_key(&tenant, &member_id, 1))
        .await
        .expect("the application role may insert a key");
    txn.commit().await.expect("commit");
    assert_eq!(
        copied_roles(&db, &member_id).await,
        vec![Some("admin".to_owned()); 3],
        "the insert's own copies are overwritten"
    );

    let txn = as_tenant(&app_role, &tenant).await;
    let written = exec(
        &txn,
        &format!("UPDATE api_keys SET member_role = 'owner' WHERE acts_for = '{member_id}'"),
    )
    .await;
    assert!(written.is_err(), "no UPDATE of the copies: {written:?}");
    drop(txn);

    // Remembered by the server, then demoted: refused at the very next write.
    for _ in 0..2 {
        assert_eq!(app.get("/v1/contacts", &key).await.status, 200);
    }
    let before = app
        .post("/v1/contacts", &key, &json!({"firstName": "Ada"}))
        .await;
    assert_eq!(before.status, 201, "{}", before.body);
    assert_eq!(
        set_role(&app, &owner, &member_id, "viewer").await.status,
        200
    );
    assert_eq!(
        copied_roles(&db, &member_id).await,
        vec![Some("viewer".to_owned()); 3],
        "every key of the chain, the forged one too"
    );
    let written = app.contact_rows().await;
    let after = app
        .post("/v1/contacts", &key, &json!({"firstName": "Bea"}))
        .await;
    assert_eq!(after.status, 403, "{}", after.body);
    assert_eq!(app.contact_rows().await, written, "nothing written");
    let read = app
        .get(&format!("/v1/contacts/{}", before.id()), &key)
        .await;
    assert_eq!(read.status, 200, "viewers read: {}", read.body);

    // Promoted to member: the admin's key acts as a member now, no higher.
    assert_eq!(
        set_role(&app, &owner, &member_id, "member").await.status,
        200
    );
    let again = app
        .post("/v1/contacts", &key, &json!({"firstName": "Cy"}))
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
    let invite = app
        .post(
            "/v1/invitations",
            &key,
            &json!({"email": "x@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(
        invite.status, 403,
        "a member invites nobody: {}",
        invite.body
    );
}

/// A sandbox ends by the clock, or by an operator's change of its end, which is copied:
/// a key the server remembers is refused at the next request, for a read in one
/// statement, a list and a create alike, and nothing is written.
#[actix_rt::test]
async fn a_remembered_key_stops_when_its_tenant_ends() {
    let app = spawn_app().await;
    let tenant = app.tenant("Initech").await;
    let contact = app
        .post("/v1/contacts", &tenant.key, &json!({"firstName": "Ada"}))
        .await;
    assert_eq!(contact.status, 201, "{}", contact.body);
    let one = format!("/v1/contacts/{}", contact.id());
    for _ in 0..2 {
        assert_eq!(app.get(&one, &tenant.key).await.status, 200);
        assert_eq!(app.get("/v1/contacts", &tenant.key).await.status, 200);
    }

    let db = app.db.owner().await;
    exec(
        &db,
        &format!(
            "UPDATE tenants SET expires_at = now() - interval '1 second' WHERE id = '{}'",
            tenant.id
        ),
    )
    .await
    .expect("an operator ends the tenant");
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM api_keys WHERE tenant_id = '{}' AND tenant_expires_at < now()",
                tenant.id
            )
        )
        .await,
        1,
        "the end is copied onto the key"
    );
    let written = app.contact_rows().await;
    assert_eq!(app.get(&one, &tenant.key).await.status, 401);
    assert_eq!(app.get("/v1/contacts", &tenant.key).await.status, 401);
    let create = app
        .post("/v1/contacts", &tenant.key, &json!({"firstName": "Bea"}))
        .await;
    assert_eq!(create.status, 401, "{}", create.body);
    assert_eq!(app.contact_rows().await, written, "nothing written");
}

/// Waits until a backend of this database waits for a lock (the other transaction's).
async fn until_one_waits_for_a_lock(db: &DatabaseConnection) {
    for _ in 0..200 {
        let waiting = count(
            db,
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        if waiting > 0 {
            return;
        }
        actix_rt::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no transaction waited for the other's lock");
}

/// A key made while its member's demotion is not yet committed, in either order, ends
/// with the demoted role: the key's insert and the role change wait for each other on
/// the member's row, so neither copies what the other is about to change.
#[actix_rt::test]
async fn a_key_made_beside_a_demotion_never_keeps_the_old_role() {
    let app = spawn_app().await;
    let (owner, tenant, _) = sign_up(&app, "owner@example.com").await;
    let (_, member_id) = member_with_keys(&app, &owner).await;
    let db = app.db.owner().await;
    let demote = |role: &'static str| {
        format!("UPDATE memberships SET role = '{role}' WHERE user_id = '{member_id}'")
    };

    // The demotion first, the insert waits for it.
    let demoting_role = app.db.app_role().await;
    let demoting = as_tenant(&demoting_role, &tenant).await;
    exec(&demoting, &demote("viewer")).await.expect("demote");
    let inserting = {
        let app_role = app.db.app_role().await;
        let (tenant, member) = (tenant.clone(), member_id.clone());
        actix_rt::spawn(async move {
            let txn = as_tenant(&app_role, &tenant).await;
            exec(&txn, &forged_key(&tenant, &member, 2)).await?;
            txn.commit().await
        })
    };
    until_one_waits_for_a_lock(&db).await;
    demoting.commit().await.expect("commit the demotion");
    inserting
        .await
        .expect("joined")
        .expect("the insert commits");
    assert!(
        copied_roles(&db, &member_id)
            .await
            .iter()
            .all(|role| role.as_deref() == Some("viewer")),
        "{:?}",
        copied_roles(&db, &member_id).await
    );

    // Promoted again; then the insert first, and the demotion waits for it.
    assert_eq!(
        set_role(&app, &owner, &member_id, "admin").await.status,
        200
    );
    let inserting_role = app.db.app_role().await;
    let inserting = as_tenant(&inserting_role, &tenant).await;
    exec(&inserting, &forged_key(&tenant, &member_id, 3))
        .await
        .expect("insert");
    let demoting = {
        let app_role = app.db.app_role().await;
        let (tenant, sql) = (tenant.clone(), demote("viewer"));
        actix_rt::spawn(async move {
            let txn = as_tenant(&app_role, &tenant).await;
            exec(&txn, &sql).await?;
            txn.commit().await
        })
    };
    until_one_waits_for_a_lock(&db).await;
    inserting.commit().await.expect("commit the insert");
    demoting.await.expect("joined").expect("the change commits");
    let roles = copied_roles(&db, &member_id).await;
    assert_eq!(roles.len(), 4, "{roles:?}");
    assert!(
        roles.iter().all(|role| role.as_deref() == Some("viewer")),
        "{roles:?}"
    );
}

/// A key whose copy is missing (written with the triggers off, as a bulk load might) is
/// never taken at its own role: the quick check refuses it and the function, which reads
/// the membership itself, answers with the member's real role.
#[actix_rt::test]
async fn a_key_without_its_copy_is_answered_by_the_function() {
    let app = spawn_app().await;
    let (owner, _, _) = sign_up(&app, "owner@example.com").await;
    let (key, member_id) = member_with_keys(&app, &owner).await;
    for _ in 0..2 {
        assert_eq!(app.get("/v1/contacts", &key).await.status, 200);
    }
    let db = app.db.owner().await;
    let txn = db.begin().await.expect("begin");
    for sql in [
        "SET LOCAL session_replication_role = replica".to_owned(),
        format!("UPDATE memberships SET role = 'viewer' WHERE user_id = '{member_id}'"),
        format!("UPDATE api_keys SET member_role = NULL WHERE acts_for = '{member_id}'"),
    ] {
        exec(&txn, &sql).await.expect("owner SQL runs");
    }
    txn.commit().await.expect("commit");
    let written = app.contact_rows().await;
    let create = app
        .post("/v1/contacts", &key, &json!({"firstName": "Ada"}))
        .await;
    assert_eq!(create.status, 403, "{}", create.body);
    assert_eq!(app.contact_rows().await, written, "nothing written");
    assert_eq!(
        app.get("/v1/contacts", &key).await.status,
        200,
        "a viewer reads"
    );
}
