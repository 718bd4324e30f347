//! Webhooks: the tables at the SQL level as the real application role (isolation, the
//! fan-out of an event to matching subscriptions, the worker's cross-tenant claim), then
//! over HTTP with a real receiver (subscriptions, signatures, retries, the delivery log,
//! several workers, a worker killed mid-delivery).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{TestDb, as_tenant, count, exec, scalar_i64};

/// A tenant (made as the owner) with one subscription and one event, written as the
/// application role inside the tenant's context; returns the tenant id.
async fn tenant_with_a_subscription(db: &TestDb, app: &DatabaseConnection, events: &str) -> String {
    let owner = db.owner().await;
    let tenant = uuid::Uuid::new_v4().to_string();
    exec(
        &owner,
        &format!("INSERT INTO tenants (id, name) VALUES ('{tenant}', 'T')"),
    )
    .await
    .expect("tenant");
    // The event types the filters expand to, by the domain's rule, as the application
    // stores them beside the filters (the fan-out tests membership of them).
    let filters: Vec<String> = events
        .split(',')
        .map(|f| f.trim().trim_matches('\'').to_owned())
        .collect();
    let types = domain::webhook::SubscriptionDraft::new(
        "https://receiver.example/hook".to_owned(),
        None,
        filters,
        true,
    )
    .expect("valid filters")
    .event_types()
    .iter()
    .map(|t| format!("'{t}'"))
    .collect::<Vec<_>>()
    .join(", ");
    let txn = as_tenant(app, &tenant).await;
    exec(
        &txn,
        &format!(
            "INSERT INTO webhook_subscriptions (tenant_id, id, url, events, event_types, secret) \
             VALUES ('{tenant}', gen_random_uuid(), 'https://receiver.example/hook', \
                     ARRAY[{events}], ARRAY[{types}]::text[], \
                     'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD')"
        ),
    )
    .await
    .expect("subscription");
    exec(
        &txn,
        &format!(
            "INSERT INTO events (tenant_id, type, object) VALUES ('{tenant}', 'contact.created', \
             jsonb_build_object('id', gen_random_uuid(), 'first_name', 'Ada', 'last_name', null, \
                                'email', 'ada@example.com', 'tags', '[]'::jsonb, \
                                'custom_fields', '{{}}'::jsonb, 'created_at', now(), \
                                'updated_at', now(), 'version', 1))"
        ),
    )
    .await
    .expect("event");
    txn.commit().await.expect("commit");
    tenant
}

#[actix_rt::test]
async fn every_table_with_a_tenant_id_has_forced_row_level_security() {
    let db = TestDb::create().await;
    let owner = db.owner().await;
    let unprotected = count(
        &owner,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = 'public' AND c.relkind = 'r' \
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                         AND a.attname = 'tenant_id' AND NOT a.attisdropped) \
            AND NOT (c.relrowsecurity AND c.relforcerowsecurity)",
    )
    .await;
    assert_eq!(unprotected, 0);
    assert!(
        count(
            &owner,
            "SELECT count(*) FROM pg_policies WHERE tablename IN \
             ('events', 'webhook_subscriptions', 'webhook_deliveries', 'webhook_attempts')"
        )
        .await
            == 4
    );
}

#[actix_rt::test]
async fn an_event_fans_out_only_to_matching_subscriptions_of_its_own_tenant() {
    let db = TestDb::create().await;
    let app = db.app_role().await;
    let wants_contacts = tenant_with_a_subscription(&db, &app, "'contact.*'").await;
    let wants_leads = tenant_with_a_subscription(&db, &app, "'lead.created'").await;
    let owner = db.owner().await;
    let deliveries = |tenant: &str| {
        format!("SELECT count(*) FROM webhook_deliveries WHERE tenant_id = '{tenant}'")
    };
    assert_eq!(count(&owner, &deliveries(&wants_contacts)).await, 1);
    assert_eq!(
        count(&owner, &deliveries(&wants_leads)).await,
        0,
        "filter not matched"
    );

    // Tenant A sees its own rows only, and cannot write B's.
    let txn = as_tenant(&app, &wants_contacts).await;
    assert_eq!(
        count(&txn, "SELECT count(*) FROM webhook_subscriptions").await,
        1
    );
    assert_eq!(count(&txn, "SELECT count(*) FROM events").await, 1);
    assert_eq!(
        count(&txn, "SELECT count(*) FROM webhook_deliveries").await,
        1
    );
    assert_eq!(
        exec(
            &txn,
            &format!(
                "UPDATE webhook_subscriptions SET enabled = false WHERE tenant_id = '{wants_leads}'"
            )
        )
        .await
        .expect("runs"),
        0
    );
    let forged = exec(
        &txn,
        &format!(
            "INSERT INTO events (tenant_id, type, object) VALUES ('{wants_leads}', 'lead.created', '{{}}')"
        ),
    )
    .await;
    assert!(
        forged.is_err(),
        "row-level security refuses another tenant's event"
    );
    drop(txn);

    // Without a tenant: nothing.
    let bare = app.begin().await.expect("begin");
    assert_eq!(count(&bare, "SELECT count(*) FROM events").await, 0);
    assert_eq!(
        count(&bare, "SELECT count(*) FROM webhook_subscriptions").await,
        0
    );
}

