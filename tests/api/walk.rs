//! A request walks forward once: what one request costs the database, counted by
//! PostgreSQL itself. The credential is resolved once per request (one call of
//! `crm_authenticate_api_key` for a key this process has not resolved before; a key it
//! resolved in the last minute is checked in the request's own statement instead, with no
//! call: `adapters-postgres/src/key_cache.rs`), and an idempotent POST holds and stores
//! its key once (one begin, one store), with no rollback of a transaction of its own.
//!
//! The counts come from the cumulative statistics of the test's own database
//! (`track_functions = all` for its sessions): `pg_stat_user_functions` and
//! `pg_stat_database`. A backend publishes its counts lazily (at most once a second, at
//! the latest ten seconds after it goes idle) and always when it exits, so the test
//! waits for a quiet baseline, sends one request, then ends the application's sessions
//! to read exact figures.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::json;

use crate::helpers::{
    TestApp, TestDb, admin_url, count, exec, generous_limits, start_server_with, test_webhooks,
};

/// A key of `app`'s tenant `by` that this process has not used yet (so not remembered).
async fn fresh_key(app: &TestApp, by: &str) -> String {
    let made = app
        .post(
            "/v1/api-keys",
            by,
            &json!({"name": "walk", "scopes": ["*"]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    made.body["data"]["key"].as_str().expect("key").to_owned()
}

/// What the statistics say about the test database at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Figures {
    authenticate_calls: i64,
    idempotency_begin_calls: i64,
    idempotency_store_calls: i64,
    commits: i64,
    rollbacks: i64,
}

impl std::ops::Sub for Figures {
    type Output = Self;

    fn sub(self, before: Self) -> Self {
        Self {
            authenticate_calls: self.authenticate_calls - before.authenticate_calls,
            idempotency_begin_calls: self.idempotency_begin_calls - before.idempotency_begin_calls,
            idempotency_store_calls: self.idempotency_store_calls - before.idempotency_store_calls,
            commits: self.commits - before.commits,
            rollbacks: self.rollbacks - before.rollbacks,
        }
    }
}

/// The application on a database whose sessions count function calls. The delivery
/// worker idles for an hour after its first pass, so nothing but the requests under
/// test runs in the database.
async fn spawn_counted_app() -> (TestApp, DatabaseConnection) {
    let db = TestDb::create().await;
    // Read from another database: this connection's own transactions must not count.
    let admin = Database::connect(admin_url().as_str())
        .await
        .expect("connect as admin");
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{}\" SET track_functions = 'all'",
            db.name
        ))
        .await
        .expect("track functions");
    let webhooks = server::WebhookConfig {
        poll_interval: Duration::from_secs(3600),
        ..test_webhooks()
    };
    let address = start_server_with(&db, generous_limits(), webhooks).await;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    (
        TestApp {
            address,
            client,
            db,
        },
        admin,
    )
}

/// This test's reader of the test database: a session of its own, named so the test
/// can wait for it to end (its own transactions are published when it exits).
const READER: &str = "walk_reader";

async fn backends(admin: &DatabaseConnection, database: &str, filter: &str) -> i64 {
    count(
        admin,
        &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND {filter}"),
    )
    .await
}

/// Waits until no session matching `filter` is connected to the test database: by then
/// each has published its statistics (a backend does that before it leaves).
async fn wait_until_gone(admin: &DatabaseConnection, database: &str, filter: &str) {
    for _ in 0..200 {
        if backends(admin, database, filter).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sessions of {database} matching {filter} did not end");
}

/// The figures of the test database, every published count included: function calls
/// through a short-lived session of the test database (which then leaves), transactions
/// from `admin`'s database, so that reading counts nothing in the test database but the
/// reader's own transactions, which are published before the commits are read.
async fn figures(app: &TestApp, admin: &DatabaseConnection) -> Figures {
    let database = app.db.name.as_str();
    let reader_url = format!(
        "{}{}application_name={READER}",
        app.db.owner_url,
        if app.db.owner_url.contains('?') {
            '&'
        } else {
            '?'
        }
    );
    let reader = Database::connect(reader_url.as_str())
        .await
        .expect("connect the reader");
    let calls = |name: &str| {
        format!(
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_user_functions \
             WHERE funcname = '{name}'"
        )
    };
    let authenticate_calls = count(&reader, &calls("crm_authenticate_api_key")).await;
    let idempotency_begin_calls = count(&reader, &calls("crm_idempotency_begin")).await;
    let idempotency_store_calls = count(&reader, &calls("crm_idempotency_store")).await;
    let _ = reader.close().await;
    wait_until_gone(admin, database, &format!("application_name = '{READER}'")).await;
    let commits = count(
        admin,
        &format!("SELECT xact_commit FROM pg_stat_database WHERE datname = '{database}'"),
    )
    .await;
    let rollbacks = count(
        admin,
        &format!("SELECT xact_rollback FROM pg_stat_database WHERE datname = '{database}'"),
    )
    .await;
    Figures {
        authenticate_calls,
        idempotency_begin_calls,
        idempotency_store_calls,
        commits,
        rollbacks,
    }
}

/// Counts what `request` costs the database. The figures before are read once every
/// session of the application has been idle long enough to have published its counts;
/// the figures after, once the application's sessions were ended (a backend publishes
/// everything as it exits), so both are exact. The application is unusable afterwards.
async fn cost_of<F: std::future::Future<Output = ()>>(
    app: &TestApp,
    admin: &DatabaseConnection,
    request: F,
) -> Figures {
    // An idle backend publishes within ten seconds (PGSTAT_IDLE_INTERVAL).
    tokio::time::sleep(Duration::from_secs(11)).await;
    let before = figures(app, admin).await;
    request.await;
    // The pool checks a connection it gets back (one statement) after the response.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let database = app.db.name.as_str();
    exec(
        admin,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ),
    )
    .await
    .expect("sessions ended");
    wait_until_gone(admin, database, "true").await;
    let after = figures(app, admin).await;
    // Reading costs the reader's own session (its start and its queries): read once
    // more with nothing else running to know how much, and take it off.
    let reading = figures(app, admin).await - after;
    eprintln!("before {before:?}\nafter {after:?}\none reading {reading:?}");
    after - before - reading
}

