//! Test harness: a fresh database per test (random name, migrated, dropped afterwards),
//! the real application started on 127.0.0.1:0 as the real `crm_app` role, tenants made
//! the way `crm tenant create` makes them, and small HTTP helpers.

use std::num::NonZeroU32;
use std::time::Duration;

use awc::Client;
use domain::rate_limit::RatePolicies;
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait,
};
use serde_json::Value;
use server::{RateLimitConfig, ServeConfig, WebhookConfig};
use uuid::Uuid;

/// The superuser URL tests create databases through.
pub fn admin_url() -> String {
    std::env::var("PG_ADMIN_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with another database and, optionally, another user (password dropped).
pub fn rewrite_url(url: &str, database: &str, user: Option<&str>) -> String {
    let (scheme, rest) = url.split_once("://").expect("URL has a scheme");
    let (authority_and_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = authority_and_path.split('/').next().unwrap_or_default();
    let authority = match (user, authority.rsplit_once('@')) {
        (Some(user), Some((_, host))) => format!("{user}@{host}"),
        (Some(user), None) => format!("{user}@{authority}"),
        (None, _) => authority.to_owned(),
    };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{scheme}://{authority}/{database}{query}")
}

/// A migrated database of its own, dropped (forcibly) when the value is dropped.
pub struct TestDb {
    pub name: String,
    /// Superuser URL of this database.
    pub owner_url: String,
    /// `crm_app` URL of this database.
    pub app_url: String,
    /// `crm_worker` URL of this database (the delivery worker's role).
    pub worker_url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("crm_test_{}", Uuid::new_v4().simple());
        let admin = admin_url();
        let db = Database::connect(admin.as_str())
            .await
            .expect("connect as admin");
        db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create database");
        let _ = db.close().await;
        let owner_url = rewrite_url(&admin, &name, None);
        let app_url = rewrite_url(&admin, &name, Some("crm_app"));
        let worker_url = rewrite_url(&admin, &name, Some("crm_worker"));
        let test_db = Self {
            name,
            owner_url,
            app_url,
            worker_url,
        };
        adapters_postgres::migrate(&test_db.owner_url)
            .await
            .expect("migrations apply");
        test_db
    }

    /// A superuser connection to this database (assertions on what is really stored).
    pub async fn owner(&self) -> DatabaseConnection {
        Database::connect(self.owner_url.as_str())
            .await
            .expect("connect as owner")
    }

    /// A `crm_app` connection to this database (SQL-level isolation tests).
    pub async fn app_role(&self) -> DatabaseConnection {
        Database::connect(self.app_url.as_str())
            .await
            .expect("connect as crm_app")
    }

    /// A `crm_worker` connection to this database (the worker's SQL doors).
    pub async fn worker_role(&self) -> DatabaseConnection {
        Database::connect(self.worker_url.as_str())
            .await
            .expect("connect as crm_worker")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a thread with its own to finish the job.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(db) = Database::connect(admin_url().as_str()).await {
                    let _ = db
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = db.close().await;
                }
            });
        })
        .join();
    }
}

/// One scalar from SQL.
pub async fn scalar_i64(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .expect("query runs")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("an integer")
}

/// A tenant and its owner API key.
pub struct TestTenant {
    pub id: String,
    pub key: String,
}