#[actix_rt::test]
async fn the_claim_leases_each_due_delivery_once_across_tenants_with_its_event() {
    let db = TestDb::create().await;
    let app = db.app_role().await;
    let first = tenant_with_a_subscription(&db, &app, "'*'").await;
    let second = tenant_with_a_subscription(&db, &app, "'contact.created'").await;
    let worker = db.worker_role().await;
    let rows = worker
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT tenant_id::text, 'evt_' || replace(event_id::text, '-', ''), event_type, \
                    event_object::text, secret, event_created_at::text \
               FROM crm_claim_webhook_deliveries(10, interval '1 minute')"
                .to_owned(),
        ))
        .await
        .expect("claim runs as crm_worker with no tenant set");
    assert_eq!(rows.len(), 2, "one due delivery per tenant");
    let mut tenants: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("tenant"))
        .collect();
    tenants.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(tenants, expected);
    // The claim hands over the event as stored (the snapshot); the worker renders the
    // body in Rust with the API's DTOs (`an_event_is_delivered_signed_retried_after_a_500_and_logged` checks what arrives).
    for row in &rows {
        let event_id: String = row.try_get_by_index(1).expect("event id");
        assert!(event_id.starts_with("evt_") && event_id.len() == 36);
        let kind: String = row.try_get_by_index(2).expect("type");
        assert_eq!(kind, "contact.created");
        let object: String = row.try_get_by_index(3).expect("object");
        let object: Value = serde_json::from_str(&object).expect("JSON");
        assert_eq!(object["first_name"], "Ada", "the row snapshot");
        assert_eq!(object["email"], "ada@example.com");
        assert!(object["last_name"].is_null());
        let created: Option<String> = row.try_get_by_index(5).expect("created_at");
        assert!(created.is_some());
    }
    let again = scalar_i64(
        &worker,
        "SELECT count(*) FROM crm_claim_webhook_deliveries(10, interval '1 minute')",
    )
    .await;
    assert_eq!(again, 0, "leased deliveries are not handed out twice");

    // An expired lease is taken over (a worker died mid-delivery).
    let owner = db.owner().await;
    exec(
        &owner,
        "UPDATE webhook_deliveries SET lease_until = now() - interval '1 second'",
    )
    .await
    .expect("expire leases");
    exec(
        &owner,
        &format!("UPDATE webhook_subscriptions SET enabled = false WHERE tenant_id = '{second}'"),
    )
    .await
    .expect("disable one");
    let taken_over = scalar_i64(
        &worker,
        "SELECT count(*) FROM crm_claim_webhook_deliveries(10, interval '1 minute')",
    )
    .await;
    assert_eq!(taken_over, 1, "only the enabled subscription's delivery");
}

// ---------------------------------------------------------------------------------------
// Over HTTP, with a real receiver.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web as actix_web_web};
use domain::webhook::WebhookSecret;

use crate::helpers::{TestApp, generous_limits, spawn_app, spawn_app_configured, test_webhooks};

/// One request the receiver got: headers and the exact body bytes.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// When it arrived.
    pub(crate) at: Instant,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `secret` signed this request exactly as received (one of the signatures).
    pub(crate) fn signed_by(&self, secret: &str) -> bool {
        let secret = WebhookSecret::parse(secret).expect("a whsec_ secret");
        let id = self.header("webhook-id").expect("webhook-id");
        let timestamp: i64 = self
            .header("webhook-timestamp")
            .expect("webhook-timestamp")
            .parse()
            .expect("unix seconds");
        let expected = secret.sign(id, timestamp, &self.body);
        self.header("webhook-signature")
            .expect("webhook-signature")
            .split(' ')
            .any(|s| s == expected)
    }
}

