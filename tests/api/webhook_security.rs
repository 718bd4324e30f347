//! Issue 11, points 6-8, as an attacker would try them: a slow name server against the
//! pool, a receiver answering bytes the database cannot store, the API role reaching for
//! the worker's doors, and a demo sandbox used as a free webhook cannon.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use ports::{LocalBoxFuture, OutgoingWebhook, WebhookReply, WebhookSendError, WebhookSender};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestDb, count, exec, generous_limits, scalar_i64, serve_config, spawn_app,
    test_webhooks,
};
use crate::webhooks::{settled_delivery, start_worker, subscribe, write_event};

// ---------------------------------------------------------------------------------------
// Point 6: no untrusted I/O while holding a connection.

/// A webhook sender whose destination check plays a tenant's slow name server: for URLs
/// containing `slow-dns` it waits until the test opens the gate. Shared by every HTTP
/// worker thread's copy.
#[derive(Clone)]
struct SlowNameServer {
    waiting: Arc<AtomicUsize>,
    gate: tokio::sync::watch::Receiver<bool>,
    busy: bool,
}

impl WebhookSender for SlowNameServer {
    fn vet<'a>(&'a self, url: &'a str) -> LocalBoxFuture<'a, Result<(), WebhookSendError>> {
        Box::pin(async move {
            if self.busy {
                return Err(WebhookSendError::Busy);
            }
            if url.contains("slow-dns") {
                self.waiting.fetch_add(1, Ordering::SeqCst);
                let mut gate = self.gate.clone();
                let _ = gate.wait_for(|open| *open).await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
            }
            Ok(())
        })
    }

    fn send<'a>(
        &'a self,
        _webhook: &'a OutgoingWebhook,
    ) -> LocalBoxFuture<'a, Result<WebhookReply, WebhookSendError>> {
        Box::pin(async { Err(WebhookSendError::Failed("not in this test".into())) })
    }
}

/// The application with a pool of `pool_size` connections and `sender` as its webhook
/// sender.
async fn spawn_with_sender(pool_size: u32, sender: SlowNameServer) -> TestApp {
    let db = TestDb::create().await;
    let mut webhooks = test_webhooks();
    webhooks.deliver_in_serve = false;
    let mut config = serve_config(&db, generous_limits(), webhooks);
    config.pool_size = pool_size;
    let make_sender: server::MakeSender =
        Arc::new(move || Rc::new(sender.clone()) as Rc<dyn WebhookSender>);
    let running = server::start_with_sender(&config, Some(make_sender))
        .await
        .expect("server starts");
    TestApp::serving(db, running)
}

