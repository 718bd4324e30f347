//! `GET /v1/contacts` with a key this process checked a moment ago is one statement in all
//! (SPEC §9): the key's check and the page together, outside any transaction block
//! (`adapters-postgres/src/one_statement.rs`). The page must be exactly the one a unit of
//! work gives, for every filter, order and cursor, and the shortcut must give an attacker
//! nothing a unit of work would not: no other tenant's rows, whatever the cursor says; no
//! page for a key revoked, narrowed or demoted a moment ago; no way past the limits.

use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

use crate::helpers::{TestApp, idle_after, spawn_app, spawn_app_with};
use crate::identity::sign_up;
use crate::rate_limit::{limits, policy};
use domain::rate_limit::PolicyName;

/// The application's sessions idle after the one-statement list.
async fn one_statement_lists_seen(owner: &DatabaseConnection) -> i64 {
    idle_after(owner, "/* contact list, known key */").await
}

/// A key with `scopes`, made in the session `by`.
async fn mint(app: &TestApp, by: &str, scopes: Value) -> (String, String) {
    let made = app
        .post(
            "/v1/api-keys",
            by,
            &json!({"name": "lister", "scopes": scopes}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    (
        made.body["data"]["key"].as_str().expect("key").to_owned(),
        made.id(),
    )
}

/// The ids of a page, in order.
fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("a page")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Every page of `path` (which has a `?`) with `key`, following the cursors.
async fn walk(app: &TestApp, path: &str, key: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next = path.to_owned();
    loop {
        let page = app.get(&next, key).await;
        assert_eq!(page.status, 200, "{next}: {}", page.body);
        let pagination = &page.body["metadata"]["pagination"];
        let cursor = pagination["nextCursor"].as_str().map(str::to_owned);
        // What the page says, without the request's own id and time.
        pages.push(json!({"data": page.body["data"], "pagination": pagination}));
        match cursor {
            Some(cursor) => next = format!("{path}&cursor={cursor}"),
            None => return pages,
        }
    }
}

#[actix_rt::test]
async fn a_list_with_a_remembered_key_is_one_statement_and_the_page_a_unit_of_work_gives() {
    let app = spawn_app().await;
    let owner = app.db.owner().await;
    let (session, _, _) = sign_up(&app, "owner@example.com").await;
    let (key, _) = mint(&app, &session, json!(["contacts:read"])).await;
    for (n, last) in ["Zed", "Abel", "Moss", "abbot", "Kim", "Lee", "Abel"]
        .iter()
        .enumerate()
    {
        let made = app
            .post(
                "/v1/contacts",
                &session,
                &json!({"firstName": format!("F{n}"), "lastName": last,
                        "email": format!("c{n}@example.com"), "tags": [if n % 2 == 0 { "even" } else { "odd" }]}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
    }
    let stranger = app.tenant("Globex").await;
    for n in 0..3 {
        let made = app
            .post(
                "/v1/contacts",
                &stranger.key,
                &json!({"lastName": "Abel", "email": format!("g{n}@example.com")}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
    }

    // The first request resolves the key (a unit of work); the server then remembers it.
    assert_eq!(app.get("/v1/contacts?limit=1", &key).await.status, 200);
    assert_eq!(one_statement_lists_seen(&owner).await, 0);
    for path in [
        "/v1/contacts?limit=3",
        "/v1/contacts?limit=2&sort=lastName",
        "/v1/contacts?limit=2&sort=-email",
        "/v1/contacts?limit=2&q=abb",
        "/v1/contacts?limit=2&tag=even&sort=createdAt",
        "/v1/contacts?limit=100&email=c3@example.com",
    ] {
        let by_key = walk(&app, path, &key).await;
        let by_session = walk(&app, path, &session).await;
        assert_eq!(
            by_key, by_session,
            "{path}: the same pages as a unit of work"
        );
    }
    assert!(
        one_statement_lists_seen(&owner).await >= 1,
        "the key's pages were one statement each, on their own"
    );
    let all: Vec<String> = walk(&app, "/v1/contacts?limit=3", &key)
        .await
        .iter()
        .flat_map(ids)
        .collect();
    assert_eq!(all.len(), 7, "every contact of the tenant once: {all:?}");
    let strangers = walk(&app, "/v1/contacts?limit=100", &stranger.key).await;
    for id in ids(&strangers[0]) {
        assert!(!all.contains(&id), "none of another tenant's");
    }

    // Another tenant's cursor only positions the walk in the caller's own rows.
    let foreign = app.get("/v1/contacts?limit=1", &stranger.key).await;
    let cursor = foreign.body["metadata"]["pagination"]["nextCursor"]
        .as_str()
        .expect("a cursor");
    let page = app
        .get(&format!("/v1/contacts?limit=100&cursor={cursor}"), &key)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    for id in ids(&page.body) {
        assert!(all.contains(&id), "only the caller's rows");
    }
}

#[actix_rt::test]
async fn a_remembered_key_revoked_narrowed_or_malformed_gets_what_a_unit_of_work_answers() {
    let app = spawn_app().await;
    let (session, _, _) = sign_up(&app, "owner@example.com").await;
    let made = app
        .post(
            "/v1/contacts",
            &session,
            &json!({"email": "ada@example.com"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let (reader, reader_id) = mint(&app, &session, json!(["contacts:read"])).await;
    let (narrow, _) = mint(&app, &session, json!(["webhooks:manage"])).await;
    for _ in 0..2 {
        assert_eq!(app.get("/v1/contacts", &reader).await.status, 200);
        let refused = app.get("/v1/contacts", &narrow).await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(!refused.body.to_string().contains("ada@example.com"));
    }

    for bad in [
        "/v1/contacts?limit=0",
        "/v1/contacts?limit=abc",
        "/v1/contacts?cursor=not-a-cursor",
        "/v1/contacts?sort=password",
    ] {
        let reply = app.get(bad, &reader).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        let bogus = "crm_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(
            app.get(bad, bogus).await.status,
            401,
            "{bad}: a bad query says nothing to an unknown key"
        );
    }

    let revoked = app
        .call(
            "DELETE",
            &format!("/v1/api-keys/{reader_id}"),
            Some(&session),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let after = app.get("/v1/contacts", &reader).await;
    assert_eq!(after.status, 401, "revoked at once: {}", after.body);
    assert!(!after.body.to_string().contains("ada@example.com"));
}

#[actix_rt::test]
async fn the_tenant_limit_refuses_a_remembered_list_before_it_reads() {
    let app = spawn_app_with(limits(&[policy(PolicyName::Tenant, 3, 60)])).await;
    let acme = app.tenant("Acme").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let reply = app.get("/v1/contacts", &acme.key).await;
        if reply.status == 429 {
            assert_eq!(reply.body["details"]["policy"], "tenant", "{}", reply.body);
            assert!(reply.body["data"].is_null(), "{}", reply.body);
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
}