/// One scripted answer of a [`Receiver`].
#[derive(Clone, Copy)]
pub(crate) struct Answer {
    status: u16,
    /// Milliseconds to wait before answering.
    delay: u64,
    /// A `Retry-After` header to send, in seconds.
    retry_after: Option<u32>,
}

/// A local receiver answering the statuses of `script` in turn (then 200), recording
/// every request.
pub(crate) struct Receiver {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub(crate) fn start(script: Vec<u16>) -> Self {
        Self::start_slow(script.into_iter().map(|status| (status, 0)).collect())
    }

    /// Like [`Receiver::start`], each scripted answer after a delay in milliseconds.
    pub(crate) fn start_slow(script: Vec<(u16, u64)>) -> Self {
        Self::answering(
            script
                .into_iter()
                .map(|(status, delay)| Answer {
                    status,
                    delay,
                    retry_after: None,
                })
                .collect(),
        )
    }

    /// A receiver giving these answers in turn, then 200 at once.
    fn answering(script: Vec<Answer>) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let (log, plan) = (Arc::clone(&received), Arc::clone(&script));
        let server = HttpServer::new(move || {
            let (log, plan) = (Arc::clone(&log), Arc::clone(&plan));
            App::new().default_service(actix_web_web::to(
                move |req: HttpRequest, body: actix_web_web::Bytes| {
                    let (log, plan) = (Arc::clone(&log), Arc::clone(&plan));
                    async move {
                        log.lock().expect("log").push(Received {
                            headers: req
                                .headers()
                                .iter()
                                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
                                .collect(),
                            body: body.to_vec(),
                            at: Instant::now(),
                        });
                        let answer = {
                            let mut plan = plan.lock().expect("plan");
                            if plan.is_empty() {
                                Answer {
                                    status: 200,
                                    delay: 0,
                                    retry_after: None,
                                }
                            } else {
                                plan.remove(0)
                            }
                        };
                        tokio::time::sleep(Duration::from_millis(answer.delay)).await;
                        let mut reply = HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(answer.status).expect("a status"),
                        );
                        if let Some(seconds) = answer.retry_after {
                            reply.insert_header(("Retry-After", seconds.to_string()));
                        }
                        reply.body("ok")
                    }
                },
            ))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind the receiver");
        let port = server.addrs()[0].port();
        actix_rt::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            received,
        }
    }

    pub(crate) fn all(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }

    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..800 {
            let all = self.all();
            if all.len() >= count {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the receiver got {} requests, expected {count}",
            self.all().len()
        );
    }
}

pub(crate) async fn subscribe(
    app: &TestApp,
    key: &str,
    url: &str,
    events: Value,
) -> (String, String) {
    let made = app
        .post("/v1/webhooks", key, &json!({"url": url, "events": events}))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let data = &made.body["data"];
    (
        data["id"].as_str().expect("id").to_owned(),
        data["secret"].as_str().expect("secret once").to_owned(),
    )
}

/// Writes an event as the application would, inside the tenant's context.
pub(crate) async fn write_event(app: &TestApp, tenant: &str, first_name: &str) {
    let role = app.db.app_role().await;
    let txn = as_tenant(&role, tenant).await;
    exec(
        &txn,
        &format!(
            "INSERT INTO events (tenant_id, type, object) VALUES ('{tenant}', 'contact.created', \
             jsonb_build_object('id', gen_random_uuid(), 'first_name', '{first_name}', \
                                'tags', '[]'::jsonb, 'custom_fields', '{{}}'::jsonb, \
                                'created_at', now(), 'updated_at', now(), 'version', 1))"
        ),
    )
    .await
    .expect("event written");
    txn.commit().await.expect("commit");
}

pub(crate) fn start_worker(app: &TestApp) {
    start_worker_with(app, test_webhooks());
}

/// Runs a delivery worker in this process against the test database, as the worker
/// role (checked like `crm worker` checks it).
pub(crate) fn start_worker_with(app: &TestApp, config: server::WebhookConfig) {
    let store_url = app.db.worker_url.clone();
    actix_rt::spawn(async move {
        let store = server::connect_worker(&store_url, &config)
            .await
            .expect("worker connects as crm_worker");
        server::deliver_forever(store, config).await;
    });
}

