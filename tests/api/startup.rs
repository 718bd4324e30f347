//! The start-up contract: idempotent migrations, refusal of roles that bypass RLS.

use std::time::Duration;

use server::{ServeConfig, StartError};

use crate::helpers::{TestDb, scalar_i64};

fn config(database_url: &str) -> ServeConfig {
    ServeConfig {
        database_url: database_url.to_owned(),
        migration_database_url: None,
        bind_addr: "127.0.0.1:0".to_owned(),
        pool_size: 2,
        pipelined_connections: 2,
        workers: Some(1),
        shutdown_timeout: Duration::from_secs(1),
        auth: app::auth::AuthSettings::default(),
        sweep_interval: Duration::from_secs(3600),
        rate_limits: crate::helpers::generous_limits(),
        webhooks: crate::helpers::test_webhooks(),
        metrics_token: None,
    }
}

#[actix_rt::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    let db = TestDb::create().await;
    let again = adapters_postgres::migrate(&db.owner_url)
        .await
        .expect("second run succeeds");
    assert!(again.is_empty(), "nothing pending: {again:?}");
    let owner = db.owner().await;
    let applied = scalar_i64(&owner, "SELECT count(*) FROM crm_schema_migrations").await;
    assert_eq!(
        applied,
        i64::try_from(adapters_postgres::migrate::MIGRATIONS.len()).expect("small")
    );
    let forced = scalar_i64(
        &owner,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'crm_schema_migrations' \
            AND NOT (c.relrowsecurity AND c.relforcerowsecurity)",
    )
    .await;
    assert_eq!(
        forced, 0,
        "every application table has ENABLE and FORCE row level security"
    );
}

#[actix_rt::test]
async fn the_server_refuses_to_start_as_a_superuser() {
    let db = TestDb::create().await;
    let refused = server::start(&config(&db.owner_url)).await;
    match refused {
        Err(StartError::Role(error)) => assert!(error.to_string().contains("superuser"), "{error}"),
        Err(other) => panic!("refused for the wrong reason: {other}"),
        Ok(_) => panic!("a superuser connection must be refused"),
    }
}

#[actix_rt::test]
async fn the_server_refuses_a_role_that_owns_tables_or_bypasses_rls() {
    let db = TestDb::create().await;
    let owner = db.owner().await;
    let role = format!("crm_test_role_{}", uuid::Uuid::new_v4().simple());
    let exec = |sql: String| {
        let owner = owner.clone();
        async move {
            sea_orm::ConnectionTrait::execute_unprepared(&owner, &sql)
                .await
                .expect("sql runs")
        }
    };
    exec(format!("CREATE ROLE {role} LOGIN BYPASSRLS")).await;
    let url = crate::helpers::rewrite_url(&db.owner_url, &db.name, Some(&role));
    let bypass = server::start(&config(&url)).await;
    assert!(matches!(bypass, Err(StartError::Role(ref e)) if e.to_string().contains("BYPASSRLS")));

    exec(format!("ALTER ROLE {role} NOBYPASSRLS")).await;
    exec(format!(
        "CREATE TABLE owned_by_role (id int); ALTER TABLE owned_by_role OWNER TO {role}"
    ))
    .await;
    let owns = server::start(&config(&url)).await;
    assert!(matches!(owns, Err(StartError::Role(ref e)) if e.to_string().contains("owns")));
    exec(format!("DROP TABLE owned_by_role; DROP ROLE {role}")).await;
}