#[actix_rt::test]
async fn registrations_waiting_on_a_slow_name_server_hold_no_database_connection() {
    let (open, gate) = tokio::sync::watch::channel(false);
    let waiting = Arc::new(AtomicUsize::new(0));
    let sender = SlowNameServer {
        waiting: Arc::clone(&waiting),
        gate,
        busy: false,
    };
    // Two connections for the whole API; three registrations hang in DNS.
    let app = Rc::new(spawn_with_sender(2, sender).await);
    let acme = app.tenant("Acme").await;
    let (existing, _) = subscribe(
        &app,
        &acme.key,
        "https://fast.example.com/hook",
        json!(["*"]),
    )
    .await;
    let mut hanging = Vec::new();
    for n in 0..2 {
        let (app, key) = (Rc::clone(&app), acme.key.clone());
        hanging.push(actix_rt::spawn(async move {
            app.post(
                "/v1/webhooks",
                &key,
                &json!({"url": format!("https://slow-dns-{n}.example.com/hook"), "events": ["*"]}),
            )
            .await
            .status
        }));
    }
    {
        let (app, key, id) = (Rc::clone(&app), acme.key.clone(), existing.clone());
        hanging.push(actix_rt::spawn(async move {
            app.call(
                "PATCH",
                &format!("/v1/webhooks/{id}"),
                Some(&key),
                Some(&json!({"url": "https://slow-dns-patch.example.com/hook"})),
                &[],
            )
            .await
            .status
        }));
    }
    let started = Instant::now();
    while waiting.load(Ordering::SeqCst) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the registrations did not reach DNS"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Every other request of every tenant still gets a connection at once (before the
    // fix: each registration held one of the two in its open transaction, and this one
    // waited for the pool's 5 s acquire timeout, then got 503).
    for _ in 0..3 {
        let listed =
            tokio::time::timeout(Duration::from_secs(3), app.get("/v1/webhooks", &acme.key))
                .await
                .expect("answered while the registrations wait on DNS");
        assert_eq!(listed.status, 200, "{}", listed.body);
        assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
    }
    assert_eq!(waiting.load(Ordering::SeqCst), 3, "still waiting on DNS");

    open.send(true).expect("open the gate");
    let mut statuses = Vec::new();
    for request in hanging {
        statuses.push(request.await.expect("request task"));
    }
    assert_eq!(statuses, vec![201, 201, 200]);
    let listed = app.get("/v1/webhooks", &acme.key).await;
    let urls: Vec<&str> = listed.body["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["url"].as_str())
        .collect();
    assert_eq!(urls.len(), 3);
    assert!(urls.contains(&"https://slow-dns-patch.example.com/hook"));
}

#[actix_rt::test]
async fn registrations_beyond_the_look_up_bound_are_503_and_store_nothing() {
    let (_open, gate) = tokio::sync::watch::channel(false);
    let sender = SlowNameServer {
        waiting: Arc::new(AtomicUsize::new(0)),
        gate,
        busy: true,
    };
    let app = spawn_with_sender(2, sender).await;
    let acme = app.tenant("Acme").await;
    let refused = app
        .post(
            "/v1/webhooks",
            &acme.key,
            &json!({"url": "https://hooks.example.com/in", "events": ["*"]}),
        )
        .await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.code(), "UNAVAILABLE");
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    let owner = app.db.owner().await;
    assert_eq!(
        count(&owner, "SELECT count(*) FROM webhook_subscriptions").await,
        0
    );
}

// ---------------------------------------------------------------------------------------
// Point 7: a receiver cannot poison the queue.

