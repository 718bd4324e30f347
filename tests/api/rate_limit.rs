//! Rate limits over HTTP: headers on every response, 429 after exactly the quota, no side
//! effect when refused, per-key and per-tenant counting, client addresses, every route
//! covered, and one limit shared by two instances through Redis.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use domain::rate_limit::{PolicyName, RatePolicy};
use serde_json::json;
use server::RateLimitConfig;

use crate::helpers::{Reply, TestApp, generous_limits, spawn_app_with, start_server};

pub(crate) fn policy(name: PolicyName, quota: u32, window_seconds: u64) -> RatePolicy {
    RatePolicy::new(
        name,
        NonZeroU32::new(quota).expect("non-zero"),
        Duration::from_secs(window_seconds),
    )
}

/// Generous limits except for the given policies.
pub(crate) fn limits(tight: &[RatePolicy]) -> RateLimitConfig {
    let mut config = generous_limits();
    for policy in tight {
        config.policies.set(*policy);
    }
    config
}

fn number(reply: &Reply, header: &str) -> u64 {
    reply
        .header(header)
        .unwrap_or_else(|| panic!("{header} present"))
        .parse()
        .unwrap_or_else(|_| panic!("{header} is a number"))
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

async fn new_key(app: &TestApp, owner_key: &str, name: &str) -> String {
    let made = app
        .post(
            "/v1/api-keys",
            owner_key,
            &json!({"name": name, "scopes": ["*"]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    made.body["data"]["key"].as_str().expect("key").to_owned()
}

#[actix_rt::test]
async fn every_response_carries_consistent_headers_and_remaining_counts_down_by_one() {
    let app = spawn_app_with(limits(&[policy(PolicyName::Authenticated, 5, 60)])).await;
    let acme = app.tenant("Acme").await;
    let mut previous = None;
    for expected in [4_u64, 3, 2] {
        let reply = app.get("/v1/contacts", &acme.key).await;
        assert_eq!(reply.status, 200);
        assert_eq!(number(&reply, "x-ratelimit-limit"), 5);
        let remaining = number(&reply, "x-ratelimit-remaining");
        assert_eq!(remaining, expected);
        if let Some(previous) = previous {
            assert_eq!(remaining, previous - 1, "one less per request");
        }
        previous = Some(remaining);
        assert!(
            number(&reply, "x-ratelimit-reset") >= epoch_now(),
            "reset in the future"
        );
        assert_eq!(
            reply.header("ratelimit-policy").as_deref(),
            Some("\"authenticated\";q=5;w=60")
        );
        let draft = reply.header("ratelimit").expect("RateLimit header");
        assert!(
            draft.starts_with(&format!("\"authenticated\";r={expected};t=")),
            "{draft}"
        );
    }
    // Failures carry them too.
    let missing = app
        .get(
            "/v1/contacts/00000000-0000-0000-0000-000000000000",
            &acme.key,
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(number(&missing, "x-ratelimit-remaining"), 1);
}

#[actix_rt::test]
async fn the_request_after_the_quota_is_429_changes_nothing_and_retry_after_is_honoured() {
    // Three at once, one back every second.
    let app = spawn_app_with(limits(&[policy(PolicyName::Authenticated, 3, 3)])).await;
    let acme = app.tenant("Acme").await;
    for n in 0..3 {
        let made = app
            .post(
                "/v1/contacts",
                &acme.key,
                &json!({"firstName": format!("P{n}")}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
    }
    let refused = app
        .post(
            "/v1/contacts",
            &acme.key,
            &json!({"firstName": "one too many"}),
        )
        .await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.code(), "RATE_LIMITED");
    assert_eq!(refused.body["details"]["policy"], "authenticated");
    let wait = refused.body["details"]["retryAfterSeconds"]
        .as_u64()
        .expect("retryAfterSeconds");
    assert!((1..=3).contains(&wait), "{wait}");
    assert_eq!(number(&refused, "retry-after"), wait);
    assert_eq!(number(&refused, "x-ratelimit-remaining"), 0);
    assert_eq!(
        app.contact_rows().await,
        3,
        "the refused request wrote nothing"
    );

    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = app
        .post(
            "/v1/contacts",
            &acme.key,
            &json!({"firstName": "after waiting"}),
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
}

#[actix_rt::test]
async fn one_exhausted_key_does_not_limit_another() {
    let app = spawn_app_with(limits(&[policy(PolicyName::Authenticated, 2, 60)])).await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    for _ in 0..2 {
        assert_eq!(app.get("/v1/contacts", &acme.key).await.status, 200);
    }
    assert_eq!(app.get("/v1/contacts", &acme.key).await.status, 429);
    let other = app.get("/v1/contacts", &globex.key).await;
    assert_eq!(other.status, 200);
    assert_eq!(number(&other, "x-ratelimit-remaining"), 1);
}

#[actix_rt::test]
async fn the_tenant_policy_counts_all_keys_of_a_tenant_together() {
    let app = spawn_app_with(limits(&[policy(PolicyName::Tenant, 4, 60)])).await;
    let acme = app.tenant("Acme").await;
    let second = new_key(&app, &acme.key, "second").await; // the tenant's 1st request
    let mut statuses = Vec::new();
    for n in 0..4 {
        let key = if n % 2 == 0 { &acme.key } else { &second };
        statuses.push(app.get("/v1/contacts", key).await.status);
    }
    assert_eq!(
        statuses,
        vec![200, 200, 200, 429],
        "4 for the tenant, whichever key"
    );
    let refused = app.get("/v1/contacts", &second).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["details"]["policy"], "tenant");
    assert_eq!(
        refused.header("ratelimit-policy").as_deref(),
        Some("\"tenant\";q=4;w=60"),
        "the tightest policy is reported"
    );
    let created = app
        .post("/v1/contacts", &acme.key, &json!({"firstName": "refused"}))
        .await;
    assert_eq!(created.status, 429);
    assert_eq!(
        app.contact_rows().await,
        0,
        "refused after authentication, nothing written"
    );
    let other = app.tenant("Globex").await;
    assert_eq!(app.get("/v1/contacts", &other.key).await.status, 200);
}

async fn login_attempt(app: &TestApp, forwarded_for: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = forwarded_for
        .map(|ip| vec![("X-Forwarded-For", ip)])
        .unwrap_or_default();
    app.call(
        "POST",
        "/v1/auth/login",
        None,
        Some(&json!({"email": "nobody@example.com", "password": "wrong password 123"})),
        &headers,
    )
    .await
}

#[actix_rt::test]
async fn a_spoofed_forwarded_for_changes_nothing_without_trusted_proxies() {
    let app = spawn_app_with(limits(&[policy(PolicyName::Auth, 2, 60)])).await;
    assert_eq!(login_attempt(&app, Some("198.51.100.1")).await.status, 401);
    assert_eq!(login_attempt(&app, Some("198.51.100.2")).await.status, 401);
    let third = login_attempt(&app, Some("198.51.100.3")).await;
    assert_eq!(third.status, 429, "all three came from 127.0.0.1");
    assert_eq!(third.body["details"]["policy"], "auth");
}

#[actix_rt::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_quota() {
    let mut config = limits(&[policy(PolicyName::Auth, 2, 60)]);
    config.trusted_proxies =
        api_actix::client_ip::TrustedProxies::parse("127.0.0.1/32").expect("valid");
    let app = spawn_app_with(config).await;
    for _ in 0..2 {
        assert_eq!(login_attempt(&app, Some("198.51.100.1")).await.status, 401);
    }
    assert_eq!(login_attempt(&app, Some("198.51.100.1")).await.status, 429);
    // The client forged the first hop; the proxy appended the real one.
    assert_eq!(
        login_attempt(&app, Some("198.51.100.1, 198.51.100.2"))
            .await
            .status,
        401,
        "another client behind the same proxy"
    );
    assert_eq!(
        login_attempt(&app, Some("203.0.113.50, 198.51.100.1"))
            .await
            .status,
        429,
        "a forged left-most address does not help"
    );
}

fn placeholder(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("00000000-0000-0000-0000-000000000000");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

#[actix_rt::test]
async fn every_route_is_under_a_rate_limit_policy() {
    let app = spawn_app_with(generous_limits()).await;
    let acme = app.tenant("Acme").await;
    let spec = app.call("GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(spec.status, 200);
    let mut checked = 0;
    let paths = spec.body["paths"].as_object().expect("paths");
    let mut requests: Vec<(String, String)> = Vec::new();
    for (path, operations) in paths {
        for method in operations.as_object().expect("operations").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                requests.push((method.to_uppercase(), placeholder(path)));
            }
        }
    }
    assert!(
        requests.len() > 40,
        "the document lists the API: {}",
        requests.len()
    );
    // Routes the document does not describe, and the 404 fallback.
    for extra in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/login/qr",
        "/no/such/route",
    ] {
        requests.push(("GET".to_owned(), extra.to_owned()));
    }
    for (method, path) in &requests {
        for key in [None, Some(acme.key.as_str())] {
            let mut request = app.client.request(
                awc::http::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", app.address),
            );
            if let Some(key) = key {
                request = request.insert_header(("Authorization", format!("Bearer {key}")));
            }
            let reply = if method == "GET" || method == "DELETE" {
                request.send().await
            } else {
                request.send_json(&json!({})).await
            }
            .expect("request sent");
            let headers = reply.headers();
            assert!(
                headers.contains_key("ratelimit-policy")
                    && headers.contains_key("x-ratelimit-remaining"),
                "{method} {path} (key: {}) answered {} without rate-limit headers",
                key.is_some(),
                reply.status()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, requests.len() * 2);
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

#[actix_rt::test]
async fn two_instances_sharing_redis_enforce_one_combined_limit() {
    let mut config = limits(&[policy(PolicyName::Authenticated, 4, 60)]);
    config.redis_url = Some(redis_url());
    config.redis_prefix = format!("crm-test:{}:", uuid::Uuid::new_v4().simple());
    let app = spawn_app_with(config.clone()).await;
    let second = start_server(&app.db, config).await;
    let acme = app.tenant("Acme").await;
    let mut allowed = 0;
    for n in 0..10 {
        let base = if n % 2 == 0 {
            app.address.clone()
        } else {
            second.clone()
        };
        let reply = app
            .client
            .get(format!("{base}/v1/contacts"))
            .insert_header(("Authorization", format!("Bearer {}", acme.key)))
            .send()
            .await
            .expect("request sent");
        match reply.status().as_u16() {
            200 => allowed += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        allowed, 4,
        "the quota once across both instances, not twice"
    );
}

/// The `t` of the `RateLimit` field.
fn field_t(reply: &Reply) -> u64 {
    let field = reply.header("ratelimit").expect("RateLimit present");
    field
        .rsplit_once(";t=")
        .and_then(|(_, t)| t.parse().ok())
        .unwrap_or_else(|| panic!("a t in {field}"))
}

#[actix_rt::test]
async fn reset_t_and_retry_after_name_the_same_instant_on_every_response_a_429_included() {
    let app = spawn_app_with(limits(&[
        policy(PolicyName::Authenticated, 2, 10),
        policy(PolicyName::Tenant, 3, 10),
    ]))
    .await;
    let acme = app.tenant("Acme").await;
    let second = app
        .post(
            "/v1/api-keys",
            &acme.key,
            &json!({"name": "second", "scopes": ["*"]}),
        )
        .await;
    let second = second.body["data"]["key"].as_str().expect("key").to_owned();
    let mut refusals = Vec::new();
    // The POST above was one request of both quotas. The first key's own quota (2) runs
    // out on its next-but-one request; the tenant's (3) on the second key's second one.
    for key in [&acme.key, &acme.key, &second, &second] {
        let before = epoch_now();
        let reply = app.get("/v1/contacts", key).await;
        let after = epoch_now();
        let reset = number(&reply, "x-ratelimit-reset");
        let t = field_t(&reply);
        assert!(
            (before..=after).contains(&(reset - t)),
            "X-RateLimit-Reset ({reset}) is the response's second ({before}..{after}) plus t ({t})"
        );
        if reply.status == 429 {
            assert_eq!(number(&reply, "retry-after"), t, "Retry-After is t");
            assert_eq!(reply.body["details"]["retryAfterSeconds"], t);
            assert!(t >= 1);
            refusals.push(reply.body["details"]["policy"].as_str().map(str::to_owned));
        }
    }
    assert_eq!(
        refusals,
        vec![Some("authenticated".to_owned()), Some("tenant".to_owned())],
        "a refusal by the middleware and one by the extractor"
    );
}