#[actix_rt::test]
async fn a_subscription_shows_its_secret_once_and_is_managed_by_admins_only() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let (id, secret) = subscribe(
        &app,
        &acme.key,
        "http://127.0.0.1:9/hook",
        json!(["contact.*"]),
    )
    .await;
    assert!(secret.starts_with("whsec_"));
    let one = app.get(&format!("/v1/webhooks/{id}"), &acme.key).await;
    assert_eq!(one.status, 200);
    assert!(
        one.body["data"].get("secret").is_none(),
        "never shown again"
    );
    let listed = app.get("/v1/webhooks", &acme.key).await;
    assert!(listed.body["data"][0].get("secret").is_none());
    let changed = app
        .call(
            "PATCH",
            &format!("/v1/webhooks/{id}"),
            Some(&acme.key),
            Some(&json!({"events": ["lead.*"], "description": "CRM sync"})),
            &[],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["data"]["events"], json!(["lead.*"]));
    let bad = app
        .post(
            "/v1/webhooks",
            &acme.key,
            &json!({"url": "https://x.example/h", "events": ["contact.exploded"]}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body["details"]["fields"]["events"].is_array());

    let reader = app
        .post(
            "/v1/api-keys",
            &acme.key,
            &json!({"name": "reader", "scopes": ["contacts:read"]}),
        )
        .await;
    let reader = reader.body["data"]["key"].as_str().expect("key").to_owned();
    assert_eq!(app.get("/v1/webhooks", &reader).await.status, 403);
    assert_eq!(
        app.post(
            "/v1/webhooks",
            &reader,
            &json!({"url": "https://x.example/h", "events": ["*"]})
        )
        .await
        .status,
        403
    );
    // The scope that grants it, without the admin's other powers.
    let manager = app
        .post(
            "/v1/api-keys",
            &acme.key,
            &json!({"name": "hooks", "scopes": ["webhooks:manage"]}),
        )
        .await;
    let manager = manager.body["data"]["key"]
        .as_str()
        .expect("key")
        .to_owned();
    assert_eq!(app.get("/v1/webhooks", &manager).await.status, 200);
    assert_eq!(app.get("/v1/contacts", &manager).await.status, 403);

    let other = app.tenant("Globex").await;
    assert_eq!(
        app.get(&format!("/v1/webhooks/{id}"), &other.key)
            .await
            .status,
        404
    );
    assert_eq!(
        app.call(
            "DELETE",
            &format!("/v1/webhooks/{id}"),
            Some(&other.key),
            None,
            &[]
        )
        .await
        .status,
        404
    );
    let deleted = app
        .call(
            "DELETE",
            &format!("/v1/webhooks/{id}"),
            Some(&acme.key),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        app.get(&format!("/v1/webhooks/{id}"), &acme.key)
            .await
            .status,
        404
    );
}

#[actix_rt::test]
async fn private_destinations_are_refused_at_registration_unless_allowed() {
    let strict = server::WebhookConfig {
        allow_private: false,
        ..test_webhooks()
    };
    let app = spawn_app_configured(generous_limits(), strict).await;
    let acme = app.tenant("Acme").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://localhost:8080/hook",
    ] {
        let refused = app
            .post(
                "/v1/webhooks",
                &acme.key,
                &json!({"url": url, "events": ["*"]}),
            )
            .await;
        assert_eq!(refused.status, 400, "{url}: {}", refused.body);
        assert!(refused.body["details"]["fields"]["url"].is_array(), "{url}");
    }
    assert_eq!(
        app.get("/v1/webhooks", &acme.key).await.body["data"],
        json!([]),
        "nothing stored"
    );
}

#[actix_rt::test]
async fn the_test_send_is_signed_with_the_secret_shown_at_creation() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let receiver = Receiver::start(vec![]);
    let (id, secret) = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    let tested = app
        .post(&format!("/v1/webhooks/{id}/test"), &acme.key, &json!({}))
        .await;
    assert_eq!(tested.status, 200, "{}", tested.body);
    assert_eq!(tested.body["data"]["succeeded"], true);
    assert_eq!(tested.body["data"]["statusCode"], 200);
    let got = receiver.wait_for(1).await;
    assert!(
        got[0].signed_by(&secret),
        "the signature verifies over the exact bytes"
    );
    let body: Value = serde_json::from_slice(&got[0].body).expect("JSON");
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(got[0].header("webhook-id"), body["id"].as_str());
}