#[actix_rt::test]
async fn a_get_with_an_api_key_resolves_its_credential_once_in_one_transaction() {
    let (app, admin) = spawn_counted_app().await;
    let acme = app.tenant("Acme").await;
    let created = app
        .post(
            "/v1/contacts",
            &acme.key,
            &json!({"firstName": "Ada", "email": "ada@example.com"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let path = format!("/v1/contacts/{}", created.id());
    let key = fresh_key(&app, &acme.key).await;

    let cost = cost_of(&app, &admin, async {
        let reply = app.get(&path, &key).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    })
    .await;
    eprintln!("GET /v1/contacts/{{id}} costs {cost:?}");
    assert_eq!(
        cost.authenticate_calls, 1,
        "the key is resolved once: {cost:?}"
    );
    assert_eq!(cost.idempotency_begin_calls, 0, "{cost:?}");
    // Commits are printed, not asserted: on a quiet machine they are two (the unit of
    // work, and the pool's check of the connection it got back), but autovacuum and the
    // pool reconnecting after its sessions were ended add some under load.
    assert_eq!(cost.rollbacks, 0, "{cost:?}");
}

/// A key this process resolved a moment ago is not resolved again: its tenant is
/// remembered and the key checked in the request's own statement (`key_cache`), so the
/// GET calls no authentication function at all, and still answers.
#[actix_rt::test]
async fn a_get_with_a_remembered_key_calls_no_resolver() {
    let (app, admin) = spawn_counted_app().await;
    let acme = app.tenant("Acme").await;
    let created = app
        .post("/v1/contacts", &acme.key, &json!({"firstName": "Ada"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let path = format!("/v1/contacts/{}", created.id());

    let cost = cost_of(&app, &admin, async {
        let reply = app.get(&path, &acme.key).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["data"]["firstName"], "Ada");
    })
    .await;
    eprintln!("GET /v1/contacts/{{id}} with a remembered key costs {cost:?}");
    assert_eq!(
        cost.authenticate_calls, 0,
        "remembered, not resolved: {cost:?}"
    );
    assert_eq!(cost.rollbacks, 0, "{cost:?}");
}

#[actix_rt::test]
async fn an_idempotent_post_resolves_holds_and_stores_in_its_one_unit_of_work() {
    let (app, admin) = spawn_counted_app().await;
    let acme = app.tenant("Acme").await;
    // The first statements of a fresh connection look types up (sqlx): warm it up.
    let warm_up = app
        .call(
            "POST",
            "/v1/contacts",
            Some(&acme.key),
            Some(&json!({"firstName": "Grace"})),
            &[("Idempotency-Key", "walk-0")],
        )
        .await;
    assert_eq!(warm_up.status, 201, "{}", warm_up.body);
    let key = fresh_key(&app, &acme.key).await;

    let cost = cost_of(&app, &admin, async {
        let reply = app
            .call(
                "POST",
                "/v1/contacts",
                Some(&key),
                Some(&json!({"firstName": "Ada", "email": "ada@example.com"})),
                &[("Idempotency-Key", "walk-1")],
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    })
    .await;
    eprintln!("POST /v1/contacts with Idempotency-Key costs {cost:?}");
    assert_eq!(
        cost.authenticate_calls, 1,
        "the key is resolved once: {cost:?}"
    );
    assert_eq!(cost.idempotency_begin_calls, 1, "{cost:?}");
    assert_eq!(cost.idempotency_store_calls, 1, "{cost:?}");
    // One transaction holds the key, makes the change and stores the response (the
    // commits are printed, not asserted: see the GET above).
    assert_eq!(cost.rollbacks, 0, "{cost:?}");
    assert_eq!(app.contact_rows().await, 2);
}
