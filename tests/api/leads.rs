//! Leads, moves and activities over HTTP.

use serde_json::{Value, json};

use crate::events::event_log_when;
use crate::helpers::{TestApp, scalar_i64, spawn_app};

async fn default_pipeline(app: &TestApp, key: &str) -> Value {
    app.get("/v1/pipelines", key).await.body["data"][0].clone()
}

fn stage(pipeline: &Value, index: usize) -> String {
    pipeline["stages"][index]["id"]
        .as_str()
        .expect("stage")
        .to_owned()
}

#[actix_rt::test]
async fn a_lead_starts_in_the_default_pipeline_and_moves_with_a_note_on_its_timeline() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let pipeline = default_pipeline(&app, &acme.key).await;
    let contact = app
        .post("/v1/contacts", &acme.key, &json!({"firstName": "Ada"}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let created = app
        .post("/v1/leads", &acme.key, &json!({"title": "500 rockets", "contactId": contact, "value": 1_250_000, "currency": "EUR"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let lead = &created.body["data"];
    let id = lead["id"].as_str().expect("id").to_owned();
    assert_eq!(lead["pipelineId"], pipeline["id"]);
    assert_eq!(lead["stageId"], stage(&pipeline, 0).as_str());
    assert_eq!(lead["status"], "open");
    assert_eq!(lead["value"], 1_250_000);

    let won = app
        .post(
            &format!("/v1/leads/{id}/move"),
            &acme.key,
            &json!({"stageId": stage(&pipeline, 4)}),
        )
        .await;
    assert_eq!(won.status, 200, "{}", won.body);
    assert_eq!(
        won.body["data"]["status"], "won",
        "the status follows the stage kind"
    );
    assert_eq!(won.body["data"]["version"], 2);

    let patched = app
        .call(
            "PATCH",
            &format!("/v1/leads/{id}"),
            Some(&acme.key),
            Some(&json!({"stageId": stage(&pipeline, 5)})),
            &[],
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(
        patched.body["data"]["status"], "lost",
        "PATCH of stageId follows the same rule"
    );

    let timeline = app
        .get(&format!("/v1/leads/{id}/activities"), &acme.key)
        .await;
    let subjects: Vec<&str> = timeline.body["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["subject"].as_str())
        .collect();
    assert_eq!(
        subjects,
        ["Moved from Won to Lost", "Moved from Qualified to Won"],
        "newest first"
    );
    let on_contact = app
        .get(&format!("/v1/contacts/{contact}/activities"), &acme.key)
        .await;
    assert_eq!(
        on_contact.body["data"].as_array().map(Vec::len),
        Some(2),
        "moves show on the contact's timeline too"
    );
}

#[actix_rt::test]
async fn a_lead_stage_must_belong_to_its_pipeline_and_tenant_in_the_database() {
    let app = spawn_app().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let sales = default_pipeline(&app, &a.key).await;
    let other = app
        .post(
            "/v1/pipelines",
            &a.key,
            &json!({"name": "Other", "stages": [{"name": "Only"}]}),
        )
        .await
        .body["data"]
        .clone();
    let mismatch = app
        .post(
            "/v1/leads",
            &a.key,
            &json!({"title": "x", "pipelineId": sales["id"], "stageId": stage(&other, 0)}),
        )
        .await;
    assert_eq!(mismatch.status, 400, "{}", mismatch.body);
    assert!(mismatch.body["details"]["fields"]["stageId"].is_array());
    let b_stage = stage(&default_pipeline(&app, &b.key).await, 0);
    assert_eq!(
        app.post(
            "/v1/leads",
            &a.key,
            &json!({"title": "x", "stageId": b_stage})
        )
        .await
        .status,
        400
    );
    let b_contact = app
        .post("/v1/contacts", &b.key, &json!({"firstName": "Bob"}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let forged = app
        .post(
            "/v1/leads",
            &a.key,
            &json!({"title": "x", "contactId": b_contact}),
        )
        .await;
    assert_eq!(forged.status, 400, "another tenant's contact is refused");
    assert!(forged.body["details"]["fields"]["contactId"].is_array());
    let bad_money = app
        .post("/v1/leads", &a.key, &json!({"title": "x", "value": 10}))
        .await;
    assert_eq!(bad_money.status, 400, "a value needs a currency");

    let lead = app
        .post("/v1/leads", &a.key, &json!({"title": "ok"}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let db = app.db.owner().await;
    let refused = sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!(
            "UPDATE leads SET stage_id = '{}' WHERE id = '{lead}'",
            stage(&other, 0)
        ),
    )
    .await;
    assert!(
        refused.is_err(),
        "the database keeps a lead's stage in its pipeline"
    );
    assert_eq!(scalar_i64(&db, "SELECT count(*) FROM leads").await, 1);
}

#[actix_rt::test]
async fn stages_and_pipelines_holding_leads_cannot_be_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let pipeline = app
        .post(
            "/v1/pipelines",
            &acme.key,
            &json!({"name": "P", "stages": [{"name": "A"}, {"name": "B"}]}),
        )
        .await
        .body["data"]
        .clone();
    let id = pipeline["id"].as_str().expect("id").to_owned();
    app.post(
        "/v1/leads",
        &acme.key,
        &json!({"title": "held", "stageId": stage(&pipeline, 0)}),
    )
    .await;
    let stage_delete = app
        .call(
            "DELETE",
            &format!("/v1/pipelines/{id}/stages/{}", stage(&pipeline, 0)),
            Some(&acme.key),
            None,
            &[],
        )
        .await;
    assert_eq!(stage_delete.status, 409, "{}", stage_delete.body);
    assert_eq!(
        app.call(
            "DELETE",
            &format!("/v1/pipelines/{id}"),
            Some(&acme.key),
            None,
            &[]
        )
        .await
        .status,
        409
    );
    assert_eq!(
        app.call(
            "DELETE",
            &format!("/v1/pipelines/{id}/stages/{}", stage(&pipeline, 1)),
            Some(&acme.key),
            None,
            &[]
        )
        .await
        .status,
        200,
        "an empty stage goes"
    );
}

#[actix_rt::test]
async fn leads_filter_by_status_stage_and_value() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let pipeline = default_pipeline(&app, &acme.key).await;
    for (title, value, stage_index) in [("small", 100, 0), ("big", 10_000, 0), ("won", 5_000, 4)] {
        let body = json!({"title": title, "value": value, "currency": "USD", "stageId": stage(&pipeline, stage_index)});
        assert_eq!(app.post("/v1/leads", &acme.key, &body).await.status, 201);
    }
    let titles = |reply: &crate::helpers::Reply| -> Vec<String> {
        let mut t: Vec<String> = reply.body["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|l| l["title"].as_str().unwrap_or("").to_owned())
            .collect();
        t.sort();
        t
    };
    assert_eq!(
        titles(&app.get("/v1/leads?status=won", &acme.key).await),
        ["won"]
    );
    assert_eq!(
        titles(
            &app.get(
                &format!("/v1/leads?stageId={}", stage(&pipeline, 0)),
                &acme.key
            )
            .await
        ),
        ["big", "small"]
    );
    assert_eq!(
        titles(
            &app.get("/v1/leads?minValue=1000&maxValue=6000", &acme.key)
                .await
        ),
        ["won"]
    );
}

#[actix_rt::test]
async fn activities_link_to_records_of_their_tenant_and_go_with_them() {
    let app = spawn_app().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let contact = app
        .post("/v1/contacts", &a.key, &json!({"firstName": "Ada"}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let lead = app
        .post(
            "/v1/leads",
            &a.key,
            &json!({"title": "deal", "contactId": contact}),
        )
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let call = app
        .post("/v1/activities", &a.key, &json!({"type": "call", "subject": "Intro call", "body": "line 1\nline 2", "contactId": contact, "dueAt": "2030-01-01T09:00:00Z"}))
        .await;
    assert_eq!(call.status, 201, "{}", call.body);
    let call_id = call.body["data"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.post(
            "/v1/activities",
            &a.key,
            &json!({"type": "note", "subject": "nowhere"})
        )
        .await
        .status,
        400,
        "an activity needs a link"
    );
    let b_contact = app
        .post("/v1/contacts", &b.key, &json!({"firstName": "Bob"}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let forged = app
        .post(
            "/v1/activities",
            &a.key,
            &json!({"type": "note", "subject": "x", "contactId": b_contact}),
        )
        .await;
    assert_eq!(forged.status, 400, "another tenant's contact is refused");
    assert_eq!(
        app.get(&format!("/v1/activities/{call_id}"), &b.key)
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&format!("/v1/contacts/{contact}/activities"), &b.key)
            .await
            .status,
        404
    );
    assert_eq!(
        app.call(
            "DELETE",
            &format!("/v1/activities/{call_id}"),
            Some(&b.key),
            None,
            &[]
        )
        .await
        .status,
        404
    );

    let done = app
        .call("PUT", &format!("/v1/activities/{call_id}"), Some(&a.key), Some(&json!({"type": "call", "subject": "Intro call", "contactId": contact, "completedAt": "2030-01-01T09:30:00Z"})), &[("If-Match", "\"1\"")])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body["data"]["completedAt"].is_string());

    app.call(
        "DELETE",
        &format!("/v1/contacts/{contact}"),
        Some(&a.key),
        None,
        &[],
    )
    .await;
    assert_eq!(
        app.get(&format!("/v1/activities/{call_id}"), &a.key)
            .await
            .status,
        404,
        "the contact's activities went with it"
    );
    let orphan = app.get(&format!("/v1/leads/{lead}"), &a.key).await;
    assert_eq!(
        orphan.body["data"]["contactId"],
        Value::Null,
        "the lead stays, without the contact"
    );
}

#[actix_rt::test]
async fn tenant_a_key_on_tenant_b_leads_is_404_and_changes_nothing() {
    let app = spawn_app().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let lead = app
        .post("/v1/leads", &b.key, &json!({"title": "B's deal"}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/v1/leads/{lead}");
    let b_stage = stage(&default_pipeline(&app, &b.key).await, 4);
    for (method, route, body) in [
        ("GET", path.clone(), None),
        ("PUT", path.clone(), Some(json!({"title": "x"}))),
        ("PATCH", path.clone(), Some(json!({"title": "x"}))),
        ("DELETE", path.clone(), None),
        (
            "POST",
            format!("{path}/move"),
            Some(json!({"stageId": b_stage})),
        ),
        ("GET", format!("{path}/activities"), None),
    ] {
        assert_eq!(
            app.call(method, &route, Some(&a.key), body.as_ref(), &[])
                .await
                .status,
            404,
            "{method} {route}"
        );
    }
    let still = app.get(&path, &b.key).await;
    assert_eq!(still.body["data"]["title"], "B's deal");
    assert_eq!(still.body["data"]["version"], 1);
}

#[actix_rt::test]
async fn deleting_a_stage_with_move_to_moves_its_leads_first_with_notes() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let pipeline = app
        .post(
            "/v1/pipelines",
            &acme.key,
            &json!({"name": "P", "stages": [{"name": "A"}, {"name": "B"}]}),
        )
        .await
        .body["data"]
        .clone();
    let id = pipeline["id"].as_str().expect("id").to_owned();
    let (a, b) = (stage(&pipeline, 0), stage(&pipeline, 1));
    let lead = app
        .post(
            "/v1/leads",
            &acme.key,
            &json!({"title": "held", "stageId": a}),
        )
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let to_itself = app
        .call(
            "DELETE",
            &format!("/v1/pipelines/{id}/stages/{a}?moveTo={a}"),
            Some(&acme.key),
            None,
            &[],
        )
        .await;
    assert_eq!(to_itself.status, 400);
    let deleted = app
        .call(
            "DELETE",
            &format!("/v1/pipelines/{id}/stages/{a}?moveTo={b}"),
            Some(&acme.key),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(
        deleted.body["data"]["stages"].as_array().map(Vec::len),
        Some(1)
    );
    let moved = app.get(&format!("/v1/leads/{lead}"), &acme.key).await;
    assert_eq!(moved.body["data"]["stageId"], b.as_str());
    let timeline = app
        .get(&format!("/v1/leads/{lead}/activities"), &acme.key)
        .await;
    assert_eq!(timeline.body["data"][0]["subject"], "Moved from A to B");
}

#[actix_rt::test]
async fn editing_a_stage_kind_re_statuses_its_leads_and_says_so_in_an_event() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let pipeline = default_pipeline(&app, &acme.key).await;
    let id = pipeline["id"].as_str().expect("id").to_owned();
    let negotiation = stage(&pipeline, 3);
    let lead = app
        .post(
            "/v1/leads",
            &acme.key,
            &json!({"title": "Site licence", "stageId": negotiation}),
        )
        .await;
    assert_eq!(lead.body["data"]["status"], "open", "{}", lead.body);
    let lead_id = lead.id();
    let etag = lead.header("etag").expect("an ETag");

    let edited = app
        .call(
            "PATCH",
            &format!("/v1/pipelines/{id}/stages/{negotiation}"),
            Some(&acme.key),
            Some(&json!({"kind": "won"})),
            &[],
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    let after = app.get(&format!("/v1/leads/{lead_id}"), &acme.key).await;
    assert_eq!(after.body["data"]["status"], "won");
    assert_ne!(
        after.header("etag").expect("an ETag"),
        etag,
        "its ETag moved"
    );
    let won = app.get("/v1/leads?status=won", &acme.key).await;
    assert_eq!(won.body["data"][0]["id"], lead_id.as_str());

    let log = event_log_when(&app, &acme.key, |log| {
        log.iter()
            .any(|e| e["type"] == "lead.updated" && e["data"]["object"]["id"] == lead_id.as_str())
    })
    .await;
    let update = log
        .iter()
        .find(|e| e["type"] == "lead.updated")
        .expect("lead.updated");
    assert_eq!(update["data"]["changedFields"], json!(["status"]));
    assert_eq!(update["data"]["previous"]["status"], "open");
}

#[actix_rt::test]
async fn a_task_is_completed_with_a_patch_and_a_patch_cannot_unlink_it_from_everything() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let contact = app
        .post("/v1/contacts", &acme.key, &json!({"firstName": "Ada"}))
        .await
        .id();
    let task = app
        .post(
            "/v1/activities",
            &acme.key,
            &json!({"type": "task", "subject": "Send the quote", "body": "v2 pricing",
                    "dueAt": "2030-01-01T09:00:00Z", "contactId": contact}),
        )
        .await;
    assert_eq!(task.status, 201, "{}", task.body);
    let id = task.id();
    let path = format!("/v1/activities/{id}");
    let patch = |body: Value, if_match: &'static str| {
        let (app, key, path) = (&app, acme.key.as_str(), path.as_str());
        async move {
            let headers: Vec<(&str, &str)> = if if_match.is_empty() {
                vec![]
            } else {
                vec![("If-Match", if_match)]
            };
            app.call("PATCH", path, Some(key), Some(&body), &headers)
                .await
        }
    };

    let done = patch(
        json!({"completedAt": "2030-01-01T10:30:00Z", "body": null}),
        "\"1\"",
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let data = &done.body["data"];
    assert_eq!(data["completedAt"], "2030-01-01T10:30:00Z");
    assert_eq!(data["body"], Value::Null, "null clears");
    assert_eq!(data["subject"], "Send the quote", "absent keeps");
    assert_eq!(data["dueAt"], "2030-01-01T09:00:00Z");
    assert_eq!(data["contactId"], contact.as_str());
    assert_eq!(data["version"], 2);

    let stale = patch(json!({"subject": "x"}), "\"1\"").await;
    assert_eq!(stale.status, 412, "{}", stale.body);
    let unlinked = patch(json!({"contactId": null}), "").await;
    assert_eq!(unlinked.status, 400, "{}", unlinked.body);
    assert_eq!(unlinked.code(), "VALIDATION_FAILED");
    let bad_time = patch(json!({"dueAt": "tomorrow"}), "").await;
    assert_eq!(bad_time.status, 400, "{}", bad_time.body);
    assert!(bad_time.body["details"]["fields"]["dueAt"].is_array());
    let other = app.tenant("Globex").await;
    let foreign = app
        .call(
            "PATCH",
            &path,
            Some(&other.key),
            Some(&json!({"subject": "mine"})),
            &[],
        )
        .await;
    assert_eq!(foreign.status, 404);

    let now = app.get(&path, &acme.key).await.body["data"].clone();
    assert_eq!(now["version"], 2, "the refused patches changed nothing");
    assert_eq!(now["subject"], "Send the quote");
    let log = event_log_when(&app, &acme.key, |log| {
        log.iter().any(|e| e["type"] == "activity.updated")
    })
    .await;
    let updated: Vec<&Value> = log
        .iter()
        .filter(|e| e["type"] == "activity.updated")
        .collect();
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0]["data"]["changedFields"],
        json!(["body", "completedAt"])
    );
}