#[actix_rt::test]
async fn an_event_is_delivered_signed_retried_after_a_500_and_logged() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let receiver = Receiver::start(vec![500]);
    let (id, secret) = subscribe(&app, &acme.key, &receiver.url, json!(["contact.*"])).await;
    write_event(&app, &acme.id, "Ada").await;
    start_worker(&app);
    let got = receiver.wait_for(2).await;
    assert!(got.iter().all(|r| r.signed_by(&secret)));
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "same id on retry"
    );
    let body: Value = serde_json::from_slice(&got[1].body).expect("JSON");
    assert_eq!(body["type"], "contact.created");
    assert_eq!(body["tenantId"], acme.id.as_str());
    assert_eq!(body["data"]["object"]["firstName"], "Ada");

    let mut log = Value::Null;
    for _ in 0..100 {
        log = app
            .get(&format!("/v1/webhooks/{id}/deliveries"), &acme.key)
            .await
            .body;
        if log["data"][0]["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let delivery = &log["data"][0];
    assert_eq!(delivery["status"], "succeeded", "{log}");
    assert_eq!(delivery["attempts"], 2);
    assert_eq!(delivery["lastStatusCode"], 200);
    let detail = app
        .get(
            &format!(
                "/v1/webhooks/{id}/deliveries/{}",
                delivery["id"].as_str().expect("id")
            ),
            &acme.key,
        )
        .await;
    let attempts = detail.body["data"]["attemptLog"]
        .as_array()
        .expect("attempts")
        .clone();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["statusCode"], 500);
    assert_eq!(attempts[1]["statusCode"], 200);

    // The log also holds the default pipeline's `pipeline.created`, from sign-up.
    // The log shows an event once every transaction before it in the cluster has ended
    // (other tests' included), so it may take a moment.
    let mut events = app.get("/v1/events?type=contact.created", &acme.key).await;
    for _ in 0..100 {
        if events.body["data"][0]["id"] == body["id"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        events = app.get("/v1/events?type=contact.created", &acme.key).await;
    }
    assert_eq!(events.status, 200);
    assert_eq!(events.body["data"][0]["id"], body["id"]);
    let other = app.tenant("Globex").await;
    let theirs = app.get("/v1/events", &other.key).await.body["data"].clone();
    let theirs = theirs.as_array().expect("a list");
    assert!(
        theirs.iter().all(|e| e["tenantId"] == other.id.as_str()),
        "another tenant sees only its own events: {theirs:?}"
    );
    assert!(theirs.iter().all(|e| e["id"] != body["id"]));
}

#[actix_rt::test]
async fn a_410_disables_the_subscription_with_a_reason() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let receiver = Receiver::start(vec![410]);
    let (id, _) = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    write_event(&app, &acme.id, "Grace").await;
    start_worker(&app);
    receiver.wait_for(1).await;
    let subscription = disabled_subscription(&app, &acme.key, &id).await;
    assert!(
        subscription["data"]["disabledReason"]
            .as_str()
            .is_some_and(|r| r.contains("410"))
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.all().len(), 1, "no retry to a gone endpoint");
}

#[actix_rt::test]
async fn after_a_rotation_both_secrets_sign_each_delivery() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let receiver = Receiver::start(vec![]);
    let (id, old) = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    let rotated = app
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &acme.key,
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = rotated.body["data"]["secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    assert_ne!(new, old);
    write_event(&app, &acme.id, "Linus").await;
    start_worker(&app);
    let got = receiver.wait_for(1).await;
    let signatures = got[0].header("webhook-signature").expect("signature");
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(got[0].signed_by(&new));
    assert!(got[0].signed_by(&old));
}

#[actix_rt::test]
async fn two_workers_deliver_500_events_each_exactly_once() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let receiver = Receiver::start(vec![]);
    subscribe(&app, &acme.key, &receiver.url, json!(["contact.*"])).await;
    let role = app.db.app_role().await;
    let txn = as_tenant(&role, &acme.id).await;
    exec(
        &txn,
        &format!(
            "INSERT INTO events (tenant_id, type, object) \
             SELECT '{}', 'contact.created', jsonb_build_object('id', gen_random_uuid(), \
                    'first_name', 'P' || g, 'tags', '[]'::jsonb, 'custom_fields', '{{}}'::jsonb, \
                    'created_at', now(), 'updated_at', now(), 'version', 1) \
               FROM generate_series(1, 500) g",
            acme.id
        ),
    )
    .await
    .expect("500 events");
    txn.commit().await.expect("commit");
    start_worker(&app);
    start_worker(&app);
    let got = receiver.wait_for(500).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_now = receiver.all();
    assert_eq!(
        got_now.len(),
        500,
        "no attempt sent twice (got {})",
        got_now.len()
    );
    let mut ids: Vec<&str> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 500, "every event, once");
    // Each outcome is recorded after its answer arrives: wait for the last ones.
    let owner = app.db.owner().await;
    let recorded =
        "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded' AND attempts = 1";
    let mut succeeded = 0;
    for _ in 0..200 {
        succeeded = scalar_i64(&owner, recorded).await;
        if succeeded >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        succeeded, 500,
        "every delivery recorded as one successful attempt"
    );
}