/// A local receiver answering each request with the next (status, raw body bytes) of its
/// script, then 200 "ok"; it records when each request came.
struct RawReceiver {
    url: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl RawReceiver {
    fn start(script: Vec<(u16, Vec<u8>)>) -> Self {
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let (log, plan) = (Arc::clone(&arrivals), Arc::clone(&script));
        let server = HttpServer::new(move || {
            let (log, plan) = (Arc::clone(&log), Arc::clone(&plan));
            App::new().default_service(web::to(move || {
                let (log, plan) = (Arc::clone(&log), Arc::clone(&plan));
                async move {
                    log.lock().expect("log").push(Instant::now());
                    let (status, body) = {
                        let mut plan = plan.lock().expect("plan");
                        if plan.is_empty() {
                            (200, b"ok".to_vec())
                        } else {
                            plan.remove(0)
                        }
                    };
                    HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(status).expect("a status"),
                    )
                    .content_type("text/plain; charset=utf-8")
                    .body(body)
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind the receiver");
        let port = server.addrs()[0].port();
        actix_rt::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            arrivals,
        }
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().expect("log").clone()
    }
}

#[actix_rt::test]
async fn answers_with_nul_bytes_and_invalid_utf8_are_recorded_and_retried_on_schedule() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let receiver = RawReceiver::start(vec![
        (500, b"boom\x00\xff\xfe\x00end".to_vec()),
        (200, b"\x00\x00ok \xc3\x28 \xe2\x82".to_vec()),
    ]);
    let (id, _) = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    write_event(&app, &acme.id, "Poison").await;
    start_worker(&app);
    // Settled within seconds (the test schedule retries after 200 ms), not after the
    // 30 s lease: before the fix the first attempt could not be recorded, and the
    // delivery went out again at every lease expiry.
    let delivery = settled_delivery(&app, &acme.key, &id).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attempts"], 2, "{delivery}");
    let log = delivery["attemptLog"].as_array().expect("attempts");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["statusCode"], 500);
    assert_eq!(log[0]["responseBody"], "boom\u{fffd}\u{fffd}end");
    assert_eq!(log[1]["statusCode"], 200);
    assert_eq!(log[1]["responseBody"], "ok \u{fffd}( \u{fffd}");
    let arrivals = receiver.arrivals();
    assert_eq!(arrivals.len(), 2, "no extra sends");
    assert!(
        arrivals[1] - arrivals[0] < Duration::from_secs(10),
        "the retry followed the schedule, not the lease"
    );
    let owner = app.db.owner().await;
    assert_eq!(
        count(
            &owner,
            "SELECT count(*) FROM webhook_attempts WHERE position(chr(65533) IN response_body) > 0"
        )
        .await,
        2,
        "stored lossily, without NUL"
    );
}

#[actix_rt::test]
async fn an_attempt_that_cannot_be_recorded_counts_as_a_failed_attempt_on_the_schedule() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    // Something the database refuses about this answer, whatever it is: here a
    // constraint the first answer breaks.
    let owner = app.db.owner().await;
    exec(
        &owner,
        "ALTER TABLE webhook_attempts ADD CONSTRAINT no_poison \
         CHECK (response_body IS NULL OR response_body NOT LIKE '%poison%')",
    )
    .await
    .expect("constraint added");
    let receiver = RawReceiver::start(vec![(200, b"poison".to_vec())]);
    let (id, _) = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    write_event(&app, &acme.id, "Unrecordable").await;
    start_worker(&app);
    let delivery = settled_delivery(&app, &acme.key, &id).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attempts"], 2, "{delivery}");
    let log = delivery["attemptLog"].as_array().expect("attempts");
    assert_eq!(log[0]["error"], app::webhooks::UNRECORDABLE_ATTEMPT);
    assert_eq!(log[0]["responseBody"], Value::Null);
    assert_eq!(log[1]["responseBody"], "ok");
    let arrivals = receiver.arrivals();
    assert_eq!(arrivals.len(), 2);
    assert!(
        arrivals[1] - arrivals[0] < Duration::from_secs(10),
        "retried on the schedule, not at the lease's expiry"
    );
}

// ---------------------------------------------------------------------------------------
// Point 8: least privilege for the worker.

#[actix_rt::test]
async fn the_api_role_cannot_claim_deliveries_nor_sweep_history() {
    let db = TestDb::create().await;
    let app = db.app_role().await;
    for sql in [
        "SELECT count(*) FROM crm_claim_webhook_deliveries(10, interval '1 minute')",
        "SELECT crm_sweep_webhook_history(interval '30 days', 10)",
    ] {
        let refused = exec(&app, sql).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("permission denied")),
            "crm_app must not run {sql}: {refused:?}"
        );
    }
    // The worker reads no CRM data and, with no tenant set, no deliveries either.
    let worker = db.worker_role().await;
    assert!(
        exec(&worker, "SELECT count(*) FROM contacts")
            .await
            .is_err()
    );
    assert!(
        exec(&worker, "SELECT secret FROM webhook_subscriptions")
            .await
            .is_err()
    );
    assert_eq!(
        count(&worker, "SELECT count(*) FROM webhook_deliveries").await,
        0
    );
}

/// A tenant with one subscription and `events` events, written as the API would.
async fn tenant_with_events(app: &TestApp, name: &str, events: usize) -> (String, String) {
    let tenant = app.tenant(name).await;
    let (id, _) = subscribe(
        app,
        &tenant.key,
        "http://127.0.0.1:9/never-called",
        json!(["*"]),
    )
    .await;
    for n in 0..events {
        write_event(app, &tenant.id, &format!("Contact {n}")).await;
    }
    (tenant.id, id)
}

