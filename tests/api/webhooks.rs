//! The webhook tables at the SQL level, as the real application role: isolation, the
//! fan-out of an event to matching subscriptions, and the worker's cross-tenant claim
//! (the HTTP surface and the delivery worker are still to come, see docs/design/).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::Value;

use crate::helpers::{TestDb, scalar_i64};

async fn exec(db: &impl ConnectionTrait, sql: &str) -> Result<u64, sea_orm::DbErr> {
    db.execute_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .map(|r| r.rows_affected())
}

async fn count(db: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .expect("query runs")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

async fn as_tenant(app_role: &DatabaseConnection, tenant: &str) -> sea_orm::DatabaseTransaction {
    let txn = app_role.begin().await.expect("begin");
    exec(
        &txn,
        &format!("SELECT set_config('app.tenant_id', '{tenant}', true)"),
    )
    .await
    .expect("set tenant");
    txn
}

/// A tenant (made as the owner) with one subscription and one event, written as the
/// application role inside the tenant's context; returns the tenant id.
async fn tenant_with_a_subscription(db: &TestDb, app: &DatabaseConnection, events: &str) -> String {
    let owner = db.owner().await;
    let tenant = uuid::Uuid::new_v4().to_string();
    exec(
        &owner,
        &format!("INSERT INTO tenants (id, name) VALUES ('{tenant}', 'T')"),
    )
    .await
    .expect("tenant");
    let txn = as_tenant(app, &tenant).await;
    exec(
        &txn,
        &format!(
            "INSERT INTO webhook_subscriptions (tenant_id, id, url, events, secret) \
             VALUES ('{tenant}', gen_random_uuid(), 'https://receiver.example/hook', \
                     ARRAY[{events}], 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD')"
        ),
    )
    .await
    .expect("subscription");
    exec(
        &txn,
        &format!(
            "INSERT INTO events (tenant_id, type, object) VALUES ('{tenant}', 'contact.created', \
             jsonb_build_object('id', gen_random_uuid(), 'first_name', 'Ada', 'last_name', null, \
                                'email', 'ada@example.com', 'tags', '[]'::jsonb, \
                                'custom_fields', '{{}}'::jsonb, 'created_at', now(), \
                                'updated_at', now(), 'version', 1))"
        ),
    )
    .await
    .expect("event");
    txn.commit().await.expect("commit");
    tenant
}

#[actix_rt::test]
async fn every_table_with_a_tenant_id_has_forced_row_level_security() {
    let db = TestDb::create().await;
    let owner = db.owner().await;
    let unprotected = count(
        &owner,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = 'public' AND c.relkind = 'r' \
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                         AND a.attname = 'tenant_id' AND NOT a.attisdropped) \
            AND NOT (c.relrowsecurity AND c.relforcerowsecurity)",
    )
    .await;
    assert_eq!(unprotected, 0);
    assert!(
        count(
            &owner,
            "SELECT count(*) FROM pg_policies WHERE tablename IN \
             ('events', 'webhook_subscriptions', 'webhook_deliveries', 'webhook_attempts')"
        )
        .await
            == 4
    );
}

#[actix_rt::test]
async fn an_event_fans_out_only_to_matching_subscriptions_of_its_own_tenant() {
    let db = TestDb::create().await;
    let app = db.app_role().await;
    let wants_contacts = tenant_with_a_subscription(&db, &app, "'contact.*'").await;
    let wants_leads = tenant_with_a_subscription(&db, &app, "'lead.created'").await;
    let owner = db.owner().await;
    let deliveries = |tenant: &str| {
        format!("SELECT count(*) FROM webhook_deliveries WHERE tenant_id = '{tenant}'")
    };
    assert_eq!(count(&owner, &deliveries(&wants_contacts)).await, 1);
    assert_eq!(
        count(&owner, &deliveries(&wants_leads)).await,
        0,
        "filter not matched"
    );

    // Tenant A sees its own rows only, and cannot write B's.
    let txn = as_tenant(&app, &wants_contacts).await;
    assert_eq!(
        count(&txn, "SELECT count(*) FROM webhook_subscriptions").await,
        1
    );
    assert_eq!(count(&txn, "SELECT count(*) FROM events").await, 1);
    assert_eq!(
        count(&txn, "SELECT count(*) FROM webhook_deliveries").await,
        1
    );
    assert_eq!(
        exec(
            &txn,
            &format!(
                "UPDATE webhook_subscriptions SET enabled = false WHERE tenant_id = '{wants_leads}'"
            )
        )
        .await
        .expect("runs"),
        0
    );
    let forged = exec(
        &txn,
        &format!(
            "INSERT INTO events (tenant_id, type, object) VALUES ('{wants_leads}', 'lead.created', '{{}}')"
        ),
    )
    .await;
    assert!(
        forged.is_err(),
        "row-level security refuses another tenant's event"
    );
    drop(txn);

    // Without a tenant: nothing.
    let bare = app.begin().await.expect("begin");
    assert_eq!(count(&bare, "SELECT count(*) FROM events").await, 0);
    assert_eq!(
        count(&bare, "SELECT count(*) FROM webhook_subscriptions").await,
        0
    );
}

#[actix_rt::test]
async fn the_claim_leases_each_due_delivery_once_across_tenants_with_its_rendered_body() {
    let db = TestDb::create().await;
    let app = db.app_role().await;
    let first = tenant_with_a_subscription(&db, &app, "'*'").await;
    let second = tenant_with_a_subscription(&db, &app, "'contact.created'").await;
    let rows = app
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT tenant_id::text, event_id, payload, secret \
               FROM crm_claim_webhook_deliveries(10, interval '1 minute')"
                .to_owned(),
        ))
        .await
        .expect("claim runs as crm_app with no tenant set");
    assert_eq!(rows.len(), 2, "one due delivery per tenant");
    let mut tenants: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("tenant"))
        .collect();
    tenants.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(tenants, expected);
    for row in &rows {
        let event_id: String = row.try_get_by_index(1).expect("event id");
        let payload: String = row.try_get_by_index(2).expect("payload");
        let payload: Value = serde_json::from_str(&payload).expect("JSON");
        assert_eq!(payload["id"], event_id.as_str());
        assert!(event_id.starts_with("evt_"));
        assert_eq!(payload["type"], "contact.created");
        let object = &payload["data"]["object"];
        assert_eq!(object["firstName"], "Ada", "rendered in the API's shape");
        assert_eq!(object["email"], "ada@example.com");
        assert!(object["lastName"].is_null());
        assert!(
            object["createdAt"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }
    let again = scalar_i64(
        &app,
        "SELECT count(*) FROM crm_claim_webhook_deliveries(10, interval '1 minute')",
    )
    .await;
    assert_eq!(again, 0, "leased deliveries are not handed out twice");

    // An expired lease is taken over (a worker died mid-delivery).
    let owner = db.owner().await;
    exec(
        &owner,
        "UPDATE webhook_deliveries SET lease_until = now() - interval '1 second'",
    )
    .await
    .expect("expire leases");
    exec(
        &owner,
        &format!("UPDATE webhook_subscriptions SET enabled = false WHERE tenant_id = '{second}'"),
    )
    .await
    .expect("disable one");
    let taken_over = scalar_i64(
        &app,
        "SELECT count(*) FROM crm_claim_webhook_deliveries(10, interval '1 minute')",
    )
    .await;
    assert_eq!(taken_over, 1, "only the enabled subscription's delivery");
}
