//! The Prometheus recorder of the process and what `/metrics` reads at scrape time.
//!
//! One recorder per process (`metrics-exporter-prometheus`, installed on first use), fed
//! by the `metrics` facade from every crate: HTTP requests and latency (api-actix), rate
//! limit refusals (api-actix), pool acquire times (adapters-postgres), webhook attempts
//! (app), sweep deletions (here). The pool and queue gauges are read fresh at each scrape.
//! Durations are histograms in seconds with fixed buckets.

use std::sync::OnceLock;

use adapters_postgres::PgStore;
use api_actix::metrics::MetricsSource;
use futures_util::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of every `*_seconds` histogram: 1 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder handle, installing the recorder the first time.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed already; /metrics shows only its own");
        }
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(
        "http_requests_total",
        "Requests by route pattern, method and status"
    );
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Request latency by route pattern and method"
    );
    metrics::describe_counter!(
        "rate_limit_refusals_total",
        "Requests refused (429) by policy"
    );
    metrics::describe_histogram!(
        "db_pool_acquire_seconds",
        metrics::Unit::Seconds,
        "Time to get a pooled connection and begin a transaction"
    );
    metrics::describe_gauge!("db_pool_connections", "Open connections of the API pool");
    metrics::describe_gauge!(
        "db_pool_idle_connections",
        "Idle connections of the API pool"
    );
    metrics::describe_gauge!(
        "db_pool_max_connections",
        "Most connections of the API pool"
    );
    metrics::describe_gauge!(
        "db_pool_waiting",
        "Requests waiting for a pooled connection"
    );
    metrics::describe_counter!("webhook_attempts_total", "Delivery attempts by outcome");
    metrics::describe_gauge!(
        "webhook_pending_deliveries",
        "Deliveries pending, every tenant"
    );
    metrics::describe_gauge!(
        "webhook_oldest_due_seconds",
        metrics::Unit::Seconds,
        "How long the oldest due delivery has waited"
    );
    metrics::describe_counter!(
        "sweep_deletions_total",
        "Rows deleted by the background sweeps"
    );
}

/// Counts what a sweep deleted.
pub fn record_sweep(sweep: &'static str, removed: u64) {
    metrics::counter!("sweep_deletions_total", "sweep" => sweep).increment(removed);
}

/// `/metrics` of one API process.
#[derive(Debug)]
pub struct ServerMetrics {
    store: PgStore,
}

impl ServerMetrics {
    /// Metrics over `store` (the API pool), installing the recorder if needed.
    #[must_use]
    pub fn new(store: PgStore) -> Self {
        handle();
        Self { store }
    }
}

impl MetricsSource for ServerMetrics {
    fn scrape(&self) -> BoxFuture<'_, String> {
        Box::pin(async move {
            let pool = self.store.pool_stats();
            metrics::gauge!("db_pool_connections").set(f64::from(pool.size));
            metrics::gauge!("db_pool_idle_connections").set(f64::from(pool.idle));
            metrics::gauge!("db_pool_max_connections").set(f64::from(pool.max));
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("db_pool_waiting").set(pool.waiting as f64);
            match self.store.webhook_queue_stats().await {
                Ok((pending, oldest)) => {
                    #[allow(clippy::cast_precision_loss)]
                    metrics::gauge!("webhook_pending_deliveries").set(pending as f64);
                    metrics::gauge!("webhook_oldest_due_seconds").set(oldest);
                }
                Err(error) => tracing::warn!(%error, "webhook queue figures unavailable"),
            }
            let handle = handle();
            handle.run_upkeep();
            handle.render()
        })
    }
}
