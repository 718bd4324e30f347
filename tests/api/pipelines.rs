//! Pipelines and stages over HTTP.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn stage_names(pipeline: &Value) -> Vec<String> {
    pipeline["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[actix_rt::test]
async fn every_new_tenant_starts_with_a_default_pipeline() {
    let app = spawn_app().await;
    let provisioned = app.tenant("Acme").await;
    let list = app.get("/v1/pipelines", &provisioned.key).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let pipelines = list.body["data"].as_array().expect("list");
    assert_eq!(pipelines.len(), 1);
    assert_eq!(pipelines[0]["isDefault"], true);
    assert_eq!(
        stage_names(&pipelines[0]),
        [
            "Qualified",
            "Contact made",
            "Proposal sent",
            "Negotiation",
            "Won",
            "Lost"
        ]
    );
    assert_eq!(pipelines[0]["stages"][4]["kind"], "won");

    let signup = app
        .call("POST", "/v1/auth/signup", None, Some(&json!({"tenantName": "B", "name": "B", "email": "b@example.com", "password": "correct horse battery"})), &[])
        .await;
    let token = signup.body["data"]["session"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        app.get("/v1/pipelines", &token).await.body["data"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "sign-up too"
    );

    let id = pipelines[0]["id"].as_str().expect("id").to_owned();
    let refused = app
        .call(
            "DELETE",
            &format!("/v1/pipelines/{id}"),
            Some(&provisioned.key),
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, 409, "the default pipeline stays");
}

#[actix_rt::test]
async fn stages_are_added_changed_reordered_and_deleted() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let created = app
        .post(
            "/v1/pipelines",
            &acme.key,
            &json!({"name": "Partners", "stages": [
                {"name": "Intro"}, {"name": "Signed", "kind": "won"}
            ]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let data = &created.body["data"];
    let id = data["id"].as_str().expect("id").to_owned();
    assert_eq!(data["isDefault"], false);
    assert_eq!(data["stages"][0]["probability"], 50);
    assert_eq!(data["stages"][1]["probability"], 100);
    let path = format!("/v1/pipelines/{id}");

    let added = app
        .call(
            "POST",
            &format!("{path}/stages"),
            Some(&acme.key),
            Some(&json!({"name": "Pilot", "probability": 60, "position": 1})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(
        stage_names(&added.body["data"]),
        ["Intro", "Pilot", "Signed"]
    );
    assert_eq!(added.body["data"]["version"], 2);
    let stale = app
        .call(
            "POST",
            &format!("{path}/stages"),
            Some(&acme.key),
            Some(&json!({"name": "X"})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, 412);

    let ids: Vec<String> = added.body["data"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["id"].as_str().unwrap_or("").to_owned())
        .collect();
    let changed = app
        .call(
            "PATCH",
            &format!("{path}/stages/{}", ids[1]),
            Some(&acme.key),
            Some(&json!({"name": "Paid pilot"})),
            &[],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["data"]["stages"][1]["name"], "Paid pilot");
    assert_eq!(changed.body["data"]["stages"][1]["probability"], 60, "kept");

    let reordered = app
        .call(
            "POST",
            &format!("{path}/stages/reorder"),
            Some(&acme.key),
            Some(&json!({"stageIds": [ids[2], ids[0], ids[1]]})),
            &[],
        )
        .await;
    assert_eq!(reordered.status, 200, "{}", reordered.body);
    assert_eq!(
        stage_names(&reordered.body["data"]),
        ["Signed", "Intro", "Paid pilot"]
    );
    let positions: Vec<i64> = reordered.body["data"]["stages"]
        .as_array()
        .expect("s")
        .iter()
        .map(|s| s["position"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(positions, [0, 1, 2]);
    let partial = app
        .call(
            "POST",
            &format!("{path}/stages/reorder"),
            Some(&acme.key),
            Some(&json!({"stageIds": [ids[0]]})),
            &[],
        )
        .await;
    assert_eq!(partial.status, 400, "a reorder names every stage once");

    let after_delete = app
        .call(
            "DELETE",
            &format!("{path}/stages/{}", ids[0]),
            Some(&acme.key),
            None,
            &[],
        )
        .await;
    assert_eq!(
        stage_names(&after_delete.body["data"]),
        ["Signed", "Paid pilot"]
    );
    app.call(
        "DELETE",
        &format!("{path}/stages/{}", ids[1]),
        Some(&acme.key),
        None,
        &[],
    )
    .await;
    let last = app
        .call(
            "DELETE",
            &format!("{path}/stages/{}", ids[2]),
            Some(&acme.key),
            None,
            &[],
        )
        .await;
    assert_eq!(last.status, 409, "a pipeline keeps at least one stage");

    let renamed = app
        .call(
            "PATCH",
            &path,
            Some(&acme.key),
            Some(&json!({"name": "Partnerships"})),
            &[],
        )
        .await;
    assert_eq!(renamed.body["data"]["name"], "Partnerships");
    assert_eq!(
        app.call("DELETE", &path, Some(&acme.key), None, &[])
            .await
            .status,
        200
    );
    assert_eq!(app.get(&path, &acme.key).await.status, 404);
}

#[actix_rt::test]
async fn tenant_a_cannot_see_or_change_tenant_b_pipelines() {
    let app = spawn_app().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let theirs = app.get("/v1/pipelines", &b.key).await.body["data"][0].clone();
    let id = theirs["id"].as_str().expect("id").to_owned();
    let stage = theirs["stages"][0]["id"]
        .as_str()
        .expect("stage")
        .to_owned();
    assert_eq!(
        app.get(&format!("/v1/pipelines/{id}"), &a.key).await.status,
        404
    );
    assert_eq!(
        app.call(
            "PATCH",
            &format!("/v1/pipelines/{id}"),
            Some(&a.key),
            Some(&json!({"name": "x"})),
            &[]
        )
        .await
        .status,
        404
    );
    assert_eq!(
        app.call(
            "PATCH",
            &format!("/v1/pipelines/{id}/stages/{stage}"),
            Some(&a.key),
            Some(&json!({"name": "x"})),
            &[]
        )
        .await
        .status,
        404
    );
    assert_eq!(
        app.call(
            "DELETE",
            &format!("/v1/pipelines/{id}/stages/{stage}"),
            Some(&a.key),
            None,
            &[]
        )
        .await
        .status,
        404
    );
    assert_eq!(
        app.post(
            &format!("/v1/pipelines/{id}/stages"),
            &a.key,
            &json!({"name": "x"})
        )
        .await
        .status,
        404
    );
    let again = app.get(&format!("/v1/pipelines/{id}"), &b.key).await;
    assert_eq!(again.body["data"]["version"], 1, "B's pipeline unchanged");
    assert_eq!(again.body["data"]["stages"][0]["name"], "Qualified");
}
