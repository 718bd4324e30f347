//! `GET /metrics`: Prometheus text that a real parser reads, with the figures operators
//! need; not rate limited; guarded by `METRICS_TOKEN` when set.

use std::num::NonZeroU32;
use std::time::Duration;

use domain::rate_limit::{PolicyName, RatePolicy};
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};

use crate::helpers::{TestApp, TestDb, generous_limits, serve_config, test_webhooks};

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, String) {
    let mut request = app.client.get(format!("{}/metrics", app.address));
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = request.send().await.expect("scraped");
    let body = response.body().limit(16 * 1024 * 1024).await.expect("body");
    (
        response.status().as_u16(),
        String::from_utf8(body.to_vec()).expect("utf-8"),
    )
}

fn parse(text: &str) -> Exposition {
    parse_prometheus(text).unwrap_or_else(|e| panic!("not valid Prometheus text ({e:?}):\n{text}"))
}

/// One sample: its labels, its value (a histogram's count), whether it is a histogram.
type Found = (Vec<(String, String)>, f64, bool);

/// Every sample of `metric`.
fn samples(parsed: &Exposition, metric: &str) -> Vec<Found> {
    let Some(family) = parsed.families.get(metric) else {
        return Vec::new();
    };
    family
        .iter_samples()
        .map(|sample| {
            let labels = sample
                .get_labelset()
                .map(|set| set.iter().map(|(n, v)| (n.clone(), v.clone())).collect())
                .unwrap_or_default();
            let (value, histogram) = match &sample.value {
                PrometheusValue::Counter(c) => (c.value.as_f64(), false),
                PrometheusValue::Gauge(v) | PrometheusValue::Unknown(v) => (v.as_f64(), false),
                PrometheusValue::Histogram(h) => (h.count.map_or(0.0, |c| c as f64), true),
                PrometheusValue::Summary(s) => (s.count.map_or(0.0, |c| c as f64), false),
            };
            (labels, value, histogram)
        })
        .collect()
}

fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

async fn spawn(token: Option<&str>, authenticated_quota: u32) -> TestApp {
    let db = TestDb::create().await;
    let mut limits = generous_limits();
    limits.policies.set(RatePolicy::new(
        PolicyName::Authenticated,
        NonZeroU32::new(authenticated_quota).expect("non-zero"),
        Duration::from_secs(60),
    ));
    limits.policies.set(RatePolicy::new(
        PolicyName::Public,
        NonZeroU32::new(1).expect("non-zero"),
        Duration::from_secs(60),
    ));
    let mut config = serve_config(&db, limits, test_webhooks());
    config.metrics_token = token.map(str::to_owned);
    let running = server::start(&config).await.expect("server starts");
    TestApp::serving(db, running)
}

#[actix_rt::test]
async fn the_scrape_parses_and_shows_requests_latency_pool_limits_and_the_queue() {
    let app = spawn(None, 2).await;
    let acme = app.tenant("Acme").await;
    for _ in 0..3 {
        app.get("/v1/contacts", &acme.key).await; // the third is a 429
    }
    app.get(&format!("/v1/contacts/{}", uuid::Uuid::new_v4()), &acme.key)
        .await;
    // The scrape itself is under no policy: the public quota here is 1.
    for _ in 0..3 {
        assert_eq!(scrape(&app, None).await.0, 200);
    }
    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, 200);
    let parsed = parse(&text);

    let requests = samples(&parsed, "http_requests_total");
    let by = |route: &str, status: &str| {
        requests
            .iter()
            .filter(|(labels, _, _)| {
                label(labels, "route") == Some(route)
                    && label(labels, "method") == Some("GET")
                    && label(labels, "status") == Some(status)
            })
            .map(|(_, value, _)| value)
            .sum::<f64>()
    };
    assert!(by("/v1/contacts", "200") >= 2.0, "{requests:?}");
    assert!(by("/v1/contacts", "429") >= 1.0, "{requests:?}");
    assert!(
        by("/v1/contacts/{id}", "429") >= 1.0,
        "by pattern, not by path: {requests:?}"
    );
    assert!(
        requests.iter().all(|(labels, _, _)| !label(labels, "route")
            .is_some_and(|r| r.split('/').any(|part| uuid::Uuid::parse_str(part).is_ok()))),
        "no raw paths (ids) as labels: {requests:?}"
    );
    assert!(
        samples(&parsed, "http_request_duration_seconds")
            .iter()
            .any(|(labels, count, histogram)| *histogram
                && *count >= 1.0
                && label(labels, "route") == Some("/v1/contacts")),
        "a latency histogram per route"
    );
    assert!(
        samples(&parsed, "rate_limit_refusals_total")
            .iter()
            .any(
                |(labels, value, _)| label(labels, "policy") == Some("authenticated")
                    && *value >= 1.0
            )
    );
    for gauge in [
        "db_pool_connections",
        "db_pool_idle_connections",
        "db_pool_max_connections",
        "db_pool_waiting",
        "webhook_pending_deliveries",
        "webhook_oldest_due_seconds",
    ] {
        assert_eq!(samples(&parsed, gauge).len(), 1, "{gauge} in {text}");
    }
    assert!(samples(&parsed, "db_pool_max_connections")[0].1 >= 1.0);
    assert!(
        samples(&parsed, "db_pool_acquire_seconds")
            .iter()
            .any(|(_, count, histogram)| *histogram && *count >= 1.0),
        "pool acquire times"
    );
}

#[actix_rt::test]
async fn with_a_token_only_its_holder_scrapes() {
    let token = "scrape-token-0123456789";
    let app = spawn(Some(token), 100).await;
    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some("scrape-token-0123456780")).await.0, 401);
    let (status, text) = scrape(&app, Some(token)).await;
    assert_eq!(status, 200);
    parse(&text);
}
