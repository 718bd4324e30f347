//! Identity over HTTP with the real PostgreSQL: sign-up, login, sessions, demo sandboxes
//! and QR login, and the helpers the other suites sign up, invite and join with (members
//! and API keys have their own modules).

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, scalar_i64, spawn_app};

pub(crate) const PASSWORD: &str = "correct horse battery";

/// Signs up and returns (session token, tenant id, user id).
pub(crate) async fn sign_up(app: &TestApp, email: &str) -> (String, String, String) {
    let reply = app
        .call(
            "POST",
            "/v1/auth/signup",
            None,
            Some(&json!({"tenantName": format!("Tenant of {email}"), "name": "Ada Lovelace", "email": email, "password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let data = &reply.body["data"];
    (
        data["session"]["token"].as_str().expect("token").to_owned(),
        data["tenant"]["id"].as_str().expect("tenant").to_owned(),
        data["user"]["id"].as_str().expect("user").to_owned(),
    )
}

pub(crate) async fn log_in(app: &TestApp, email: &str, password: &str) -> Reply {
    app.call(
        "POST",
        "/v1/auth/login",
        None,
        Some(&json!({"email": email, "password": password})),
        &[],
    )
    .await
}

async fn owner_sql(app: &TestApp, sql: &str) {
    let db = app.db.owner().await;
    db.execute_unprepared(sql).await.expect("owner SQL runs");
    let _ = db.close().await;
}

#[actix_rt::test]
async fn sign_up_me_login_and_logout_work_end_to_end() {
    let app = spawn_app().await;
    let (token, tenant, user) = sign_up(&app, "ada@example.com").await;
    assert!(token.starts_with("crm_st_"));

    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["data"]["kind"], "user");
    assert_eq!(me.body["data"]["role"], "owner");
    assert_eq!(me.body["data"]["tenant"]["id"], tenant.as_str());
    assert_eq!(me.body["data"]["user"]["id"], user.as_str());
    assert_eq!(me.body["data"]["scopes"], json!(["*"]));

    let login = log_in(&app, "ADA@example.com", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let second = login.body["data"]["session"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(login.body["data"]["tenant"]["id"], tenant.as_str());

    let out = app
        .call("POST", "/v1/auth/logout", Some(&second), None, &[])
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    let after = app.get("/v1/me", &second).await;
    assert_eq!(after.status, 401, "a logged-out session is refused");
    assert_eq!(after.code(), "UNAUTHENTICATED");
    assert_eq!(
        app.get("/v1/me", &token).await.status,
        200,
        "the other session lives on"
    );

    let db = app.db.owner().await;
    let stored = scalar_i64(
        &db,
        "SELECT count(*) FROM users WHERE password_hash LIKE '$argon2id$%'",
    )
    .await;
    assert_eq!(stored, 1, "passwords are stored as argon2id hashes");
    let plain = scalar_i64(
        &db,
        &format!("SELECT count(*) FROM users WHERE password_hash LIKE '%{PASSWORD}%'"),
    )
    .await;
    assert_eq!(plain, 0);
}

#[actix_rt::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    sign_up(&app, "ada@example.com").await;
    let unknown = log_in(&app, "nobody@example.com", PASSWORD).await;
    let wrong = log_in(&app, "ada@example.com", "wrong horse battery").await;
    for reply in [&unknown, &wrong] {
        assert_eq!(reply.status, 401);
        assert_eq!(reply.code(), "UNAUTHENTICATED");
    }
    assert_eq!(unknown.body["error"], wrong.body["error"]);
}

#[actix_rt::test]
async fn sign_up_refuses_weak_passwords_and_taken_emails() {
    let app = spawn_app().await;
    let weak = app
        .call("POST", "/v1/auth/signup", None, Some(&json!({"tenantName": "A", "name": "A", "email": "a@example.com", "password": "short"})), &[])
        .await;
    assert_eq!(weak.status, 400);
    assert!(
        weak.body["details"]["fields"]["password"].is_array(),
        "{}",
        weak.body
    );
    let long = "x".repeat(128);
    let ok = app
        .call("POST", "/v1/auth/signup", None, Some(&json!({"tenantName": "A", "name": "A", "email": "a@example.com", "password": long})), &[])
        .await;
    assert_eq!(ok.status, 201, "a 128-character password is fine");
    let taken = app
        .call("POST", "/v1/auth/signup", None, Some(&json!({"tenantName": "B", "name": "B", "email": "A@EXAMPLE.com", "password": PASSWORD})), &[])
        .await;
    assert_eq!(taken.status, 409);
    let db = app.db.owner().await;
    assert_eq!(
        scalar_i64(&db, "SELECT count(*) FROM tenants").await,
        1,
        "the failed sign-up left nothing behind"
    );
}

/// `PATCH /v1/members/{user}` to `role`, as `by`.
pub(crate) async fn set_role(app: &TestApp, by: &str, user: &str, role: &str) -> Reply {
    app.call(
        "PATCH",
        &format!("/v1/members/{user}"),
        Some(by),
        Some(&json!({ "role": role })),
        &[],
    )
    .await
}

/// `DELETE /v1/members/{user}`, as `by`.
pub(crate) async fn remove_member(app: &TestApp, by: &str, user: &str) -> Reply {
    app.call(
        "DELETE",
        &format!("/v1/members/{user}"),
        Some(by),
        None,
        &[],
    )
    .await
}

/// `admin` invites `email` with `role` (the reply of `POST /v1/invitations`).
pub(crate) async fn invite(app: &TestApp, admin: &str, email: &str, role: &str) -> Reply {
    app.post(
        "/v1/invitations",
        admin,
        &json!({"email": email, "role": role}),
    )
    .await
}

/// Accepts an invitation token with a password (a new account's own, or the account's).
pub(crate) async fn accept(app: &TestApp, token: &str, password: &str) -> Reply {
    app.call(
        "POST",
        "/v1/auth/accept-invitation",
        None,
        Some(&json!({"token": token, "password": password})),
        &[],
    )
    .await
}

/// `admin` invites a new address with `role`, and its holder joins with [`PASSWORD`]:
/// (session token, user id).
pub(crate) async fn join(app: &TestApp, admin: &str, email: &str, role: &str) -> (String, String) {
    let invited = invite(app, admin, email, role).await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    let token = invited.body["data"]["token"].as_str().expect("token");
    let joined = accept(app, token, PASSWORD).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let data = &joined.body["data"];
    (
        data["session"]["token"]
            .as_str()
            .expect("session")
            .to_owned(),
        data["user"]["id"].as_str().expect("user").to_owned(),
    )
}

#[actix_rt::test]
async fn expired_and_idle_sessions_are_refused() {
    let app = spawn_app().await;
    let (token, _, _) = sign_up(&app, "ada@example.com").await;
    let (other, _, _) = sign_up(&app, "grace@example.com").await;
    assert_eq!(app.get("/v1/me", &token).await.status, 200);
    owner_sql(&app, "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id IN (SELECT id FROM users WHERE email = 'ada@example.com')").await;
    assert_eq!(app.get("/v1/me", &token).await.status, 401, "expired");
    owner_sql(&app, "UPDATE sessions SET last_seen_at = now() - interval '2 days' WHERE user_id IN (SELECT id FROM users WHERE email = 'grace@example.com')").await;
    assert_eq!(
        app.get("/v1/me", &other).await.status,
        401,
        "idle for longer than the timeout"
    );
}

#[actix_rt::test]
async fn two_demo_logins_never_see_each_other_and_the_sweep_deletes_expired_ones() {
    let app = spawn_app().await;
    let first = app
        .call("POST", "/v1/auth/demo-login", None, None, &[])
        .await;
    let second = app
        .call("POST", "/v1/auth/demo-login", None, None, &[])
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(first.body["data"]["tenant"]["expiresAt"].is_string());
    let a = first.body["data"]["session"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let b = second.body["data"]["session"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let a_list = app.get("/v1/contacts?limit=100", &a).await;
    let b_list = app.get("/v1/contacts?limit=100", &b).await;
    let ids = |reply: &Reply| -> Vec<String> {
        reply.body["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["id"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(ids(&a_list).len(), 12, "seeded with sample contacts");
    assert!(ids(&a_list).iter().all(|id| !ids(&b_list).contains(id)));
    for id in ids(&b_list) {
        assert_eq!(app.get(&format!("/v1/contacts/{id}"), &a).await.status, 404);
    }

    let a_tenant = first.body["data"]["tenant"]["id"]
        .as_str()
        .expect("tenant")
        .to_owned();
    owner_sql(
        &app,
        &format!(
            "UPDATE tenants SET expires_at = now() - interval '1 second' WHERE id = '{a_tenant}'"
        ),
    )
    .await;
    assert_eq!(
        app.get("/v1/me", &a).await.status,
        401,
        "an expired sandbox is closed before the sweep"
    );
    let store = adapters_postgres::PgStore::connect(
        &app.db.app_url,
        &adapters_postgres::PoolOptions::default(),
    )
    .await
    .expect("connect as crm_app");
    let db = app.db.owner().await;
    let events_of =
        |tenant: &str| format!("SELECT count(*) FROM events WHERE tenant_id = '{tenant}'");
    assert!(
        scalar_i64(&db, &events_of(&a_tenant)).await > 0,
        "the sample data was written as events"
    );
    assert_eq!(app::demo::sweep_expired(&store).await.expect("swept"), 1);
    assert_eq!(
        scalar_i64(&db, &events_of(&a_tenant)).await,
        0,
        "its events go with it (they have no foreign key to cascade)"
    );
    assert!(
        scalar_i64(&db, "SELECT count(*) FROM events").await > 0,
        "the other sandbox keeps its events"
    );
    assert_eq!(
        scalar_i64(
            &db,
            &format!("SELECT count(*) FROM tenants WHERE id = '{a_tenant}'")
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(
            &db,
            &format!("SELECT count(*) FROM contacts WHERE tenant_id = '{a_tenant}'")
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(&db, "SELECT count(*) FROM users WHERE email LIKE 'demo+%'").await,
        1,
        "the demo user went too"
    );
    assert_eq!(
        app.get("/v1/me", &b).await.status,
        200,
        "the other sandbox lives on"
    );
}

#[actix_rt::test]
async fn the_application_role_cannot_read_qr_state_or_token_hashes_directly() {
    let app = spawn_app().await;
    sign_up(&app, "ada@example.com").await;
    app.call("POST", "/v1/auth/qr-session/generate", None, None, &[])
        .await;
    let db = app.db.app_role().await;
    for sql in [
        "SELECT count(*) FROM qr_sessions",
        "SELECT token_hash FROM sessions",
        "SELECT password_hash FROM users",
    ] {
        let result = db.execute_unprepared(sql).await;
        if sql.contains("password_hash") {
            // users are readable only through membership; with no tenant set, nothing is.
            assert!(
                result.map(|r| r.rows_affected() == 0).unwrap_or(true),
                "{sql}"
            );
        } else {
            assert!(result.is_err(), "{sql} must be refused");
        }
    }
}

/// Generates a QR login request: (sessionId, code, pollToken).
async fn generate(app: &TestApp) -> (String, String, String) {
    let made = app
        .call(
            "POST",
            "/v1/auth/qr-session/generate",
            None,
            None,
            &[("User-Agent", "SmartTV/1.0")],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let data = &made.body["data"];
    assert_eq!(data["status"], "pending");
    assert!(
        data["qrSvg"]
            .as_str()
            .is_some_and(|svg| svg.contains("<svg"))
    );
    assert!(data["interval"].as_i64().is_some());
    (
        data["sessionId"].as_str().expect("id").to_owned(),
        data["code"].as_str().expect("code").to_owned(),
        data["pollToken"].as_str().expect("poll").to_owned(),
    )
}

async fn poll(app: &TestApp, session: &str, token: &str) -> Reply {
    app.call(
        "GET",
        &format!("/v1/auth/qr-session/status?sessionId={session}"),
        None,
        None,
        &[("X-Poll-Token", token)],
    )
    .await
}

#[actix_rt::test]
async fn a_qr_login_goes_from_pending_to_consumed_and_hands_out_one_session() {
    let app = spawn_app().await;
    let (phone, tenant, user) = sign_up(&app, "ada@example.com").await;
    let (session, code, poll_token) = generate(&app).await;

    assert_eq!(
        poll(&app, &session, &poll_token).await.body["data"]["status"],
        "pending"
    );
    let fast = poll(&app, &session, &poll_token).await;
    assert_eq!(fast.status, 429, "{}", fast.body);
    assert_eq!(fast.code(), "SLOW_DOWN");
    assert!(fast.header("retry-after").is_some());

    let scanned = app
        .post("/v1/auth/qr-session/scan", &phone, &json!({"code": code}))
        .await;
    assert_eq!(scanned.status, 200, "{}", scanned.body);
    assert_eq!(scanned.body["data"]["status"], "scanned");
    assert_eq!(
        scanned.body["data"]["requester"]["userAgent"],
        "SmartTV/1.0"
    );
    assert!(scanned.body["data"]["requester"]["ip"].is_string());
    let rescan = app
        .post("/v1/auth/qr-session/scan", &phone, &json!({"code": code}))
        .await;
    assert_eq!(rescan.status, 409, "codes are single-use");

    let linked = app
        .post(
            "/v1/auth/qr-session/link",
            &phone,
            &json!({"sessionId": session}),
        )
        .await;
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert_eq!(linked.body["data"]["status"], "linked");
    let relink = app
        .post(
            "/v1/auth/qr-session/link",
            &phone,
            &json!({"sessionId": session}),
        )
        .await;
    assert_eq!(relink.status, 409, "a QR code cannot be linked twice");

    let (_, _, stranger) = generate(&app).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let foreign = poll(&app, &session, &stranger).await;
    assert_eq!(
        foreign.status, 403,
        "another device's poll token collects nothing: {}",
        foreign.body
    );

    let collected = poll(&app, &session, &poll_token).await;
    assert_eq!(collected.status, 200, "{}", collected.body);
    assert_eq!(collected.body["data"]["status"], "linked");
    let token = collected.body["data"]["session"]["token"]
        .as_str()
        .expect("the session")
        .to_owned();
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.body["data"]["tenant"]["id"], tenant.as_str());
    assert_eq!(me.body["data"]["user"]["id"], user.as_str());

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = poll(&app, &session, &poll_token).await;
    assert_eq!(again.body["data"]["status"], "consumed");
    assert_eq!(again.body["data"].get("session"), None, "exactly once");
}

#[actix_rt::test]
async fn expired_cancelled_and_api_key_scans_each_answer_clearly() {
    let app = spawn_app().await;
    let (phone, _, _) = sign_up(&app, "ada@example.com").await;

    let (session, code, poll_token) = generate(&app).await;
    owner_sql(
        &app,
        &format!(
            "UPDATE qr_sessions SET expires_at = now() - interval '1 second' WHERE id = '{session}'"
        ),
    )
    .await;
    let late = app
        .post("/v1/auth/qr-session/scan", &phone, &json!({"code": code}))
        .await;
    assert_eq!(late.status, 409);
    assert_eq!(late.body["details"]["status"], "expired");
    assert_eq!(
        poll(&app, &session, &poll_token).await.body["data"]["status"],
        "expired"
    );

    let (session, code, poll_token) = generate(&app).await;
    app.post("/v1/auth/qr-session/scan", &phone, &json!({"code": code}))
        .await;
    let cancelled = app
        .post(
            "/v1/auth/qr-session/cancel",
            &phone,
            &json!({"sessionId": session}),
        )
        .await;
    assert_eq!(cancelled.body["data"]["status"], "cancelled");
    assert_eq!(
        poll(&app, &session, &poll_token).await.body["data"]["status"],
        "cancelled"
    );
    let link = app
        .post(
            "/v1/auth/qr-session/link",
            &phone,
            &json!({"sessionId": session}),
        )
        .await;
    assert_eq!(link.status, 409);

    let key = app
        .post(
            "/v1/api-keys",
            &phone,
            &json!({"name": "k", "scopes": ["*"]}),
        )
        .await;
    let key = key.body["data"]["key"].as_str().expect("key").to_owned();
    let (_, code, _) = generate(&app).await;
    let by_key = app
        .post("/v1/auth/qr-session/scan", &key, &json!({"code": code}))
        .await;
    assert_eq!(by_key.status, 403, "API keys cannot link devices");
    let unknown = app
        .post(
            "/v1/auth/qr-session/scan",
            &phone,
            &json!({"code": "crm_qr_nothing"}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let missing = poll(&app, "00000000-0000-0000-0000-000000000000", "crm_qp_x").await;
    assert_eq!(
        missing.status, 403,
        "a malformed poll token is refused before lookup"
    );
    let _ = Value::Null;
}

#[actix_rt::test]
async fn a_demo_sandbox_has_something_on_every_screen() {
    let app = spawn_app().await;
    let demo = app
        .call("POST", "/v1/auth/demo-login", None, None, &[])
        .await;
    assert_eq!(demo.status, 201, "{}", demo.body);
    let token = demo.body["data"]["session"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let list = |path: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            let reply = app.get(path, &token).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            reply.body["data"].as_array().expect("a list").clone()
        }
    };
    let companies = list("/v1/companies?limit=100").await;
    let contacts = list("/v1/contacts?limit=100").await;
    let leads = list("/v1/leads?limit=100").await;
    let activities = list("/v1/activities?limit=100").await;
    let pipelines = list("/v1/pipelines").await;
    assert!(companies.len() >= 5, "companies: {}", companies.len());
    assert!(
        contacts.iter().all(|c| c["companyId"].is_string()),
        "every contact works somewhere"
    );
    for company in &companies {
        let id = company["id"].as_str().expect("id");
        assert!(
            contacts.iter().any(|c| c["companyId"] == id),
            "{id} has people"
        );
    }
    let stages: Vec<&serde_json::Value> = pipelines
        .iter()
        .find(|p| p["isDefault"] == true)
        .expect("the default pipeline")["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .collect();
    let used: std::collections::HashSet<&str> = leads
        .iter()
        .map(|l| l["stageId"].as_str().expect("stage"))
        .collect();
    assert!(
        stages
            .iter()
            .all(|s| used.contains(s["id"].as_str().expect("id"))),
        "leads on every stage of the default pipeline"
    );
    let statuses: std::collections::HashSet<&str> =
        leads.iter().filter_map(|l| l["status"].as_str()).collect();
    assert!(statuses.contains("won") && statuses.contains("lost") && statuses.contains("open"));
    let currencies: std::collections::HashSet<&str> = leads
        .iter()
        .filter_map(|l| l["currency"].as_str())
        .collect();
    assert!(
        currencies.len() >= 2,
        "values in several currencies: {currencies:?}"
    );
    assert!(activities.len() >= leads.len(), "a timeline per lead");
    let kinds: std::collections::HashSet<&str> = activities
        .iter()
        .filter_map(|a| a["type"].as_str())
        .collect();
    assert!(kinds.len() >= 4, "several kinds of activity: {kinds:?}");
    let lead = leads[0]["id"].as_str().expect("id");
    let timeline = app
        .get(&format!("/v1/leads/{lead}/activities"), &token)
        .await;
    assert!(
        !timeline.body["data"].as_array().expect("list").is_empty(),
        "a lead's timeline"
    );
}