/// The `crm` binary that `cargo build` put beside this test binary.
pub(crate) fn crm_binary() -> std::path::PathBuf {
    std::env::current_exe()
        .expect("test binary path")
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/debug")
        .join("crm")
}

/// Starts the real `crm worker` binary on the test database, with this lease (seconds)
/// and send timeout (milliseconds; shorter than the lease).
fn crm_worker(app: &TestApp, lease_secs: &str, timeout_ms: &str) -> std::process::Child {
    let binary = crm_binary();
    std::process::Command::new(&binary)
        .arg("worker")
        .env("DATABASE_URL", &app.db.app_url)
        .env("WEBHOOK_ALLOW_PRIVATE", "true")
        .env("WEBHOOK_ALLOW_HTTP", "true")
        .env("WEBHOOK_LEASE_SECS", lease_secs)
        .env("WEBHOOK_TIMEOUT_MS", timeout_ms)
        .env("WEBHOOK_POLL_INTERVAL_MS", "50")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts ({e}); cargo build builds it", binary.display()))
}

#[actix_rt::test]
async fn a_worker_killed_mid_delivery_loses_nothing() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    // The first attempt hangs long enough to kill the worker while it waits.
    let receiver = Receiver::start_slow(vec![(200, 10_000)]);
    subscribe(&app, &acme.key, &receiver.url, json!(["contact.*"])).await;
    write_event(&app, &acme.id, "Killed").await;
    let mut worker = crm_worker(&app, "2", "1000");
    let first = receiver.wait_for(1).await;
    worker.kill().expect("SIGKILL the worker mid-delivery");
    let _ = worker.wait();
    let owner = app.db.owner().await;
    assert_eq!(
        scalar_i64(
            &owner,
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
        )
        .await,
        1,
        "the delivery is still owed"
    );
    // Another worker takes it over once the dead one's 2 s lease has expired.
    let mut config = test_webhooks();
    config.worker.lease = Duration::from_secs(2);
    start_worker_with(&app, config);
    let got = receiver.wait_for(2).await;
    assert_eq!(
        got[1].header("webhook-id"),
        first[0].header("webhook-id"),
        "the same event"
    );
    for _ in 0..100 {
        if scalar_i64(
            &owner,
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'",
        )
        .await
            == 1
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery was not recorded as succeeded");
}

