//! Webhook subscriptions over HTTP with a real receiver: the secret shown once, who may
//! manage them, refused destinations, the test send and secret rotation. Also the shared
//! helpers of the webhook suites (the [`Receiver`], subscribing, writing events, running
//! workers, waiting on the delivery log); the SQL-level tests are in `webhook_sql` and the
//! delivery tests in `webhook_delivery`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web as actix_web_web};
use domain::webhook::WebhookSecret;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, as_tenant, exec, generous_limits, spawn_app, spawn_app_configured, test_webhooks,
};

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
    pub(crate) status: u16,
    /// Milliseconds to wait before answering.
    pub(crate) delay: u64,
    /// A `Retry-After` header to send, in seconds.
    pub(crate) retry_after: Option<u32>,
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
    pub(crate) fn answering(script: Vec<Answer>) -> Self {
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
/// role (checked like `crm worker` checks it), until the test ends.
///
/// The worker gets a thread and a runtime of its own and is stopped gracefully: the test's
/// runtime holds only the stop signal. Run on the test's own runtime instead, a worker
/// caught mid-pass when the test ends would have its open transaction dropped outside
/// any runtime, and sqlx's connection hand-back panics there (an abort of the whole
/// test binary).
pub(crate) fn start_worker_with(app: &TestApp, config: server::WebhookConfig) {
    let store_url = app.db.worker_url.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let store = server::connect_worker(&store_url, &config)
                .await
                .expect("worker connects as crm_worker");
            server::deliver_until(store, config, stopped).await;
        });
    });
    let guard = StopOnDrop(stop);
    // Dropped with the test's runtime, whichever way the test ends.
    actix_rt::spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
}

/// Tells a worker to stop once its pass under way is done.
struct StopOnDrop(tokio::sync::watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
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
pub(crate) fn crm_worker(app: &TestApp, lease_secs: &str, timeout_ms: &str) -> std::process::Child {
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

/// Subscription `id` once the worker has disabled it.
pub(crate) async fn disabled_subscription(app: &TestApp, key: &str, id: &str) -> Value {
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
