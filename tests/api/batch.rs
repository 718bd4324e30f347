//! Batch writes: all-or-nothing `create`, per-item `upsert`.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn statuses(reply: &Value) -> Vec<String> {
    reply
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[actix_rt::test]
async fn a_hundred_contacts_are_created_in_one_call() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let items: Vec<Value> = (0..100)
        .map(|i| json!({"firstName": format!("P{i}"), "email": format!("p{i}@example.com")}))
        .collect();
    let reply = app
        .post(
            "/v1/contacts/batch",
            &acme.key,
            &json!({"mode": "create", "items": items}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let results = &reply.body["data"]["results"];
    assert!(statuses(results).iter().all(|s| s == "created"));
    assert_eq!(results[99]["index"], 99);
    assert_eq!(app.contact_rows().await, 100);
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"firstName": format!("Q{i}")}))
        .collect();
    assert_eq!(
        app.post(
            "/v1/contacts/batch",
            &acme.key,
            &json!({"mode": "create", "items": too_many})
        )
        .await
        .status,
        400
    );
    assert_eq!(
        app.post(
            "/v1/contacts/batch",
            &acme.key,
            &json!({"mode": "create", "items": []})
        )
        .await
        .status,
        400
    );
}

#[actix_rt::test]
async fn a_create_batch_with_a_bad_item_writes_nothing_and_names_the_failing_indexes() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    assert_eq!(
        app.post(
            "/v1/contacts",
            &acme.key,
            &json!({"email": "taken@example.com"})
        )
        .await
        .status,
        201
    );
    let invalid = json!({"mode": "create", "items": [
        {"firstName": "ok"}, {"email": "not-an-email"}, {"firstName": 5}, {"firstName": "fine"}
    ]});
    let reply = app.post("/v1/contacts/batch", &acme.key, &invalid).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let results = &reply.body["details"]["results"];
    assert_eq!(results[1]["error"]["code"], "VALIDATION_FAILED");
    assert!(results[1]["error"]["fields"]["email"].is_array());
    assert_eq!(results[2]["error"]["code"], "VALIDATION_FAILED");
    assert_eq!(results[0]["error"]["code"], "SKIPPED");
    assert_eq!(app.contact_rows().await, 1, "nothing written");

    let conflict = json!({"mode": "create", "items": [
        {"email": "new@example.com"}, {"email": "TAKEN@example.com"}, {"email": "new@example.com"}
    ]});
    let reply = app.post("/v1/contacts/batch", &acme.key, &conflict).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    let results = &reply.body["details"]["results"];
    assert_eq!(results[1]["error"]["code"], "CONFLICT");
    assert_eq!(
        results[2]["error"]["code"], "CONFLICT",
        "duplicates within the batch too"
    );
    assert_eq!(app.contact_rows().await, 1, "still nothing written");
}

#[actix_rt::test]
async fn a_taken_email_in_a_later_chunk_fails_the_whole_batch_and_names_its_index() {
    // 100 items with tags and custom fields take several insert statements; the taken
    // e-mail sits in the last one, so earlier statements have already written rows that
    // must be rolled back.
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let taken = app
        .post(
            "/v1/contacts",
            &acme.key,
            &json!({"email": "p97@example.com"}),
        )
        .await;
    assert_eq!(taken.status, 201, "{}", taken.body);
    let items: Vec<Value> = (0..100)
        .map(|i| {
            json!({"firstName": format!("Person {i}"), "email": format!("P{i}@example.com"),
                   "tags": ["imported", "batch"], "customFields": {"source": "import", "row": i}})
        })
        .collect();
    let reply = app
        .post(
            "/v1/contacts/batch",
            &acme.key,
            &json!({"mode": "create", "items": items}),
        )
        .await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    let results = reply.body["details"]["results"]
        .as_array()
        .expect("results");
    let failing: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r["error"]["code"] == "CONFLICT")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failing, vec![97]);
    assert_eq!(
        results[97]["error"]["fields"]["email"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(
        results
            .iter()
            .enumerate()
            .all(|(i, r)| i == 97 || r["error"]["code"] == "SKIPPED")
    );
    assert_eq!(
        app.contact_rows().await,
        1,
        "the earlier chunks were rolled back"
    );
}

#[actix_rt::test]
async fn an_upsert_batch_creates_updates_keeps_and_reports_per_item() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let existing = app
        .post(
            "/v1/contacts",
            &acme.key,
            &json!({"firstName": "Ada", "email": "ada@example.com"}),
        )
        .await;
    let existing_id = existing.body["data"]["id"].as_str().expect("id").to_owned();
    app.post(
        "/v1/contacts",
        &acme.key,
        &json!({"firstName": "Grace", "email": "grace@example.com"}),
    )
    .await;
    let batch = json!({"mode": "upsert", "items": [
        {"firstName": "Ada", "lastName": "Lovelace", "email": "ADA@example.com"},
        {"firstName": "Grace", "email": "grace@example.com"},
        {"firstName": "Alan", "email": "alan@example.com"},
        {"email": "broken"},
        {"firstName": "Eve", "companyId": uuid::Uuid::new_v4()}
    ]});
    let reply = app.post("/v1/contacts/batch", &acme.key, &batch).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let results = &reply.body["data"]["results"];
    assert_eq!(
        statuses(results),
        ["updated", "unchanged", "created", "error", "error"]
    );
    assert_eq!(results[0]["id"], existing_id.as_str());
    assert!(results[4]["error"]["fields"]["companyId"].is_array());
    let ada = app
        .get(&format!("/v1/contacts/{existing_id}"), &acme.key)
        .await;
    assert_eq!(ada.body["data"]["lastName"], "Lovelace");
    assert_eq!(
        app.contact_rows().await,
        3,
        "the valid items were written, the bad ones not"
    );
}

#[actix_rt::test]
async fn companies_are_upserted_by_domain() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let first = app
        .post("/v1/companies/batch", &acme.key, &json!({"mode": "upsert", "items": [
            {"name": "Initech", "domain": "initech.example"}, {"name": "Hooli", "domain": "hooli.example"}
        ]}))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        statuses(&first.body["data"]["results"]),
        ["created", "created"]
    );
    let second = app
        .post("/v1/companies/batch", &acme.key, &json!({"mode": "upsert", "items": [
            {"name": "Initech Corp", "domain": "www.initech.example"}, {"name": "Hooli", "domain": "hooli.example"}
        ]}))
        .await;
    assert_eq!(
        statuses(&second.body["data"]["results"]),
        ["updated", "unchanged"]
    );
    let other = app.tenant("Other").await;
    let theirs = app
        .post(
            "/v1/companies/batch",
            &other.key,
            &json!({"mode": "create", "items": [{"name": "Initech", "domain": "initech.example"}]}),
        )
        .await;
    assert_eq!(
        theirs.status, 201,
        "domains are unique per tenant, not globally"
    );
}
