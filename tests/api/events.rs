//! The outbox end to end: every change made through the API is an event in the tenant's
//! log (`GET /v1/events`), in the same transaction as the change, and reaches exactly the
//! subscriptions that ask for it, of the tenant it belongs to.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, as_tenant, count, exec, spawn_app};
use crate::webhooks::{Receiver, start_worker, subscribe};

/// The tenant's event log once `ready` holds for it.
///
/// The log shows an event only when its transaction and every earlier one in the cluster
/// have ended (so paging never skips one), and the other tests' transactions run in the
/// same cluster: what was just committed can take a moment to show.
pub(crate) async fn event_log_when(
    app: &TestApp,
    key: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..200 {
        let log = event_log(app, key).await;
        if ready(&log) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the event log never got ready: {:?}",
        types(&event_log(app, key).await)
    );
}

/// The tenant's whole event log, oldest first, as it shows now.
async fn event_log(app: &TestApp, key: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = "/v1/events?limit=100".to_owned();
    loop {
        let page = app.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.body);
        events.extend(
            page.body["data"]
                .as_array()
                .expect("a list")
                .iter()
                .cloned(),
        );
        match page.body["metadata"]["pagination"]["nextCursor"].as_str() {
            Some(cursor) => path = format!("/v1/events?limit=100&after={cursor}"),
            None => return events,
        }
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect()
}

/// The one event of `kind` about object `id`.
fn event<'a>(events: &'a [Value], kind: &str, id: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == kind && e["data"]["object"]["id"] == id)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} for {id} in {:?}", types(events));
    found[0]
}

fn id_of(reply: &crate::helpers::Reply) -> String {
    assert!(
        (200..300).contains(&reply.status),
        "{} {}",
        reply.status,
        reply.body
    );
    reply.id()
}