/// Subscription `id` once the worker has disabled it.
async fn disabled_subscription(app: &TestApp, key: &str, id: &str) -> Value {
    for _ in 0..100 {
        let subscription = app.get(&format!("/v1/webhooks/{id}"), key).await.body;
        if subscription["data"]["enabled"] == false {
            return subscription;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("subscription {id} was not disabled");
}

/// The delivery log of subscription `id` once its first delivery is over (not pending).
pub(crate) async fn settled_delivery(app: &TestApp, key: &str, id: &str) -> Value {
    for _ in 0..200 {
        let log = app
            .get(&format!("/v1/webhooks/{id}/deliveries"), key)
            .await
            .body;
        if log["data"][0]["status"] != "pending" && log["data"][0].is_object() {
            let delivery = log["data"][0]["id"].as_str().expect("id").to_owned();
            return app
                .get(&format!("/v1/webhooks/{id}/deliveries/{delivery}"), key)
                .await
                .body["data"]
                .clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the delivery did not settle");
}

#[actix_rt::test]
async fn an_endpoint_that_does_not_answer_in_time_is_a_failed_attempt_and_retried() {
    let mut webhooks = test_webhooks();
    webhooks.timeout = Duration::from_millis(300);
    let app = spawn_app_configured(generous_limits(), webhooks.clone()).await;
    let acme = app.tenant("Acme").await;
    // The first answer comes after 2 s, long past the 300 ms timeout; the next at once.
    let receiver = Receiver::start_slow(vec![(200, 2_000)]);
    let (id, _) = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    write_event(&app, &acme.id, "Slow").await;
    start_worker_with(&app, webhooks);
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let delivery = settled_delivery(&app, &acme.key, &id).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attempts"], 2);
    let first = &delivery["attemptLog"][0];
    assert_eq!(first["statusCode"], Value::Null, "no answer: {first}");
    assert!(
        first["error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out")),
        "{first}"
    );
    assert!(first["latencyMs"].as_i64().is_some_and(|ms| ms >= 300));
    assert_eq!(delivery["attemptLog"][1]["statusCode"], 200);
}

#[actix_rt::test]
async fn a_503_with_retry_after_postpones_the_next_attempt_past_the_schedule() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    // The schedule would retry after 200 ms; the endpoint asks for 2 s.
    let receiver = Receiver::answering(vec![Answer {
        status: 503,
        delay: 0,
        retry_after: Some(2),
    }]);
    let (id, _) = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    write_event(&app, &acme.id, "Busy").await;
    start_worker(&app);
    let got = receiver.wait_for(2).await;
    let waited = got[1].at.duration_since(got[0].at);
    assert!(
        waited >= Duration::from_millis(1_900),
        "the retry waited only {waited:?}"
    );
    let delivery = settled_delivery(&app, &acme.key, &id).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attemptLog"][0]["statusCode"], 503);
}

#[actix_rt::test]
async fn the_retention_sweep_forgets_old_events_and_attempts_but_not_what_is_still_owed() {
    let db = TestDb::create().await;
    let app = db.app_role().await;
    let tenant = tenant_with_a_subscription(&db, &app, "'*'").await;
    let txn = as_tenant(&app, &tenant).await;
    for (first_name, age) in [("Delivered", "40 days"), ("Owed", "40 days")] {
        exec(
            &txn,
            &format!(
                "INSERT INTO events (tenant_id, type, object, created_at) \
                 VALUES ('{tenant}', 'contact.created', \
                         jsonb_build_object('id', gen_random_uuid(), 'first_name', '{first_name}'), \
                         now() - interval '{age}')"
            ),
        )
        .await
        .expect("an old event");
    }
    // The first old event was delivered long ago; the second is still being retried.
    exec(
        &txn,
        "UPDATE webhook_deliveries d SET status = 'succeeded', next_attempt_at = NULL \
           FROM events e WHERE e.tenant_id = d.tenant_id AND e.seq = d.event_seq \
            AND e.object ->> 'first_name' = 'Delivered'",
    )
    .await
    .expect("delivered");
    exec(
        &txn,
        &format!(
            "INSERT INTO webhook_attempts (tenant_id, id, delivery_id, attempted_at, latency_ms) \
             SELECT '{tenant}', gen_random_uuid(), d.id, now() - a.age, 5 \
               FROM webhook_deliveries d, \
                    (VALUES (interval '40 days'), (interval '1 day')) a(age) \
              WHERE d.status = 'pending'"
        ),
    )
    .await
    .expect("attempts");
    txn.commit().await.expect("commit");

    // Two old attempts (one per delivery still owed) and the delivered old event are
    // due. A chunk of one takes one attempt and the event; the worker's sweep loops for
    // the rest.
    let chunk = "SELECT crm_sweep_webhook_history(interval '30 days', 1)";
    let worker = db.worker_role().await;
    assert_eq!(scalar_i64(&worker, chunk).await, 2);
    let store = adapters_postgres::PgStore::connect(
        &db.worker_url,
        &adapters_postgres::PoolOptions::default(),
    )
    .await
    .expect("connect as crm_worker");
    let thirty_days = Duration::from_secs(30 * 86_400);
    let sweep = || ports::DeliveryQueue::sweep_history(&store, thirty_days);
    assert_eq!(sweep().await.expect("swept"), 1);
    assert_eq!(sweep().await.expect("swept"), 0, "nothing old is left");
    let txn = as_tenant(&app, &tenant).await;
    let left: Vec<String> = txn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT object ->> 'first_name' AS name FROM events ORDER BY seq",
        ))
        .await
        .expect("events")
        .iter()
        .map(|row| row.try_get("", "name").expect("name"))
        .collect();
    assert_eq!(
        left,
        vec!["Ada", "Owed"],
        "recent and still-owed events stay"
    );
    assert_eq!(
        count(&txn, "SELECT count(*) FROM webhook_attempts").await,
        2
    );
    assert_eq!(
        count(&txn, "SELECT count(*) FROM webhook_deliveries").await,
        2,
        "the forgotten event's delivery goes with it"
    );
}

