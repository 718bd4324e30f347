//! The pool, the start-up role check, and the tenant-scoped unit of work.

use std::time::Duration;

use domain::ids::{ApiKeyId, SessionId, TenantId, UserId};
use domain::principal::{Actor, Principal, Role, Scopes};
use domain::token::TokenHash;
use ports::{RepoError, TenantStore, UnitOfWork};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    FromQueryResult, Statement, TransactionTrait,
};
use thiserror::Error;
use uuid::Uuid;

use crate::errors::repo_error;

/// Pool sizing and timeouts.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Most connections held at once.
    pub max_connections: u32,
    /// How long a request waits for a free connection before answering 503.
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The database could not be reached at start-up.
#[derive(Debug, Error)]
#[error("cannot connect to PostgreSQL: {0}")]
pub struct ConnectError(String);

/// The connection role could escape row-level security: the server must not start.
#[derive(Debug, Error)]
pub enum RoleCheckError {
    /// The role is a superuser.
    #[error(
        "refusing to start: database role `{0}` is a superuser, which bypasses row-level security; connect as the application role (crm_app)"
    )]
    Superuser(String),
    /// The role has BYPASSRLS.
    #[error(
        "refusing to start: database role `{0}` has BYPASSRLS; connect as the application role (crm_app)"
    )]
    BypassRls(String),
    /// The role owns tables (owners are not subject to RLS unless forced, and can alter it).
    #[error(
        "refusing to start: database role `{0}` owns {1} table(s); connect as the application role (crm_app), not the owner"
    )]
    OwnsTables(String, i64),
    /// The role can act as the owning or definer role.
    #[error(
        "refusing to start: database role `{0}` is a member of crm_owner or crm_definer; connect as the application role (crm_app)"
    )]
    MemberOfPrivilegedRole(String),
    /// The check itself failed.
    #[error("cannot check the database role: {0}")]
    Repo(#[from] RepoError),
}

/// The application's pool, as the application role.
#[derive(Clone, Debug)]
pub struct PgStore {
    db: DatabaseConnection,
}

#[derive(Debug, FromQueryResult)]
struct RoleFacts {
    name: String,
    is_superuser: bool,
    bypasses_rls: bool,
    owned_tables: i64,
    privileged_member: bool,
}

#[derive(Debug, FromQueryResult)]
struct AuthenticatedSession {
    tenant_id: Uuid,
    tenant_name: String,
    session_id: Uuid,
    user_id: Uuid,
    user_email: String,
    user_name: String,
    role: String,
}

#[derive(Debug, FromQueryResult)]
struct AuthenticatedKey {
    tenant_id: Uuid,
    tenant_name: String,
    key_id: Uuid,
    key_name: String,
    key_prefix: String,
    role: String,
    scopes: Vec<String>,
}