#[actix_rt::test]
async fn every_change_of_every_resource_is_an_event_with_what_changed() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let key = acme.key.as_str();
    // Makes one change and returns the id of what it wrote.
    let write = |method: &'static str, path: String, body: Value| {
        let app = &app;
        async move { id_of(&app.call(method, &path, Some(key), Some(&body), &[]).await) }
    };

    let company = write(
        "POST",
        "/v1/companies".into(),
        json!({"name": "Initech", "domain": "initech.test"}),
    )
    .await;
    write(
        "PATCH",
        format!("/v1/companies/{company}"),
        json!({"industry": "Software"}),
    )
    .await;
    let contact = write(
        "POST",
        "/v1/contacts".into(),
        json!({"firstName": "Ada", "email": "ada@example.com"}),
    )
    .await;
    write(
        "PATCH",
        format!("/v1/contacts/{contact}"),
        json!({"title": "CTO", "companyId": company}),
    )
    .await;
    let pipeline = app
        .post(
            "/v1/pipelines",
            key,
            &json!({"name": "Partners", "stages": [{"name": "Intro"}, {"name": "Signed", "kind": "won"}]}),
        )
        .await;
    let stages: Vec<String> = pipeline.body["data"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["id"].as_str().expect("stage id").to_owned())
        .collect();
    let pipeline = id_of(&pipeline);
    write(
        "PATCH",
        format!("/v1/pipelines/{pipeline}"),
        json!({"name": "Partners EU"}),
    )
    .await;
    write(
        "POST",
        format!("/v1/pipelines/{pipeline}/stages"),
        json!({"name": "Pilot"}),
    )
    .await;
    let lead = write("POST", "/v1/leads".into(), json!({"title": "Site licence", "pipelineId": pipeline, "stageId": stages[0], "contactId": contact})).await;
    write(
        "POST",
        format!("/v1/leads/{lead}/move"),
        json!({"stageId": stages[1]}),
    )
    .await;
    let activity = write(
        "POST",
        "/v1/activities".into(),
        json!({"type": "call", "subject": "Intro call", "contactId": contact}),
    )
    .await;
    write(
        "PUT",
        format!("/v1/activities/{activity}"),
        json!({"type": "call", "subject": "Intro call (done)", "contactId": contact}),
    )
    .await;
    for path in [
        format!("/v1/activities/{activity}"),
        format!("/v1/leads/{lead}"),
        format!("/v1/contacts/{contact}"),
        format!("/v1/companies/{company}"),
        format!("/v1/pipelines/{pipeline}"),
    ] {
        let deleted = app.call("DELETE", &path, Some(key), None, &[]).await;
        assert_eq!(deleted.status, 200, "{path}: {}", deleted.body);
    }

    let log = event_log_when(&app, key, |log| {
        log.last().is_some_and(|e| e["type"] == "pipeline.deleted")
    })
    .await;
    let seen = types(&log);
    for (kind, id) in [
        ("company.created", &company),
        ("company.updated", &company),
        ("company.deleted", &company),
        ("contact.created", &contact),
        ("contact.updated", &contact),
        ("contact.deleted", &contact),
        ("pipeline.created", &pipeline),
        ("pipeline.deleted", &pipeline),
        ("lead.created", &lead),
        ("lead.stage_changed", &lead),
        ("lead.deleted", &lead),
        ("activity.created", &activity),
        ("activity.updated", &activity),
        ("activity.deleted", &activity),
    ] {
        event(&log, kind, id);
    }
    // In the order the changes were made (the default pipeline's event, from sign-up,
    // comes first).
    let position = |kind: &str, id: &str| {
        log.iter()
            .position(|e| e["type"] == kind && e["data"]["object"]["id"] == id)
            .expect("present")
    };
    assert!(position("company.created", &company) < position("contact.created", &contact));
    assert!(position("lead.created", &lead) < position("lead.stage_changed", &lead));
    assert!(position("activity.deleted", &activity) < position("pipeline.deleted", &pipeline));
    assert_eq!(seen[0], "pipeline.created", "{seen:?}");

    // Every event has the published shape.
    for e in &log {
        assert!(
            e["id"].as_str().is_some_and(|id| id.starts_with("evt_")),
            "{e}"
        );
        assert_eq!(e["tenantId"], acme.id.as_str());
        assert!(e["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(e["data"]["object"]["id"].is_string(), "{e}");
    }

    // Updates say what was there before and which fields changed.
    let updated = &event(&log, "contact.updated", &contact)["data"];
    assert_eq!(updated["changedFields"], json!(["companyId", "title"]));
    assert_eq!(updated["previous"]["title"], Value::Null);
    assert_eq!(updated["object"]["title"], "CTO");
    assert_eq!(updated["object"]["firstName"], "Ada");
    assert_eq!(
        event(&log, "company.updated", &company)["data"]["changedFields"],
        json!(["industry"])
    );
    assert_eq!(
        event(&log, "activity.updated", &activity)["data"]["changedFields"],
        json!(["subject"])
    );
    let moved = &event(&log, "lead.stage_changed", &lead)["data"];
    assert_eq!(moved["fromStageId"], stages[0].as_str());
    assert_eq!(moved["toStageId"], stages[1].as_str());
    assert_eq!(moved["object"]["stageId"], stages[1].as_str());
    assert_eq!(moved["object"]["status"], "won");
    let lead_updates: Vec<&Value> = log
        .iter()
        .filter(|e| e["type"] == "lead.updated" && e["data"]["object"]["id"] == lead.as_str())
        .collect();
    assert_eq!(lead_updates.len(), 1, "the move is also an update");
    assert_eq!(
        lead_updates[0]["data"]["changedFields"],
        json!(["stageId", "status"])
    );

    // Pipelines: a rename, then a stage added (changedFields ["stages"]); the snapshot
    // carries the stages.
    let pipeline_updates: Vec<&Value> = log
        .iter()
        .filter(|e| {
            e["type"] == "pipeline.updated" && e["data"]["object"]["id"] == pipeline.as_str()
        })
        .collect();
    assert_eq!(pipeline_updates.len(), 2, "{seen:?}");
    assert_eq!(
        pipeline_updates[0]["data"]["changedFields"],
        json!(["name"])
    );
    assert_eq!(pipeline_updates[0]["data"]["previous"]["name"], "Partners");
    assert_eq!(
        pipeline_updates[1]["data"]["changedFields"],
        json!(["stages"])
    );
    assert_eq!(
        pipeline_updates[1]["data"]["object"]["stages"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    // A deleted object is described as it was.
    assert_eq!(
        event(&log, "contact.deleted", &contact)["data"]["object"]["title"],
        "CTO"
    );
}

#[actix_rt::test]
async fn a_write_that_fails_or_changes_nothing_leaves_no_event() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let key = acme.key.as_str();
    let ada = id_of(
        &app.post(
            "/v1/contacts",
            key,
            &json!({"firstName": "Ada", "email": "ada@example.com"}),
        )
        .await,
    );
    // Everything up to Ada's creation, all of it visible.
    let before = event_log_when(&app, key, |log| {
        log.iter()
            .any(|e| e["data"]["object"]["id"] == ada.as_str())
    })
    .await
    .len();

    // A conflict, a failed precondition, and a batch whose last chunk fails after earlier
    // chunks were written: all rolled back, so no event either.
    let taken = app
        .post("/v1/contacts", key, &json!({"email": "ada@example.com"}))
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    let stale = app
        .call(
            "PATCH",
            &format!("/v1/contacts/{ada}"),
            Some(key),
            Some(&json!({"title": "CEO"})),
            &[("If-Match", "\"7\"")],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.body);
    let items: Vec<Value> = (0..100)
        .map(|i| json!({"firstName": format!("P{i}"), "email": if i == 99 { "ada@example.com".to_owned() } else { format!("p{i}@example.com") },
                        "tags": ["imported"], "customFields": {"row": i}}))
        .collect();
    let batch = app
        .post(
            "/v1/contacts/batch",
            key,
            &json!({"mode": "create", "items": items}),
        )
        .await;
    assert_eq!(batch.status, 409, "{}", batch.body);
    // Changing a field to the value it already has is not a change.
    let same = app
        .call(
            "PATCH",
            &format!("/v1/contacts/{ada}"),
            Some(key),
            Some(&json!({"firstName": "Ada"})),
            &[],
        )
        .await;
    assert_eq!(same.status, 200, "{}", same.body);

    // The same at the SQL level, as the application role: a rolled-back insert.
    let role = app.db.app_role().await;
    let txn = as_tenant(&role, &acme.id).await;
    exec(&txn, &format!("INSERT INTO contacts (tenant_id, id, first_name) VALUES ('{}', gen_random_uuid(), 'Ghost')", acme.id))
        .await
        .expect("insert");
    assert_eq!(
        count(&txn, "SELECT count(*) FROM events").await,
        i64::try_from(before).expect("small") + 1
    );
    txn.rollback().await.expect("rollback");

    // A whole batch that succeeds is one event per contact, and once its events show,
    // so does everything committed before it: none came from the writes above.
    let items: Vec<Value> = (0..100)
        .map(|i| json!({"firstName": format!("Q{i}"), "email": format!("q{i}@example.com")}))
        .collect();
    let batch = app
        .post(
            "/v1/contacts/batch",
            key,
            &json!({"mode": "create", "items": items}),
        )
        .await;
    assert_eq!(batch.status, 201, "{}", batch.body);
    let log = event_log_when(&app, key, |log| log.len() >= before + 100).await;
    assert_eq!(log.len(), before + 100, "{:?}", types(&log));
    assert!(log[before..].iter().all(|e| e["type"] == "contact.created"));
}

#[actix_rt::test]
async fn subscriptions_receive_only_the_events_they_ask_for_and_only_their_tenants() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let created_only = Receiver::start(vec![]);
    let companies = Receiver::start(vec![]);
    let everything = Receiver::start(vec![]);
    let other_tenant = Receiver::start(vec![]);
    subscribe(
        &app,
        &acme.key,
        &created_only.url,
        json!(["contact.created"]),
    )
    .await;
    subscribe(&app, &acme.key, &companies.url, json!(["company.*"])).await;
    subscribe(&app, &acme.key, &everything.url, json!(["*"])).await;
    subscribe(&app, &globex.key, &other_tenant.url, json!(["*"])).await;

    let ada = id_of(
        &app.post("/v1/contacts", &acme.key, &json!({"firstName": "Ada"}))
            .await,
    );
    id_of(
        &app.call(
            "PATCH",
            &format!("/v1/contacts/{ada}"),
            Some(&acme.key),
            Some(&json!({"title": "CTO"})),
            &[],
        )
        .await,
    );
    id_of(
        &app.post("/v1/companies", &acme.key, &json!({"name": "Initech"}))
            .await,
    );
    id_of(
        &app.post("/v1/contacts", &globex.key, &json!({"firstName": "Hank"}))
            .await,
    );
    start_worker(&app);

    let all = everything.wait_for(3).await;
    other_tenant.wait_for(1).await;
    created_only.wait_for(1).await;
    companies.wait_for(1).await;
    // Give any stray delivery time to arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kinds = |receiver: &Receiver| -> Vec<(String, String)> {
        receiver
            .all()
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).expect("JSON");
                (
                    body["type"].as_str().expect("type").to_owned(),
                    body["tenantId"].as_str().expect("tenant").to_owned(),
                )
            })
            .collect()
    };
    let a = acme.id.clone();
    let mut everything_kinds = kinds(&everything);
    everything_kinds.sort();
    assert_eq!(
        everything_kinds,
        vec![
            ("company.created".to_owned(), a.clone()),
            ("contact.created".to_owned(), a.clone()),
            ("contact.updated".to_owned(), a.clone()),
        ]
    );
    assert_eq!(
        kinds(&created_only),
        vec![("contact.created".to_owned(), a.clone())]
    );
    assert_eq!(kinds(&companies), vec![("company.created".to_owned(), a)]);
    assert_eq!(
        kinds(&other_tenant),
        vec![("contact.created".to_owned(), globex.id.clone())],
        "Acme's events never reach Globex's endpoint"
    );
    assert_eq!(all.len(), 3);
}