#[actix_rt::test]
async fn the_worker_cannot_choose_its_lease_batch_or_retention_past_the_database_bounds() {
    let app = spawn_app().await;
    let (tenant, _) = tenant_with_events(&app, "Acme", 120).await;
    let worker = app.db.worker_role().await;
    let owner = app.db.owner().await;
    // A lease of a century and a batch of a million: one hour, a hundred.
    assert_eq!(
        scalar_i64(
            &worker,
            "SELECT count(*) FROM crm_claim_webhook_deliveries(1000000, interval '100 years')"
        )
        .await,
        100
    );
    assert_eq!(
        count(
            &owner,
            "SELECT count(*) FROM webhook_deliveries \
              WHERE lease_until > now() + interval '1 hour 1 minute'"
        )
        .await,
        0,
        "no lease longer than an hour"
    );
    assert_eq!(
        count(
            &owner,
            "SELECT count(*) FROM webhook_deliveries WHERE lease_until IS NOT NULL"
        )
        .await,
        100
    );
    // Retention of zero seconds: still 7 days. Everything is delivered; 60 events are
    // 6 days old, the others 8.
    let events = format!("SELECT count(*) FROM events WHERE tenant_id = '{tenant}'");
    let total = count(&owner, &events).await;
    for sql in [
        format!("UPDATE webhook_deliveries SET status = 'succeeded' WHERE tenant_id = '{tenant}'"),
        format!(
            "UPDATE events SET created_at = now() - interval '8 days' WHERE tenant_id = '{tenant}'"
        ),
        format!(
            "UPDATE events SET created_at = now() - interval '6 days' WHERE tenant_id = '{tenant}' \
               AND seq IN (SELECT seq FROM events WHERE tenant_id = '{tenant}' \
                            ORDER BY seq DESC LIMIT 60)"
        ),
    ] {
        exec(&owner, &sql).await.expect("aged");
    }
    let removed = scalar_i64(
        &worker,
        "SELECT crm_sweep_webhook_history(interval '0 seconds', 1000000)",
    )
    .await;
    assert_eq!(removed, total - 60, "only what is older than 7 days");
    assert_eq!(count(&owner, &events).await, 60);
}