pub(crate) fn statement(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

impl PgStore {
    /// Connects a pool to `url`.
    ///
    /// # Errors
    /// [`ConnectError`] when the URL is malformed or the server does not answer.
    pub async fn connect(url: &str, options: &PoolOptions) -> Result<Self, ConnectError> {
        let mut connect = ConnectOptions::new(url.to_owned());
        connect
            .max_connections(options.max_connections)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            .test_before_acquire(false)
            .sqlx_logging(false);
        let db = Database::connect(connect)
            .await
            .map_err(|e| ConnectError(e.to_string()))?;
        Ok(Self { db })
    }

    /// The underlying connection (tests and health checks).
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Refuses roles that could bypass row-level security: superusers, BYPASSRLS, table
    /// owners, and members of the owning roles.
    ///
    /// # Errors
    /// [`RoleCheckError`] naming what is wrong.
    pub async fn verify_application_role(&self) -> Result<(), RoleCheckError> {
        let facts = RoleFacts::find_by_statement(statement(
            "SELECT r.rolname::text AS name, r.rolsuper AS is_superuser, \
                    r.rolbypassrls AS bypasses_rls, \
                    (SELECT count(*) FROM pg_catalog.pg_class c \
                      WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p')) AS owned_tables, \
                    (pg_has_role(r.oid, 'crm_owner', 'MEMBER') \
                      OR pg_has_role(r.oid, 'crm_definer', 'MEMBER')) AS privileged_member \
               FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
            vec![],
        ))
        .one(&self.db)
        .await
        .map_err(repo_error)?
        .ok_or_else(|| RepoError::Unexpected("current_user has no pg_roles row".into()))?;
        if facts.is_superuser {
            return Err(RoleCheckError::Superuser(facts.name));
        }
        if facts.bypasses_rls {
            return Err(RoleCheckError::BypassRls(facts.name));
        }
        if facts.owned_tables > 0 {
            return Err(RoleCheckError::OwnsTables(facts.name, facts.owned_tables));
        }
        if facts.privileged_member {
            return Err(RoleCheckError::MemberOfPrivilegedRole(facts.name));
        }
        Ok(())
    }

    /// Whether the database answers (readiness).
    ///
    /// # Errors
    /// [`RepoError`] when it does not.
    pub async fn ping(&self) -> Result<(), RepoError> {
        self.db
            .execute_unprepared("SELECT 1")
            .await
            .map(|_| ())
            .map_err(repo_error)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(self) {
        if let Err(error) = self.db.close().await {
            tracing::warn!(%error, "closing the database pool failed");
        }
    }
}

/// One transaction scoped to one tenant.
#[derive(Debug)]
pub struct PgUnitOfWork {
    pub(crate) txn: DatabaseTransaction,
    pub(crate) tenant_id: TenantId,
}

impl PgStore {
    /// The pool, for the pre-authentication functions.
    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

impl TenantStore for PgStore {
    type Uow = PgUnitOfWork;

    async fn begin_with_api_key(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(Principal, PgUnitOfWork)>, RepoError> {
        let txn = self.db.begin().await.map_err(repo_error)?;
        let key = AuthenticatedKey::find_by_statement(statement(
            "SELECT tenant_id, tenant_name, key_id, key_name, key_prefix, role, scopes \
               FROM crm_authenticate_api_key($1)",
            vec![hash.0.to_vec().into()],
        ))
        .one(&txn)
        .await
        .map_err(repo_error)?;
        let Some(key) = key else {
            // Dropping the transaction queues its rollback; nothing was written.
            return Ok(None);
        };
        let role: Role = key
            .role
            .parse()
            .map_err(|e: domain::principal::UnknownRole| RepoError::Unexpected(e.to_string()))?;
        let tenant_id = TenantId::from_uuid(key.tenant_id);
        let principal = Principal {
            tenant_id,
            tenant_name: key.tenant_name,
            actor: Actor::ApiKey {
                id: ApiKeyId::from_uuid(key.key_id),
                name: key.key_name,
                prefix: key.key_prefix,
            },
            role,
            scopes: Scopes::from_names(key.scopes),
        };
        Ok(Some((principal, PgUnitOfWork { txn, tenant_id })))
    }

    async fn begin_with_session(
        &self,
        hash: &TokenHash,
        idle_timeout_seconds: i64,
    ) -> Result<Option<(Principal, PgUnitOfWork)>, RepoError> {
        let txn = self.db.begin().await.map_err(repo_error)?;
        let session = AuthenticatedSession::find_by_statement(statement(
            "SELECT tenant_id, tenant_name, session_id, user_id, user_email, user_name, role \
               FROM crm_authenticate_session($1, $2)",
            vec![hash.0.to_vec().into(), idle_timeout_seconds.into()],
        ))
        .one(&txn)
        .await
        .map_err(repo_error)?;
        let Some(session) = session else {
            return Ok(None);
        };
        let role: Role = session
            .role
            .parse()
            .map_err(|e: domain::principal::UnknownRole| RepoError::Unexpected(e.to_string()))?;
        let tenant_id = TenantId::from_uuid(session.tenant_id);
        let principal = Principal {
            tenant_id,
            tenant_name: session.tenant_name,
            actor: Actor::User {
                id: UserId::from_uuid(session.user_id),
                email: session.user_email,
                name: session.user_name,
                session_id: SessionId::from_uuid(session.session_id),
            },
            role,
            scopes: Scopes::all(),
        };
        Ok(Some((principal, PgUnitOfWork { txn, tenant_id })))
    }

    async fn begin_for_tenant(&self, tenant: TenantId) -> Result<PgUnitOfWork, RepoError> {
        let txn = self.db.begin().await.map_err(repo_error)?;
        txn.execute_raw(statement(
            "SELECT set_config('app.tenant_id', $1, true)",
            vec![tenant.to_string().into()],
        ))
        .await
        .map_err(repo_error)?;
        Ok(PgUnitOfWork {
            txn,
            tenant_id: tenant,
        })
    }
}

impl ports::HealthCheck for PgStore {
    async fn check(&self) -> Result<(), RepoError> {
        self.ping().await
    }
}

impl UnitOfWork for PgUnitOfWork {
    async fn commit(self) -> Result<(), RepoError> {
        self.txn.commit().await.map_err(repo_error)
    }
}
