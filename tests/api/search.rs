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
    for (sql, indexes) in [
        (
            format!(
                "SELECT id FROM contacts WHERE tenant_id = '{tenant}' AND search_text LIKE '%last1234%'"
            ),
            // The tenant's own trigram subtree (migration 0024), or the table-wide trigram
            // index where a pattern's matches are rare: either is an index, never a scan.
            &["contacts_tenant_search_gist", "contacts_search_idx"][..],
        ),
        (
            format!(
                "SELECT id FROM contacts WHERE tenant_id = '{tenant}' AND tags @> ARRAY['vip']"
            ),
            &["contacts_tags_idx"][..],
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
            indexes
                .iter()
                .any(|index| found.to_string().contains(index)),
            "{sql} must use one of {indexes:?}: {found}"
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

fn ids(reply: &crate::helpers::Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut ids: Vec<String> = reply.body["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[actix_rt::test]
async fn leads_are_found_by_title_source_and_their_contact_and_company_and_activities_by_text() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let key = acme.key.as_str();
    let company = app
        .post(
            "/v1/companies",
            key,
            &serde_json::json!({"name": "Initech", "domain": "initech.test"}),
        )
        .await
        .id();
    let contact = app
        .post(
            "/v1/contacts",
            key,
            &serde_json::json!({"firstName": "Ada", "lastName": "Lovelace"}),
        )
        .await
        .id();
    let lead = |body: serde_json::Value| {
        let app = &app;
        async move {
            let made = app.post("/v1/leads", key, &body).await;
            assert_eq!(made.status, 201, "{}", made.body);
            made.id()
        }
    };
    let by_contact = lead(serde_json::json!({"title": "Analytical engine", "contactId": contact, "source": "Referral"})).await;
    let by_company = lead(serde_json::json!({"title": "Printers", "companyId": company})).await;
    let by_title = lead(serde_json::json!({"title": "100% Lovelace-grade"})).await;
    let theirs = app
        .post(
            "/v1/leads",
            &globex.key,
            &serde_json::json!({"title": "Lovelace too"}),
        )
        .await;
    assert_eq!(theirs.status, 201);

    let search = |q: &str| {
        let app = &app;
        let path = format!("/v1/leads?q={q}");
        async move { ids(&app.get(&path, key).await) }
    };
    assert_eq!(
        search("LOVELACE").await,
        sorted(vec![by_contact.clone(), by_title.clone()]),
        "the contact's name and the title, case-insensitively, never another tenant's"
    );
    assert_eq!(
        search("initech").await,
        vec![by_company.clone()],
        "the company's name"
    );
    assert_eq!(
        search("referral").await,
        vec![by_contact.clone()],
        "the source"
    );
    assert_eq!(
        search("100%25").await,
        vec![by_title.clone()],
        "% is literal"
    );
    assert!(search("nothing-like-it").await.is_empty());
    let combined = ids(&app
        .get(&format!("/v1/leads?q=lovelace&contactId={contact}"), key)
        .await);
    assert_eq!(
        combined,
        vec![by_contact.clone()],
        "q combines with filters"
    );

    let note = app
        .post(
            "/v1/activities",
            key,
            &serde_json::json!({"type": "note", "subject": "Kick-off", "body": "Discussed the Difference Engine", "leadId": by_contact}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.body);
    let call = app
        .post(
            "/v1/activities",
            key,
            &serde_json::json!({"type": "call", "subject": "Follow-up about engines", "contactId": contact}),
        )
        .await;
    assert_eq!(call.status, 201, "{}", call.body);
    assert_eq!(
        ids(&app.get("/v1/activities?q=DIFFERENCE", key).await),
        vec![note.id()],
        "the body"
    );
    assert_eq!(
        ids(&app.get("/v1/activities?q=engine", key).await),
        sorted(vec![note.id(), call.id()]),
        "subject and body"
    );
    assert_eq!(
        ids(&app
            .get(&format!("/v1/contacts/{contact}/activities?q=follow"), key)
            .await),
        vec![call.id()],
        "on a timeline too"
    );
    let bad = app.get("/v1/leads?q=%00", key).await;
    assert_eq!(bad.status, 400, "control characters are refused");

    // The searches use the trigram indexes (inside the definer functions).
    let owner = app.db.owner().await;
    owner
        .execute_unprepared(&format!(
            "INSERT INTO leads (tenant_id, id, title, pipeline_id, stage_id) \
             SELECT l.tenant_id, gen_random_uuid(), 'Bulk ' || n, l.pipeline_id, l.stage_id \
               FROM leads l, generate_series(1, 20000) AS n WHERE l.id = '{by_title}'"
        ))
        .await
        .expect("bulk leads");
    owner
        .execute_unprepared(&format!(
            "INSERT INTO activities (tenant_id, id, type, subject, body, lead_id) \
             SELECT '{}', gen_random_uuid(), 'note', 'Note ' || n, 'Body ' || n, '{by_contact}' \
               FROM generate_series(1, 20000) AS n",
            acme.id
        ))
        .await
        .expect("bulk activities");
    for table in ["leads", "activities"] {
        owner
            .execute_unprepared(&format!("VACUUM ANALYZE {table}"))
            .await
            .expect("analyze");
    }
    let txn = owner.begin().await.expect("begin");
    txn.execute_unprepared("SET LOCAL ROLE crm_definer")
        .await
        .expect("role");
    for (sql, indexes) in [
        (
            format!(
                "SELECT id FROM leads WHERE tenant_id = '{}' AND search_text LIKE '%bulk 1234%'",
                acme.id
            ),
            &["leads_search_idx"][..],
        ),
        (
            format!(
                "SELECT id FROM activities WHERE tenant_id = '{}' AND search_text LIKE '%difference%'",
                acme.id
            ),
            &["activities_search_idx"][..],
        ),
    ] {
        let row = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("EXPLAIN (FORMAT JSON) {sql}"),
            ))
            .await
            .expect("explain")
            .expect("plan");
        let found: Value = row.try_get_by_index(0).expect("json");
        assert!(
            indexes
                .iter()
                .any(|index| found.to_string().contains(index)),
            "{sql} must use one of {indexes:?}: {found}"
        );
    }
}

#[actix_rt::test]
async fn every_whole_list_takes_q_too() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let key = acme.key.as_str();
    let made = app
        .post(
            "/v1/pipelines",
            key,
            &serde_json::json!({"name": "Renewals", "stages": [{"name": "Due"}, {"name": "Signed", "kind": "won"}]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let count = |path: String| {
        let app = &app;
        async move {
            let reply = app.get(&path, key).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            reply.body["data"].as_array().expect("a list").len()
        }
    };
    assert_eq!(count("/v1/pipelines?q=RENEW".into()).await, 1, "by name");
    assert_eq!(
        count("/v1/pipelines?q=signed".into()).await,
        1,
        "by a stage's name"
    );
    assert_eq!(count("/v1/pipelines?q=nothing-like-it".into()).await, 0);
    let key_made = app
        .post(
            "/v1/api-keys",
            key,
            &serde_json::json!({"name": "Zapier sync", "scopes": ["*"]}),
        )
        .await;
    assert_eq!(key_made.status, 201);
    assert_eq!(count("/v1/api-keys?q=zapier".into()).await, 1);
    let invited = app
        .post(
            "/v1/invitations",
            key,
            &serde_json::json!({"email": "grace@navy.example", "role": "viewer"}),
        )
        .await;
    assert_eq!(invited.status, 201);
    assert_eq!(count("/v1/invitations?q=NAVY".into()).await, 1);
    assert_eq!(count("/v1/invitations?q=army".into()).await, 0);
    assert!(count("/v1/members?q=@".into()).await >= 1);
    assert_eq!(count("/v1/webhooks?q=nothing".into()).await, 0);
    let refused = app.get("/v1/members?q=%00", key).await;
    assert_eq!(refused.status, 400, "control characters are refused");
    let unknown = app.get("/v1/members?sort=name", key).await;
    assert_eq!(
        unknown.status, 400,
        "unknown parameters are refused, as on every list"
    );
}