#[actix_rt::test]
async fn a_receiver_resumes_after_the_last_event_id_it_kept() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    for name in ["Ada", "Grace", "Edsger"] {
        let made = app
            .post("/v1/contacts", &acme.key, &json!({"firstName": name}))
            .await;
        assert_eq!(made.status, 201);
    }
    let made = app
        .post("/v1/contacts", &globex.key, &json!({"firstName": "Other"}))
        .await;
    assert_eq!(made.status, 201);
    // The default pipeline's creation, then the three contacts.
    let log = event_log_when(&app, &acme.key, |log| log.len() == 4).await;
    let kept = log[1]["id"].as_str().expect("an evt_ id");
    assert!(kept.starts_with("evt_"));
    let resumed = app
        .get(&format!("/v1/events?after={kept}"), &acme.key)
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    let ids: Vec<&Value> = resumed.body["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids, vec![&log[2]["id"], &log[3]["id"]], "the two after it");

    let theirs = event_log_when(&app, &globex.key, |log| log.len() == 2).await;
    let foreign = theirs[0]["id"].as_str().expect("id");
    let across = app
        .get(&format!("/v1/events?after={foreign}"), &acme.key)
        .await;
    assert_eq!(
        across.status, 404,
        "another tenant's event is no position here"
    );
    assert_eq!(across.code(), "NOT_FOUND");
    let unknown = app
        .get(
            "/v1/events?after=evt_0123456789abcdef0123456789abcdef",
            &acme.key,
        )
        .await;
    assert_eq!(unknown.status, 404);
    for malformed in [
        "evt_123",
        "evt_0123456789ABCDEF0123456789ABCDEF",
        "evt_zz",
        "-1",
    ] {
        let reply = app
            .get(&format!("/v1/events?after={malformed}"), &acme.key)
            .await;
        assert_eq!(reply.status, 400, "{malformed}: {}", reply.body);
        assert_eq!(reply.code(), "VALIDATION_FAILED");
    }
}

