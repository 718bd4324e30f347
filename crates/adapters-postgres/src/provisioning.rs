//! Tenant provisioning with the operator's (migrating) credentials.

use domain::ids::{ApiKeyId, TenantId, UserId};
use ports::{NewTenant, ProvisionedTenant, RepoError, TenantProvisioning};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, TransactionTrait};

use crate::errors::repo_error;
use crate::store::statement;

/// Creates tenants through a privileged connection (`MIGRATION_DATABASE_URL`). The
/// transaction still sets `app.tenant_id` to the new tenant, so it also works for an owner
/// role that row-level security applies to.
#[derive(Clone, Debug)]
pub struct PgProvisioning {
    db: DatabaseConnection,
}

impl PgProvisioning {
    /// Connects to `url`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the server does not answer.
    pub async fn connect(url: &str) -> Result<Self, RepoError> {
        let mut options = ConnectOptions::new(url.to_owned());
        options.max_connections(1).sqlx_logging(false);
        let db = Database::connect(options).await.map_err(repo_error)?;
        Ok(Self { db })
    }
}

impl TenantProvisioning for PgProvisioning {
    async fn provision_tenant(&self, tenant: NewTenant) -> Result<ProvisionedTenant, RepoError> {
        let tenant_id = TenantId::new();
        let owner_id = UserId::new();
        let txn = self.db.begin().await.map_err(repo_error)?;
        let steps: Vec<(&str, Vec<sea_orm::Value>)> = vec![
            (
                "SELECT set_config('app.tenant_id', $1, true)",
                vec![tenant_id.to_string().into()],
            ),
            (
                "INSERT INTO tenants (id, name) VALUES ($1, $2)",
                vec![tenant_id.as_uuid().into(), tenant.name.into()],
            ),
            (
                "INSERT INTO users (id, email, name) VALUES ($1, $2, $3)",
                vec![
                    owner_id.as_uuid().into(),
                    tenant.owner_email.into(),
                    tenant.owner_name.into(),
                ],
            ),
            (
                "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')",
                vec![tenant_id.as_uuid().into(), owner_id.as_uuid().into()],
            ),
            (
                "INSERT INTO api_keys (tenant_id, id, name, prefix, key_hash, role, scopes, \
                 created_by, acts_for) VALUES ($1, $2, $3, $4, $5, 'owner', ARRAY['*'], $6, $6)",
                vec![
                    tenant_id.as_uuid().into(),
                    ApiKeyId::new().as_uuid().into(),
                    tenant.key_name.into(),
                    tenant.key_prefix.into(),
                    tenant.key_hash.0.to_vec().into(),
                    owner_id.as_uuid().into(),
                ],
            ),
        ];
        for (sql, values) in steps {
            txn.execute_raw(statement(sql, values))
                .await
                .map_err(repo_error)?;
        }
        txn.commit().await.map_err(repo_error)?;
        Ok(ProvisionedTenant {
            tenant_id,
            owner_id,
        })
    }
}