#[actix_rt::test]
async fn neither_the_server_nor_the_worker_starts_with_a_worker_role_that_escapes_its_bounds() {
    let db = TestDb::create().await;
    let start_with_worker_url = |url: &str| {
        let mut webhooks = test_webhooks();
        webhooks.worker_database_url = Some(url.to_owned());
        serve_config(&db, generous_limits(), webhooks)
    };
    // A superuser bypasses RLS; crm_app cannot claim.
    for (url, expected) in [
        (db.owner_url.clone(), "superuser"),
        (db.app_url.clone(), "may not claim webhook deliveries"),
    ] {
        match server::start(&start_with_worker_url(&url)).await {
            Err(server::StartError::Role(error)) => {
                let message = error.to_string();
                assert!(
                    message.contains(expected) && message.contains("crm_worker"),
                    "{message}"
                );
            }
            Err(other) => panic!("refused for the wrong reason: {other}"),
            Ok(_) => panic!("a worker as {url} must be refused"),
        }
    }
    // And the API refuses to run as the worker (it could claim every tenant's secrets).
    let mut as_worker = serve_config(&db, generous_limits(), test_webhooks());
    as_worker.database_url = db.worker_url.clone();
    match server::start(&as_worker).await {
        Err(server::StartError::Role(error)) => {
            assert!(error.to_string().contains("crm_worker"), "{error}");
        }
        Err(other) => panic!("refused for the wrong reason: {other}"),
        Ok(_) => panic!("the API must not run as crm_worker"),
    }
    // The real `crm worker` binary, pointed at the superuser.
    let binary = std::env::current_exe()
        .expect("test binary path")
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/debug")
        .join("crm");
    let output = std::process::Command::new(&binary)
        .arg("worker")
        .env("WORKER_DATABASE_URL", &db.owner_url)
        .env_remove("DATABASE_URL")
        .output()
        .expect("crm runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("superuser"), "{stderr}");
}

#[actix_rt::test]
async fn a_demo_sandbox_gets_at_most_twenty_deliveries_an_hour() {
    let app = spawn_app().await;
    let demo = app
        .call("POST", "/v1/auth/demo-login", None, None, &[])
        .await;
    assert_eq!(demo.status, 201, "{}", demo.body);
    let token = demo.body["data"]["session"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let sandbox = demo.body["data"]["tenant"]["id"]
        .as_str()
        .expect("tenant id")
        .to_owned();
    subscribe(
        &app,
        &token,
        "http://127.0.0.1:9/victim",
        json!(["contact.*"]),
    )
    .await;
    // 25 changes over HTTP, one of them a batch-sized burst from two clients at once.
    for n in 0..15 {
        let made = app
            .post(
                "/v1/contacts",
                &token,
                &json!({"firstName": format!("Spam {n}"), "email": format!("spam{n}@victim.example")}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
    }
    let app = Rc::new(app);
    let mut burst = Vec::new();
    for n in 15..25 {
        let (app, token) = (Rc::clone(&app), token.clone());
        burst.push(actix_rt::spawn(async move {
            app.post(
                "/v1/contacts",
                &token,
                &json!({"firstName": format!("Spam {n}"), "email": format!("spam{n}@victim.example")}),
            )
            .await
            .status
        }));
    }
    for request in burst {
        assert_eq!(request.await.expect("request task"), 201);
    }
    let owner = app.db.owner().await;
    let deliveries =
        format!("SELECT count(*) FROM webhook_deliveries WHERE tenant_id = '{sandbox}'");
    assert_eq!(count(&owner, &deliveries).await, 20);
    let events = format!(
        "SELECT count(*) FROM events WHERE tenant_id = '{sandbox}' AND type = 'contact.created' \
           AND object ->> 'first_name' LIKE 'Spam %'"
    );
    assert_eq!(
        count(&owner, &events).await,
        25,
        "every change is still in its event log"
    );
    // An hour later the sandbox may send again; an ordinary tenant was never capped.
    exec(
        &owner,
        &format!(
            "UPDATE webhook_deliveries SET created_at = now() - interval '61 minutes' \
              WHERE tenant_id = '{sandbox}'"
        ),
    )
    .await
    .expect("an hour passes");
    write_event(&app, &sandbox, "Later").await;
    assert_eq!(count(&owner, &deliveries).await, 21);
    let (ordinary, _) = tenant_with_events(&app, "Acme", 25).await;
    assert_eq!(
        count(
            &owner,
            &format!("SELECT count(*) FROM webhook_deliveries WHERE tenant_id = '{ordinary}'")
        )
        .await,
        25
    );
}

#[actix_rt::test]
async fn an_idempotent_registration_is_stored_once_although_it_runs_in_two_units_of_work() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let body = json!({"url": "https://hooks.example.com/once", "events": ["*"]});
    let first = app
        .call(
            "POST",
            "/v1/webhooks",
            Some(&acme.key),
            Some(&body),
            &[("Idempotency-Key", "register-once")],
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = app
        .call(
            "POST",
            "/v1/webhooks",
            Some(&acme.key),
            Some(&body),
            &[("Idempotency-Key", "register-once")],
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.id(), first.id());
    let owner = app.db.owner().await;
    assert_eq!(
        count(&owner, "SELECT count(*) FROM webhook_subscriptions").await,
        1
    );
}
