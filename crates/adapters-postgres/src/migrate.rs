//! Applies the SQL files of `migrations/` in order, each in its own transaction, once.
//!
//! The files are compiled into the binary, so a deployed `crm` needs no source tree.
//! Concurrent migrators (several `crm serve` starting at once) serialise on a
//! transaction-level advisory lock; each migration's checksum is recorded so an edited,
//! already-applied file is reported instead of silently diverging.

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, FromQueryResult,
    TransactionTrait,
};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::store::statement;

/// Every migration, in order: (version, SQL).
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_roles",
        include_str!("../../../migrations/0001_roles.sql"),
    ),
    (
        "0002_tenancy",
        include_str!("../../../migrations/0002_tenancy.sql"),
    ),
    (
        "0003_contacts",
        include_str!("../../../migrations/0003_contacts.sql"),
    ),
    (
        "0004_authentication",
        include_str!("../../../migrations/0004_authentication.sql"),
    ),
    (
        "0005_identity",
        include_str!("../../../migrations/0005_identity.sql"),
    ),
    (
        "0006_companies",
        include_str!("../../../migrations/0006_companies.sql"),
    ),
    (
        "0007_identity_hardening",
        include_str!("../../../migrations/0007_identity_hardening.sql"),
    ),
    (
        "0008_idempotency",
        include_str!("../../../migrations/0008_idempotency.sql"),
    ),
    (
        "0009_search",
        include_str!("../../../migrations/0009_search.sql"),
    ),
    (
        "0010_pipelines",
        include_str!("../../../migrations/0010_pipelines.sql"),
    ),
    (
        "0011_leads_activities",
        include_str!("../../../migrations/0011_leads_activities.sql"),
    ),
    (
        "0012_webhooks",
        include_str!("../../../migrations/0012_webhooks.sql"),
    ),
    (
        "0013_event_triggers",
        include_str!("../../../migrations/0013_event_triggers.sql"),
    ),
    (
        "0014_chunked_history_sweep",
        include_str!("../../../migrations/0014_chunked_history_sweep.sql"),
    ),
    (
        "0015_lead_status_follows_stage_kind",
        include_str!("../../../migrations/0015_lead_status_follows_stage_kind.sql"),
    ),
    (
        "0016_invitations_and_key_chains",
        include_str!("../../../migrations/0016_invitations_and_key_chains.sql"),
    ),
    (
        "0017_worker_role",
        include_str!("../../../migrations/0017_worker_role.sql"),
    ),
    (
        "0018_idempotency_in_the_write",
        include_str!("../../../migrations/0018_idempotency_in_the_write.sql"),
    ),
    (
        "0020_events_by_id",
        include_str!("../../../migrations/0020_events_by_id.sql"),
    ),
    (
        "0021_search_leads_activities",
        include_str!("../../../migrations/0021_search_leads_activities.sql"),
    ),
    (
        "0022_webhook_queue_stats",
        include_str!("../../../migrations/0022_webhook_queue_stats.sql"),
    ),
    (
        "0023_typed_events",
        include_str!("../../../migrations/0023_typed_events.sql"),
    ),
    (
        "0024_tenant_search_gist",
        include_str!("../../../migrations/0024_tenant_search_gist.sql"),
    ),
    (
        "0025_key_rights_on_the_key",
        include_str!("../../../migrations/0025_key_rights_on_the_key.sql"),
    ),
];

/// Arbitrary, fixed key of the migration advisory lock.
const LOCK_KEY: i64 = 0x0c72_6d5f_6d69_6772;

/// Why migrating failed. The failing migration was rolled back whole.
#[derive(Debug, Error)]
pub enum MigrateError {
    /// The database could not be reached.
    #[error("cannot connect to PostgreSQL for migrations: {0}")]
    Connect(String),
    /// A migration failed; earlier ones stay applied.
    #[error("migration {version} failed: {cause}")]
    Failed {
        /// The failing migration.
        version: String,
        /// PostgreSQL's message.
        cause: String,
    },
    /// An applied migration's file has changed since.
    #[error("migration {0} was changed after it was applied; add a new migration instead")]
    Changed(String),
}

#[derive(Debug, FromQueryResult)]
struct Applied {
    checksum: String,
}

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Connects to `url` as the migrating (owner/superuser) role and applies what is pending.
/// Returns the versions applied by this call (empty when up to date).
///
/// # Errors
/// [`MigrateError`] on connection failure, a failing migration or a changed one.
pub async fn migrate(url: &str) -> Result<Vec<String>, MigrateError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .map_err(|e| MigrateError::Connect(e.to_string()))?;
    let result = apply_pending(&db).await;
    let _ = db.close().await;
    result
}

async fn apply_pending(db: &DatabaseConnection) -> Result<Vec<String>, MigrateError> {
    let failed = |version: &str| {
        let version = version.to_owned();
        move |e: sea_orm::DbErr| MigrateError::Failed {
            version,
            cause: e.to_string(),
        }
    };
    let setup = db.begin().await.map_err(failed("setup"))?;
    setup
        .execute_raw(statement(
            "SELECT pg_advisory_xact_lock($1)",
            vec![LOCK_KEY.into()],
        ))
        .await
        .map_err(failed("setup"))?;
    setup
        .execute_unprepared(
            "CREATE TABLE IF NOT EXISTS crm_schema_migrations (\
               version text PRIMARY KEY, checksum text NOT NULL, \
               applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(failed("setup"))?;
    setup.commit().await.map_err(failed("setup"))?;

    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        let txn = db.begin().await.map_err(failed(version))?;
        txn.execute_raw(statement(
            "SELECT pg_advisory_xact_lock($1)",
            vec![LOCK_KEY.into()],
        ))
        .await
        .map_err(failed(version))?;
        let existing = Applied::find_by_statement(statement(
            "SELECT checksum FROM crm_schema_migrations WHERE version = $1",
            vec![(*version).to_owned().into()],
        ))
        .one(&txn)
        .await
        .map_err(failed(version))?;
        let sum = checksum(sql);
        match existing {
            Some(found) if found.checksum == sum => continue,
            Some(_) => return Err(MigrateError::Changed((*version).to_owned())),
            None => {}
        }
        txn.execute_unprepared(sql).await.map_err(failed(version))?;
        // The file may have switched role; record the migration as the migrating user.
        txn.execute_unprepared("RESET ROLE")
            .await
            .map_err(failed(version))?;
        txn.execute_raw(statement(
            "INSERT INTO crm_schema_migrations (version, checksum) VALUES ($1, $2)",
            vec![(*version).to_owned().into(), sum.into()],
        ))
        .await
        .map_err(failed(version))?;
        txn.commit().await.map_err(failed(version))?;
        tracing::info!(version, "migration applied");
        applied.push((*version).to_owned());
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn every_file_in_migrations_is_compiled_in_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations directory")
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .map(|name| name.trim_end_matches(".sql").to_owned())
            .collect();
        files.sort();
        let compiled: Vec<&str> = MIGRATIONS.iter().map(|(version, _)| *version).collect();
        assert_eq!(
            compiled, files,
            "add new files in migrations/ to MIGRATIONS"
        );
    }
}