#[actix_rt::test]
async fn a_worker_stopped_with_sigterm_finishes_the_delivery_in_flight() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let receiver = Receiver::start_slow(vec![(200, 1_500)]);
    let (id, _) = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    write_event(&app, &acme.id, "Graceful").await;
    let mut worker = crm_worker(&app, "60", "15000");
    receiver.wait_for(1).await;
    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    let mut exit = None;
    for _ in 0..200 {
        if let Some(status) = worker.try_wait().expect("worker status") {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let exit = exit.unwrap_or_else(|| {
        let _ = worker.kill();
        panic!("the worker did not stop within 5 s of SIGTERM")
    });
    assert!(exit.success(), "{exit:?}");
    // Its one attempt was recorded before it stopped; nothing is left to retry.
    let delivery = settled_delivery(&app, &acme.key, &id).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(receiver.all().len(), 1);
}

#[actix_rt::test]
async fn a_delivery_out_of_attempts_is_failed_in_the_log_and_can_be_retried_by_hand() {
    let mut webhooks = test_webhooks();
    webhooks.worker.schedule =
        domain::webhook::RetrySchedule::parse("0s,50ms").expect("a valid schedule");
    let app = spawn_app_configured(generous_limits(), webhooks.clone()).await;
    let acme = app.tenant("Acme").await;
    let receiver = Receiver::start(vec![500, 500]);
    let (id, _) = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    write_event(&app, &acme.id, "Unlucky").await;
    start_worker_with(&app, webhooks);
    receiver.wait_for(2).await;
    let delivery = settled_delivery(&app, &acme.key, &id).await;
    assert_eq!(delivery["status"], "failed", "{delivery}");
    assert_eq!(delivery["attempts"], 2);
    assert_eq!(delivery["nextAttemptAt"], Value::Null);
    assert_eq!(delivery["lastStatusCode"], 500);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.all().len(), 2, "no attempt after the last one");

    let delivery_id = delivery["id"].as_str().expect("id");
    let retried = app
        .post(
            &format!("/v1/webhooks/{id}/deliveries/{delivery_id}/retry"),
            &acme.key,
            &json!({}),
        )
        .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body["data"]["status"], "pending");
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].header("webhook-id"), got[0].header("webhook-id"));
    let delivery = settled_delivery(&app, &acme.key, &id).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attempts"], 3);
    // Another tenant can neither see nor retry it.
    let other = app.tenant("Globex").await;
    assert_eq!(
        app.post(
            &format!("/v1/webhooks/{id}/deliveries/{delivery_id}/retry"),
            &other.key,
            &json!({}),
        )
        .await
        .status,
        404
    );
}

#[actix_rt::test]
async fn an_endpoint_failing_for_five_days_is_disabled_with_a_reason() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let receiver = Receiver::start(vec![500]);
    let (id, _) = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    // It has failed every attempt since six days ago.
    let owner = app.db.owner().await;
    exec(
        &owner,
        &format!(
            "UPDATE webhook_subscriptions SET failing_since = now() - interval '6 days' \
              WHERE id = '{id}'"
        ),
    )
    .await
    .expect("backdated");
    write_event(&app, &acme.id, "Again").await;
    start_worker(&app);
    receiver.wait_for(1).await;
    let subscription = disabled_subscription(&app, &acme.key, &id).await;
    assert!(
        subscription["data"]["disabledReason"]
            .as_str()
            .is_some_and(|r| r.contains("5 days")),
        "{subscription}"
    );
    let delivery = settled_delivery(&app, &acme.key, &id).await;
    assert_eq!(delivery["status"], "failed", "{delivery}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.all().len(), 1, "no retry to a disabled endpoint");
}

#[test]
fn a_worker_refuses_a_lease_that_a_send_could_outlast() {
    let binary = crm_binary();
    let output = std::process::Command::new(&binary)
        .arg("worker")
        .env("DATABASE_URL", "postgres://crm_app@127.0.0.1:1/unused")
        .env("WEBHOOK_LEASE_SECS", "10")
        .env("WEBHOOK_TIMEOUT_MS", "15000")
        .output()
        .expect("crm runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WEBHOOK_LEASE_SECS") && stderr.contains("longer than the send timeout"),
        "{stderr}"
    );
}
