//! Members over HTTP with the real PostgreSQL: roles and scopes on every kind of endpoint,
//! invitations, changing and removing members (the last owner stays), what narrow keys and
//! demo sandboxes may not do, and tenant isolation of keys and members.

use serde_json::json;

use crate::helpers::{scalar_i64, spawn_app};
use crate::identity::{PASSWORD, accept, invite, join, log_in, remove_member, set_role, sign_up};

#[actix_rt::test]
async fn roles_and_scopes_are_enforced_on_every_kind_of_endpoint() {
    let app = spawn_app().await;
    let (owner, _, _) = sign_up(&app, "owner@example.com").await;
    for (email, role) in [
        ("member@example.com", "member"),
        ("viewer@example.com", "viewer"),
    ] {
        join(&app, &owner, email, role).await;
    }
    let member =
        log_in(&app, "member@example.com", PASSWORD).await.body["data"]["session"]["token"]
            .as_str()
            .expect("t")
            .to_owned();
    let viewer =
        log_in(&app, "viewer@example.com", PASSWORD).await.body["data"]["session"]["token"]
            .as_str()
            .expect("t")
            .to_owned();

    let write = app
        .post("/v1/contacts", &viewer, &json!({"firstName": "x"}))
        .await;
    assert_eq!(write.status, 403, "a viewer cannot write");
    assert_eq!(write.code(), "FORBIDDEN");
    assert_eq!(
        app.get("/v1/contacts", &viewer).await.status,
        200,
        "but can read"
    );
    assert_eq!(
        app.post("/v1/contacts", &member, &json!({"firstName": "x"}))
            .await
            .status,
        201,
        "a member writes"
    );

    let key = app
        .post(
            "/v1/api-keys",
            &member,
            &json!({"name": "mine", "scopes": ["*"]}),
        )
        .await;
    assert_eq!(key.status, 403, "a member cannot manage keys");
    assert_eq!(app.get("/v1/api-keys", &member).await.status, 403);
    assert_eq!(
        app.get("/v1/members", &member).await.status,
        403,
        "nor members"
    );

    let reader = app
        .post(
            "/v1/api-keys",
            &owner,
            &json!({"name": "reader", "scopes": ["contacts:read"]}),
        )
        .await;
    assert_eq!(reader.status, 201, "{}", reader.body);
    let reader_key = reader.body["data"]["key"].as_str().expect("key").to_owned();
    let denied = app
        .post("/v1/contacts", &reader_key, &json!({"firstName": "y"}))
        .await;
    assert_eq!(denied.status, 403, "a contacts:read key cannot POST");
    assert_eq!(denied.body["details"]["requiredScope"], "contacts:write");
    assert_eq!(app.get("/v1/contacts", &reader_key).await.status, 200);
    assert_eq!(
        app.contact_rows().await,
        1,
        "only the member's contact exists"
    );
}

#[actix_rt::test]
async fn members_are_added_changed_and_removed_but_the_last_owner_stays() {
    let app = spawn_app().await;
    let (owner, _, owner_id) = sign_up(&app, "owner@example.com").await;
    let (_, _, _) = sign_up(&app, "grace@example.com").await;

    let invited = invite(&app, &owner, "grace@example.com", "admin").await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    let token = invited.body["data"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let existing = accept(&app, &token, PASSWORD).await;
    assert_eq!(existing.status, 200, "{}", existing.body);
    let grace_id = existing.body["data"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        accept(&app, &token, PASSWORD).await.status,
        404,
        "an invitation works once"
    );
    let twice = invite(&app, &owner, "grace@example.com", "admin").await;
    let twice = accept(
        &app,
        twice.body["data"]["token"].as_str().expect("token"),
        PASSWORD,
    )
    .await;
    assert_eq!(twice.status, 409, "already a member");
    let new = invite(&app, &owner, "new@example.com", "member").await;
    let no_password = app
        .call(
            "POST",
            "/v1/auth/accept-invitation",
            None,
            Some(&json!({"token": new.body["data"]["token"]})),
            &[],
        )
        .await;
    assert_eq!(
        no_password.status, 400,
        "a new account sets its own password"
    );

    let list = app.get("/v1/members", &owner).await;
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(2));

    let demote_self = set_role(&app, &owner, &owner_id, "admin").await;
    assert_eq!(
        demote_self.status, 409,
        "last owner cannot be demoted: {}",
        demote_self.body
    );
    let remove_self = remove_member(&app, &owner, &owner_id).await;
    assert_eq!(remove_self.status, 409, "nor removed");

    let grace_session = log_in(&app, "grace@example.com", PASSWORD).await;
    assert_eq!(grace_session.status, 200);
    let changed = set_role(&app, &owner, &grace_id, "viewer").await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.body["data"]["role"], "viewer");
    let removed = remove_member(&app, &owner, &grace_id).await;
    assert_eq!(removed.status, 200);
    assert_eq!(
        app.get("/v1/members", &owner).await.body["data"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[actix_rt::test]
async fn tenant_a_cannot_touch_tenant_b_keys_or_members() {
    let app = spawn_app().await;
    let (a, _, _) = sign_up(&app, "a@example.com").await;
    let (b, _, b_user) = sign_up(&app, "b@example.com").await;
    let b_key = app
        .post("/v1/api-keys", &b, &json!({"name": "b", "scopes": ["*"]}))
        .await;
    let b_key_id = b_key.body["data"]["id"].as_str().expect("id").to_owned();
    let b_secret = b_key.body["data"]["key"].as_str().expect("key").to_owned();
    assert_eq!(
        app.get(&format!("/v1/api-keys/{b_key_id}"), &a)
            .await
            .status,
        404
    );
    assert_eq!(
        app.call(
            "DELETE",
            &format!("/v1/api-keys/{b_key_id}"),
            Some(&a),
            None,
            &[]
        )
        .await
        .status,
        404
    );
    assert_eq!(
        app.get("/v1/me", &b_secret).await.status,
        200,
        "B's key still works"
    );
    let patch = set_role(&app, &a, &b_user, "viewer").await;
    assert_eq!(patch.status, 404);
    assert_eq!(remove_member(&app, &a, &b_user).await.status, 404);
    let listed = app.get("/v1/members", &a).await.body.to_string();
    assert!(!listed.contains("b@example.com"));
}

#[actix_rt::test]
async fn narrow_keys_and_demo_sandboxes_cannot_invite_people() {
    let app = spawn_app().await;
    let (owner, _, _) = sign_up(&app, "owner@example.com").await;
    let narrow = app
        .post(
            "/v1/api-keys",
            &owner,
            &json!({"name": "members only", "scopes": ["members:manage"]}),
        )
        .await;
    let narrow = narrow.body["data"]["key"].as_str().expect("key").to_owned();
    assert_eq!(
        app.get("/v1/members", &narrow).await.status,
        200,
        "it can list"
    );
    let create = invite(&app, &narrow, "escalate@example.com", "admin").await;
    assert_eq!(
        create.status, 403,
        "but cannot hand out admin power: {}",
        create.body
    );

    let demo = app
        .call("POST", "/v1/auth/demo-login", None, None, &[])
        .await;
    let demo = demo.body["data"]["session"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let planted = invite(&app, &demo, "victim@corp.example", "viewer").await;
    assert_eq!(
        planted.status, 403,
        "a sandbox cannot plant identities: {}",
        planted.body
    );
    let db = app.db.owner().await;
    assert_eq!(
        scalar_i64(
            &db,
            "SELECT count(*) FROM users WHERE email = 'victim@corp.example'"
        )
        .await,
        0
    );
}