/// The running application.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub db: TestDb,
}

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// `data.id` of a single-resource answer.
    pub fn id(&self) -> String {
        self.body["data"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no data.id in {}", self.body))
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The error code of an error envelope (asserting its shape on the way).
    pub fn code(&self) -> &str {
        assert_eq!(
            self.body["success"], false,
            "expected an error envelope: {}",
            self.body
        );
        assert!(
            self.body["error"].is_string(),
            "error message present: {}",
            self.body
        );
        assert!(
            self.body["metadata"]["requestId"].is_string(),
            "request id present: {}",
            self.body
        );
        self.body["code"].as_str().expect("code is a string")
    }
}

/// Rate limits no ordinary test reaches (a million requests a second per policy); the
/// rate-limit tests pass their own.
pub fn generous_limits() -> RateLimitConfig {
    RateLimitConfig {
        policies: RatePolicies::uniform(
            NonZeroU32::new(1_000_000).expect("non-zero"),
            Duration::from_secs(1),
        ),
        ..RateLimitConfig::default()
    }
}

/// Webhook settings for tests: local receivers allowed, retries in milliseconds.
pub fn test_webhooks() -> WebhookConfig {
    WebhookConfig {
        allow_private: true,
        allow_http: true,
        worker: app::webhooks::WorkerSettings {
            schedule: domain::webhook::RetrySchedule::parse("0s,200ms,400ms")
                .expect("a valid schedule"),
            lease: Duration::from_secs(30),
            batch: 32,
        },
        poll_interval: Duration::from_millis(50),
        ..WebhookConfig::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(generous_limits()).await
}

/// The application with these rate limits.
pub async fn spawn_app_with(rate_limits: RateLimitConfig) -> TestApp {
    spawn_app_configured(rate_limits, test_webhooks()).await
}

/// The application with these rate limits and webhook settings.
pub async fn spawn_app_configured(
    rate_limits: RateLimitConfig,
    webhooks: WebhookConfig,
) -> TestApp {
    let db = TestDb::create().await;
    let address = start_server_with(&db, rate_limits, webhooks).await;
    let client = Client::builder().timeout(Duration::from_secs(30)).finish();
    TestApp {
        address,
        client,
        db,
    }
}

/// Starts one more server on `db` (another API instance), returning its base URL.
pub async fn start_server(db: &TestDb, rate_limits: RateLimitConfig) -> String {
    start_server_with(db, rate_limits, test_webhooks()).await
}

/// [`start_server`] with webhook settings.
pub async fn start_server_with(
    db: &TestDb,
    rate_limits: RateLimitConfig,
    webhooks: WebhookConfig,
) -> String {
    let config = serve_config(db, rate_limits, webhooks);
    let running = server::start(&config).await.expect("server starts");
    let address = format!("http://{}", running.address);
    actix_rt::spawn(running.server);
    address
}

/// The configuration the test servers run with, as `crm_app` on `db`.
pub fn serve_config(
    db: &TestDb,
    rate_limits: RateLimitConfig,
    webhooks: WebhookConfig,
) -> ServeConfig {
    ServeConfig {
        database_url: db.app_url.clone(),
        migration_database_url: None,
        bind_addr: "127.0.0.1:0".to_owned(),
        pool_size: 4,
        pipelined_connections: 2,
        workers: Some(1),
        shutdown_timeout: Duration::from_secs(1),
        auth: app::auth::AuthSettings {
            qr_poll_interval_seconds: 1,
            ..app::auth::AuthSettings::default()
        },
        sweep_interval: Duration::from_secs(3600),
        rate_limits,
        webhooks,
        metrics_token: None,
    }
}

impl TestApp {
    /// `running` (started on `db`) served in the background, with a client for it.
    pub fn serving(db: TestDb, running: server::Running) -> Self {
        let address = format!("http://{}", running.address);
        actix_rt::spawn(running.server);
        Self {
            address,
            client: Client::builder().timeout(Duration::from_secs(30)).finish(),
            db,
        }
    }

    pub async fn tenant(&self, name: &str) -> TestTenant {
        let made = server::create_tenant(&self.db.owner_url, name, None)
            .await
            .expect("tenant created");
        TestTenant {
            id: made["tenantId"].as_str().expect("tenantId").to_owned(),
            key: made["apiKey"].as_str().expect("apiKey").to_owned(),
        }
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(key) = key {
            request = request.insert_header(("Authorization", format!("Bearer {key}")));
        }
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let response = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        };
        read(response.expect("request sent")).await
    }

    /// Sends raw bytes with the given content type.
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let response = self
            .client
            .request(method, format!("{}{path}", self.address))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .insert_header(("Content-Type", content_type))
            .send_body(body)
            .await;
        read(response.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call("GET", path, Some(key), None, &[]).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.call("POST", path, Some(key), Some(body), &[]).await
    }

    /// How many contacts are stored, for everyone (superuser view).
    pub async fn contact_rows(&self) -> i64 {
        let db = self.db.owner().await;
        let count = scalar_i64(&db, "SELECT count(*) FROM contacts").await;
        let _ = db.close().await;
        count
    }
}

async fn read<S>(mut response: awc::ClientResponse<S>) -> Reply
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .body()
        .limit(8 * 1024 * 1024)
        .await
        .expect("body read");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("body is JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Runs one SQL statement.
pub async fn exec(db: &impl ConnectionTrait, sql: &str) -> Result<u64, sea_orm::DbErr> {
    db.execute_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .map(|r| r.rows_affected())
}

/// One count from SQL.
pub async fn count(db: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .expect("query runs")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

/// A transaction of the application role working for `tenant`.
pub async fn as_tenant(
    app_role: &DatabaseConnection,
    tenant: &str,
) -> sea_orm::DatabaseTransaction {
    let txn = app_role.begin().await.expect("begin");
    exec(
        &txn,
        &format!("SELECT set_config('app.tenant_id', '{tenant}', true)"),
    )
    .await
    .expect("set tenant");
    txn
}

/// The application's sessions whose last statement began with `comment` and which are idle
/// now (not inside a transaction block): a statement seen here ran on its own.
pub async fn idle_after(owner: &DatabaseConnection, comment: &str) -> i64 {
    count(
        owner,
        &format!(
            "SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND usename = 'crm_app' AND state = 'idle' \
                AND starts_with(query, '{comment}')"
        ),
    )
    .await
}