/// The one event a receiver got of `kind` about `id`.
fn delivered(receiver: &Receiver, kind: &str, id: &str) -> Value {
    let found: Vec<Value> = receiver
        .all()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).expect("a JSON body"))
        .filter(|e| e["type"] == kind && e["data"]["object"]["id"] == id)
        .collect();
    assert_eq!(found.len(), 1, "one delivered {kind} for {id}");
    found[0].clone()
}

#[actix_rt::test]
async fn a_delivered_body_the_event_log_and_the_resource_agree_field_for_field() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let key = acme.key.as_str();
    let receiver = Receiver::start(vec![]);
    subscribe(&app, key, &receiver.url, json!(["contact.*", "lead.*"])).await;

    let company = id_of(
        &app.post("/v1/companies", key, &json!({"name": "Initech"}))
            .await,
    );
    let contact = id_of(
        &app.post(
            "/v1/contacts",
            key,
            &json!({"firstName": "Ada", "email": "ada@example.com", "phone": "+44 20 7946 0958",
                    "tags": ["vip", "partner"], "companyId": company,
                    "customFields": {"plan": "gold", "seats": 12, "trial": false}}),
        )
        .await,
    );
    let updated = app
        .call(
            "PATCH",
            &format!("/v1/contacts/{contact}"),
            Some(key),
            Some(&json!({"title": "CTO", "customFields": {"plan": "platinum"}})),
            &[],
        )
        .await;
    id_of(&updated);
    let pipeline = app.get("/v1/pipelines", key).await.body["data"][0].clone();
    let stage = pipeline["stages"][0]["id"]
        .as_str()
        .expect("a stage")
        .to_owned();
    let lead = id_of(
        &app.post(
            "/v1/leads",
            key,
            &json!({"title": "Site licence", "pipelineId": pipeline["id"], "stageId": stage,
                    "value": 1_250_000, "currency": "EUR", "expectedCloseDate": "2026-03-31",
                    "contactId": contact}),
        )
        .await,
    );

    start_worker(&app);
    receiver.wait_for(3).await;
    let log = event_log_when(&app, key, |log| {
        log.iter().any(|e| e["type"] == "lead.created")
    })
    .await;

    for (kind, id, path) in [
        (
            "contact.updated",
            &contact,
            format!("/v1/contacts/{contact}"),
        ),
        ("lead.created", &lead, format!("/v1/leads/{lead}")),
    ] {
        let sent = delivered(&receiver, kind, id);
        let listed = event(&log, kind, id);
        assert_eq!(&sent, listed, "the delivered body is the listed event");
        let shown = app.get(&path, key).await;
        assert_eq!(shown.status, 200);
        assert_eq!(
            sent["data"]["object"], shown.body["data"],
            "{kind}: the event's object is what {path} shows"
        );
    }

    // The update, in the API's shape before and after.
    let sent = delivered(&receiver, "contact.updated", &contact);
    let data = &sent["data"];
    assert_eq!(data["changedFields"], json!(["customFields", "title"]));
    assert_eq!(
        data["previous"]["customFields"],
        json!({"plan": "gold", "seats": 12, "trial": false})
    );
    assert_eq!(data["previous"]["title"], Value::Null);
    assert_eq!(data["previous"]["tags"], json!(["vip", "partner"]));
    assert_eq!(data["object"]["phone"], "+44 20 7946 0958");
    assert_eq!(data["previous"]["version"], 1);
    assert_eq!(data["object"]["version"], 2);
    let created = &delivered(&receiver, "lead.created", &lead)["data"];
    assert_eq!(created["object"]["value"], 1_250_000);
    assert_eq!(created["object"]["currency"], "EUR");
    assert_eq!(created["object"]["expectedCloseDate"], "2026-03-31");
    assert!(created.get("previous").is_none() && created.get("changedFields").is_none());
}
