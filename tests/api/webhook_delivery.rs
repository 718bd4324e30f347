//! Webhook delivery over HTTP with a real receiver: signed deliveries, retries and their
//! schedule, the delivery log, disabling a failing endpoint, several workers, and the real
//! `crm worker` binary killed or stopped mid-delivery.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    as_tenant, exec, generous_limits, scalar_i64, spawn_app, spawn_app_configured, test_webhooks,
};
use crate::webhooks::{
    Answer, Receiver, crm_binary, crm_worker, disabled_subscription, settled_delivery,
    start_worker, start_worker_with, subscribe, write_event,
};

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
