//! Webhooks at the SQL level, as the real application role: the tables' row-level
//! security, the fan-out of an event to matching subscriptions, the worker's cross-tenant
//! claim, and the retention sweep of old history.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::Value;

use crate::helpers::{TestDb, as_tenant, count, exec, scalar_i64};

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
    // The event types the filters expand to, by the domain's rule, as the application
    // stores them beside the filters (the fan-out tests membership of them).
    let filters: Vec<String> = events
        .split(',')
        .map(|f| f.trim().trim_matches('\'').to_owned())
        .collect();
    let types = domain::webhook::SubscriptionDraft::new(
        "https://receiver.example/hook".to_owned(),
        None,
        filters,
        true,
    )
    .expect("valid filters")
    .event_types()
    .iter()
    .map(|t| format!("'{t}'"))
    .collect::<Vec<_>>()
    .join(", ");
    let txn = as_tenant(app, &tenant).await;
    exec(
        &txn,
        &format!(
            "INSERT INTO webhook_subscriptions (tenant_id, id, url, events, event_types, secret) \
             VALUES ('{tenant}', gen_random_uuid(), 'https://receiver.example/hook', \
                     ARRAY[{events}], ARRAY[{types}]::text[], \
                     'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD')"
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
async fn the_claim_leases_each_due_delivery_once_across_tenants_with_its_event() {
    let db = TestDb::create().await;
    let app = db.app_role().await;
    let first = tenant_with_a_subscription(&db, &app, "'*'").await;
    let second = tenant_with_a_subscription(&db, &app, "'contact.created'").await;
    let worker = db.worker_role().await;
    let rows = worker
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT tenant_id::text, 'evt_' || replace(event_id::text, '-', ''), event_type, \
                    event_object::text, secret, event_created_at::text \
               FROM crm_claim_webhook_deliveries(10, interval '1 minute')"
                .to_owned(),
        ))
        .await
        .expect("claim runs as crm_worker with no tenant set");
    assert_eq!(rows.len(), 2, "one due delivery per tenant");
    let mut tenants: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("tenant"))
        .collect();
    tenants.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(tenants, expected);
    // The claim hands over the event as stored (the snapshot); the worker renders the
    // body in Rust with the API's DTOs (`an_event_is_delivered_signed_retried_after_a_500_and_logged` checks what arrives).
    for row in &rows {
        let event_id: String = row.try_get_by_index(1).expect("event id");
        assert!(event_id.starts_with("evt_") && event_id.len() == 36);
        let kind: String = row.try_get_by_index(2).expect("type");
        assert_eq!(kind, "contact.created");
        let object: String = row.try_get_by_index(3).expect("object");
        let object: Value = serde_json::from_str(&object).expect("JSON");
        assert_eq!(object["first_name"], "Ada", "the row snapshot");
        assert_eq!(object["email"], "ada@example.com");
        assert!(object["last_name"].is_null());
        let created: Option<String> = row.try_get_by_index(5).expect("created_at");
        assert!(created.is_some());
    }
    let again = scalar_i64(
        &worker,
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
        &worker,
        "SELECT count(*) FROM crm_claim_webhook_deliveries(10, interval '1 minute')",
    )
    .await;
    assert_eq!(taken_over, 1, "only the enabled subscription's delivery");
}

#[actix_rt::test]
async fn the_retention_sweep_forgets_old_events_and_attempts_but_not_what_is_still_owed() {
    let db = TestDb::create().await;
    let app = db.app_role().await;
    let tenant = tenant_with_a_subscription(&db, &app, "'*'").await;
    let txn = as_tenant(&app, &tenant).await;
    for (first_name, age) in [("Delivered", "40 days"), ("Owed", "40 days")] {
        exec(
            &txn,
            &format!(
                "INSERT INTO events (tenant_id, type, object, created_at) \
                 VALUES ('{tenant}', 'contact.created', \
                         jsonb_build_object('id', gen_random_uuid(), 'first_name', '{first_name}'), \
                         now() - interval '{age}')"
            ),
        )
        .await
        .expect("an old event");
    }
    // The first old event was delivered long ago; the second is still being retried.
    exec(
        &txn,
        "UPDATE webhook_deliveries d SET status = 'succeeded', next_attempt_at = NULL \
           FROM events e WHERE e.tenant_id = d.tenant_id AND e.seq = d.event_seq \
            AND e.object ->> 'first_name' = 'Delivered'",
    )
    .await
    .expect("delivered");
    exec(
        &txn,
        &format!(
            "INSERT INTO webhook_attempts (tenant_id, id, delivery_id, attempted_at, latency_ms) \
             SELECT '{tenant}', gen_random_uuid(), d.id, now() - a.age, 5 \
               FROM webhook_deliveries d, \
                    (VALUES (interval '40 days'), (interval '1 day')) a(age) \
              WHERE d.status = 'pending'"
        ),
    )
    .await
    .expect("attempts");
    txn.commit().await.expect("commit");

    // Two old attempts (one per delivery still owed) and the delivered old event are
    // due. A chunk of one takes one attempt and the event; the worker's sweep loops for
    // the rest.
    let chunk = "SELECT crm_sweep_webhook_history(interval '30 days', 1)";
    let worker = db.worker_role().await;
    assert_eq!(scalar_i64(&worker, chunk).await, 2);
    let store = adapters_postgres::PgStore::connect(
        &db.worker_url,
        &adapters_postgres::PoolOptions::default(),
    )
    .await
    .expect("connect as crm_worker");
    let thirty_days = Duration::from_secs(30 * 86_400);
    let sweep = || ports::DeliveryQueue::sweep_history(&store, thirty_days);
    assert_eq!(sweep().await.expect("swept"), 1);
    assert_eq!(sweep().await.expect("swept"), 0, "nothing old is left");
    let txn = as_tenant(&app, &tenant).await;
    let left: Vec<String> = txn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT object ->> 'first_name' AS name FROM events ORDER BY seq",
        ))
        .await
        .expect("events")
        .iter()
        .map(|row| row.try_get("", "name").expect("name"))
        .collect();
    assert_eq!(
        left,
        vec!["Ada", "Owed"],
        "recent and still-owed events stay"
    );
    assert_eq!(
        count(&txn, "SELECT count(*) FROM webhook_attempts").await,
        2
    );
    assert_eq!(
        count(&txn, "SELECT count(*) FROM webhook_deliveries").await,
        2,
        "the forgotten event's delivery goes with it"
    );
}
