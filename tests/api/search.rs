//! Lists stay indexed as tenants grow: `q` uses the trigram index and keyset pages use the
//! `(tenant_id, sort, id)` indexes. Checked on the real planner with EXPLAIN, as the
//! application role, on a tenant with thousands of rows among other tenants' rows.

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::Value;

use crate::helpers::spawn_app;

async fn plan(db: &sea_orm::DatabaseConnection, tenant: &str, sql: &str) -> String {
    let txn = db.begin().await.expect("begin");
    txn.execute_unprepared(&format!(
        "SELECT set_config('app.tenant_id', '{tenant}', true)"
    ))
    .await
    .expect("tenant");
    let row = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("EXPLAIN (FORMAT JSON) {sql}"),
        ))
        .await
        .expect("explain runs")
        .expect("a plan");
    let plan: Value = row.try_get_by_index(0).expect("json plan");
    plan.to_string()
}

#[actix_rt::test]
async fn search_and_keyset_pages_use_their_indexes() {
    let app = spawn_app().await;
    let big = app.tenant("Big").await;
    let other = app.tenant("Other").await;
    let owner = app.db.owner().await;
    for (tenant, rows) in [(&big.id, 50_000), (&other.id, 50_000)] {
        owner
            .execute_unprepared(&format!(
                "INSERT INTO contacts (tenant_id, id, first_name, last_name, email) \
                 SELECT '{tenant}', gen_random_uuid(), 'First' || n, 'Last' || n, 'person' || n || '@example.com' \
                   FROM generate_series(1, {rows}) AS n"
            ))
            .await
            .expect("bulk rows");
    }
    // Flush the GIN pending list and refresh statistics, as autovacuum would.
    owner
        .execute_unprepared("VACUUM ANALYZE contacts")
        .await
        .expect("vacuum analyze");
    let app_role = app.db.app_role().await;
    let tenant = &big.id;

    // The list query as the adapter writes it: the search runs in crm_search_contacts and
    // the rows are fetched by primary key, never by scanning the table.
    let search = plan(
        &app_role,
        tenant,
        &format!(
            "SELECT id FROM contacts WHERE tenant_id = '{tenant}' \
                  AND id IN (SELECT crm_search_contacts('%' || lower('Last1234') || '%')) \
                  ORDER BY created_at DESC, id DESC LIMIT 26"
        ),
    )
    .await;
    assert!(search.contains("crm_search_contacts"), "{search}");
    assert!(
        !search.contains("\"Seq Scan\""),
        "q must not scan the table: {search}"
    );
    // Inside the function (crm_definer bypasses RLS), LIKE and @> use their indexes.
    let owner_txn = owner.begin().await.expect("begin");
    owner_txn
        .execute_unprepared("SET LOCAL ROLE crm_definer")
        .await
        .expect("role");
    for (sql, index) in [
        (
            format!(
                "SELECT id FROM contacts WHERE tenant_id = '{tenant}' AND search_text LIKE '%last1234%'"
            ),
            "contacts_search_idx",
        ),
        (
            format!(
                "SELECT id FROM contacts WHERE tenant_id = '{tenant}' AND tags @> ARRAY['vip']"
            ),
            "contacts_tags_idx",
        ),
    ] {
        let row = owner_txn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("EXPLAIN (FORMAT JSON) {sql}"),
            ))
            .await
            .expect("explain")
            .expect("plan");
        let found: Value = row.try_get_by_index(0).expect("json");
        assert!(
            found.to_string().contains(index),
            "{sql} must use {index}: {found}"
        );
    }

    let page = plan(
        &app_role,
        tenant,
        &format!(
            "SELECT id FROM contacts WHERE tenant_id = '{tenant}' \
                  AND (created_at, id) < (now(), '00000000-0000-0000-0000-000000000000') \
                  ORDER BY created_at DESC, id DESC LIMIT 26"
        ),
    )
    .await;
    assert!(
        page.contains("contacts_created_idx"),
        "keyset pages must use (tenant_id, created_at, id): {page}"
    );
    assert!(
        !page.contains("\"Sort\""),
        "no sort of the whole tenant: {page}"
    );

    let by_name = plan(
        &app_role,
        tenant,
        &format!(
            "SELECT id FROM contacts WHERE tenant_id = '{tenant}' \
                  ORDER BY coalesce(last_name, ''), id LIMIT 26"
        ),
    )
    .await;
    assert!(
        by_name.contains("contacts_last_name_idx"),
        "lastName sort uses its index: {by_name}"
    );
}
