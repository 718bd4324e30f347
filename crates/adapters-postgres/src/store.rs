//! The pool, the start-up role check, and the tenant-scoped unit of work.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use domain::ids::{ApiKeyId, SessionId, TenantId, UserId};
use domain::principal::{Actor, Principal, Role, Scopes};
use domain::token::TokenHash;
use ports::{Clock, CommitSlot, RepoError, SystemClock, TenantStore, UnitOfWork};
use sea_orm::sqlx::Connection as _;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    FromQueryResult, Statement, TransactionTrait,
};
use thiserror::Error;
use uuid::Uuid;

use crate::availability::Availability;
use crate::columns::Columns;
use crate::errors::repo_error;
use crate::key_cache::{CHECKED_KEY_CTE, KeyCache, KnownKey};
use crate::local_socket;
use crate::pipelined_lane::PipelinedLane;
use crate::statement_lane::{LaneStats, StatementLane};

/// Keys remembered per process (about 100 bytes each).
const KEY_CACHE_CAPACITY: usize = 10_000;

/// Authenticates an API key by `crm_authenticate_api_key($1)`, setting the tenant.
const RESOLVE_KEY: &str = "\
SELECT tenant_id, tenant_name, key_id, key_name, key_prefix, role, scopes, acts_for
  FROM crm_authenticate_api_key($1)";

/// Authenticates a remembered API key in its tenant, setting the tenant (`key_cache`).
static CHECK_KNOWN_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH {CHECKED_KEY_CTE} \
         SELECT tenant_id, tenant_name, key_id, key_name, key_prefix, role, scopes, acts_for \
           FROM auth"
    )
});

/// Pool sizing and timeouts.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Most connections the pool holds at once (units of work and everything else).
    pub max_connections: u32,
    /// Most connections kept apart, beside the pool's, for the statements sent on their
    /// own (`statement_lane`: one round trip instead of the pool's two); 0 for none (those
    /// statements then take the pool).
    pub statement_connections: u32,
    /// When the pool reaches PostgreSQL through its Unix socket, this many of the
    /// `statement_connections` carry the reads among those statements, many at once each
    /// (`pipelined_lane`); the writes keep a connection each. 0 for none.
    pub pipelined_connections: u32,
    /// How long a request waits for a free connection before answering 503, while the
    /// database answers (an unreachable one is answered 503 at once: see
    /// `availability`).
    pub acquire_timeout: Duration,
    /// The server ends a session left idle inside a transaction this long
    /// (`idle_in_transaction_session_timeout`, set per connection): the backstop should a
    /// transaction ever be leaked, since no unit of work waits on anything but the
    /// database while it holds one.
    pub idle_in_transaction_timeout: Duration,
    /// Reach a server on this machine through its Unix socket when the URL names it over
    /// loopback TCP (see `local_socket`: no Nagle stall, no TLS on loopback).
    pub prefer_local_socket: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            statement_connections: 0,
            pipelined_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(15),
            prefer_local_socket: true,
        }
    }
}

/// The database could not be reached at start-up.
#[derive(Debug, Error)]
#[error("cannot connect to PostgreSQL: {0}")]
pub struct ConnectError(String);

/// The connection role could escape row-level security, or is not the role it is
/// configured as: the server (or worker) must not start. The second field of each variant
/// names the role expected (`crm_app` for the API, `crm_worker` for the delivery worker).
#[derive(Debug, Error)]
pub enum RoleCheckError {
    /// The role is a superuser.
    #[error(
        "refusing to start: database role `{0}` is a superuser, which bypasses row-level security; connect as {1}"
    )]
    Superuser(String, &'static str),
    /// The role has BYPASSRLS.
    #[error("refusing to start: database role `{0}` has BYPASSRLS; connect as {1}")]
    BypassRls(String, &'static str),
    /// The role owns tables (owners are not subject to RLS unless forced, and can alter it).
    #[error(
        "refusing to start: database role `{0}` owns {2} table(s); connect as {1}, not the owner"
    )]
    OwnsTables(String, &'static str, i64),
    /// The role can act as the owning or definer role (or, for the API, as the worker).
    #[error(
        "refusing to start: database role `{0}` is a member of a privileged role ({2}); connect as {1}"
    )]
    MemberOfPrivilegedRole(String, &'static str, String),
    /// The worker's role cannot claim deliveries: it is not the worker role.
    #[error(
        "refusing to start: database role `{0}` may not claim webhook deliveries; connect the worker as {1} (WORKER_DATABASE_URL)"
    )]
    CannotClaim(String, &'static str),
    /// The check itself failed.
    #[error("cannot check the database role: {0}")]
    Repo(#[from] RepoError),
}

/// What the API connects as.
const APPLICATION_ROLE: &str = "the application role (crm_app)";
/// What the delivery worker connects as.
const WORKER_ROLE: &str = "the worker role (crm_worker)";

/// The application's pool, as the application role.
#[derive(Clone, Debug)]
pub struct PgStore {
    pub(crate) db: DatabaseConnection,
    /// Whether the database is reachable; runs units of work to completion.
    pub(crate) availability: Arc<Availability>,
    /// Which tenant each recently resolved API key belongs to (see `key_cache`).
    pub(crate) keys: Arc<KeyCache>,
    /// The connections of the statements sent on their own, if kept apart.
    pub(crate) lane: Option<Arc<StatementLane>>,
    /// The pipelined connections of the reads among them, if any.
    pub(crate) pipelined: Option<Arc<PipelinedLane>>,
}

#[derive(Debug, FromQueryResult)]
struct RoleFacts {
    name: String,
    is_superuser: bool,
    bypasses_rls: bool,
    owned_tables: i64,
    /// The privileged roles (of those asked about) this one can act as, comma-separated.
    privileged_memberships: Option<String>,
    /// Whether it may call the worker's claim.
    can_claim: bool,
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

/// What `crm_authenticate_api_key` returns for a live key, or the check of a remembered
/// key (`key_cache::CHECKED_KEY_CTE`), which leaves the tenant's name to memory.
#[derive(Debug, FromQueryResult)]
pub(crate) struct AuthenticatedKey {
    tenant_id: Uuid,
    tenant_name: Option<String>,
    key_id: Uuid,
    key_name: String,
    key_prefix: String,
    role: String,
    scopes: Vec<String>,
    acts_for: Uuid,
}

impl AuthenticatedKey {
    /// The key's columns, in this struct's order, at the start of `row`.
    pub(crate) fn at(row: &impl Columns) -> Result<Self, sea_orm::DbErr> {
        Ok(Self {
            tenant_id: row.column(0)?,
            tenant_name: row.column(1)?,
            key_id: row.column(2)?,
            key_name: row.column(3)?,
            key_prefix: row.column(4)?,
            role: row.column(5)?,
            scopes: row.column(6)?,
            acts_for: row.column(7)?,
        })
    }

    /// The caller this key acts as; `remembered` is the caller the key was last found to
    /// be, whose tenant's name a check of a remembered key does not read again.
    pub(crate) fn into_principal(
        self,
        remembered: Option<&Principal>,
    ) -> Result<Principal, RepoError> {
        let tenant_name = match (self.tenant_name, remembered) {
            (Some(name), _) => name,
            (None, Some(caller)) => caller.tenant_name.clone(),
            (None, None) => {
                return Err(RepoError::Unexpected(
                    "a key's check answered without a remembered caller".into(),
                ));
            }
        };
        let role: Role = self
            .role
            .parse()
            .map_err(|e: domain::principal::UnknownRole| RepoError::Unexpected(e.to_string()))?;
        Ok(Principal {
            tenant_id: TenantId::from_uuid(self.tenant_id),
            tenant_name,
            actor: Actor::ApiKey {
                id: ApiKeyId::from_uuid(self.key_id),
                name: self.key_name,
                prefix: self.key_prefix,
                acts_for: UserId::from_uuid(self.acts_for),
            },
            role,
            scopes: Scopes::from_names(self.scopes),
        })
    }
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
        let mut target: PgConnectOptions = url.parse().map_err(|e| ConnectError(format!("{e}")))?;
        let socket = if options.prefer_local_socket {
            local_socket::same_server_socket(&target).await
        } else {
            None
        };
        if let Some(dir) = &socket {
            tracing::info!(socket = %dir.display(), "reaching the local PostgreSQL through its Unix socket");
            target = target.socket(dir);
        }
        let idle_in_transaction = options.idle_in_transaction_timeout.as_millis().to_string();
        let pipelined = socket.as_deref().and_then(|dir| {
            PipelinedLane::new(
                url,
                dir,
                &idle_in_transaction,
                options.pipelined_connections,
                options.statement_connections,
                options.acquire_timeout,
            )
        });
        let pipes = pipelined.as_ref().map_or(0, |lane| lane.stats().size);
        let lane = StatementLane::new(
            target.clone().options([(
                "idle_in_transaction_session_timeout",
                idle_in_transaction.clone(),
            )]),
            options.statement_connections.saturating_sub(pipes),
            options.acquire_timeout,
        );
        let availability =
            Availability::new(target, options.max_connections, options.acquire_timeout);
        let discard = Arc::clone(&availability);
        let mut connect = ConnectOptions::new(url.to_owned());
        connect
            .max_connections(options.max_connections)
            .min_connections(1)
            // sea-orm's connect timeout is sqlx's acquire timeout too (sqlx has no other).
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            .test_before_acquire(false)
            .sqlx_logging(false)
            .map_sqlx_postgres_opts(move |opts| {
                let opts = opts.options([(
                    "idle_in_transaction_session_timeout",
                    idle_in_transaction.clone(),
                )]);
                match &socket {
                    Some(dir) => opts.socket(dir),
                    None => opts,
                }
            })
            // No round trip: a connection opened before the last outage is dead.
            .map_sqlx_postgres_before_acquire(move |_, meta| {
                let keep = !discard.predates_last_outage(meta.age);
                Box::pin(async move { Ok(keep) })
            })
            .map_sqlx_postgres_pool_opts(|pool| {
                pool.after_release(|connection, _| Box::pin(outside_transaction(connection)))
            });
        let db = Database::connect(connect)
            .await
            .map_err(|e| ConnectError(e.to_string()))?;
        Ok(Self {
            db,
            availability,
            keys: Arc::new(KeyCache::new(KEY_CACHE_CAPACITY)),
            lane,
            pipelined,
        })
    }

    /// Calls `observer` with the time of every statement this pool runs (transactions
    /// included): the server adds it to the request's database time. Set it before the
    /// store is cloned.
    pub fn observe_statements(&mut self, observer: impl Fn(Duration) + Send + Sync + 'static) {
        self.db
            .set_metric_callback(move |info: &sea_orm::metric::Info<'_>| observer(info.elapsed));
    }

    /// The underlying connection (tests and health checks).
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Refuses roles that could bypass row-level security: superusers, BYPASSRLS, table
    /// owners, and members of the owning roles or of the worker role (whose claim reads
    /// every tenant's pending payloads and secrets).
    ///
    /// # Errors
    /// [`RoleCheckError`] naming what is wrong.
    pub async fn verify_application_role(&self) -> Result<(), RoleCheckError> {
        let facts = self
            .role_facts(&["crm_owner", "crm_definer", "crm_worker"])
            .await?;
        Self::refuse_rls_escapes(facts, APPLICATION_ROLE).map(|_| ())
    }

    /// The same refusals for the delivery worker's pool (members of `crm_app` are not
    /// refused: the API role reads no more across tenants than the worker), and a role
    /// that cannot claim deliveries is refused at start rather than failing every pass.
    ///
    /// # Errors
    /// [`RoleCheckError`] naming what is wrong.
    pub async fn verify_worker_role(&self) -> Result<(), RoleCheckError> {
        let facts = self.role_facts(&["crm_owner", "crm_definer"]).await?;
        let facts = Self::refuse_rls_escapes(facts, WORKER_ROLE)?;
        if facts.can_claim {
            Ok(())
        } else {
            Err(RoleCheckError::CannotClaim(facts.name, WORKER_ROLE))
        }
    }

    async fn role_facts(&self, privileged: &[&str]) -> Result<RoleFacts, RoleCheckError> {
        // Roles are looked up by name in pg_roles, so a role that does not exist yet (an
        // older schema) is simply not a membership, instead of an error.
        Ok(RoleFacts::find_by_statement(statement(
            "SELECT r.rolname::text AS name, r.rolsuper AS is_superuser, \
                    r.rolbypassrls AS bypasses_rls, \
                    (SELECT count(*) FROM pg_catalog.pg_class c \
                      WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p')) AS owned_tables, \
                    (SELECT string_agg(p.rolname::text, ', ' ORDER BY p.rolname) \
                       FROM pg_catalog.pg_roles p \
                      WHERE p.rolname = ANY($1) AND pg_has_role(r.oid, p.oid, 'MEMBER')) \
                      AS privileged_memberships, \
                    coalesce((SELECT has_function_privilege(r.oid, f.oid, 'EXECUTE') \
                                FROM pg_catalog.pg_proc f \
                               WHERE f.proname = 'crm_claim_webhook_deliveries' \
                               LIMIT 1), false) AS can_claim \
               FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
            vec![
                privileged
                    .iter()
                    .map(|name| (*name).to_owned())
                    .collect::<Vec<String>>()
                    .into(),
            ],
        ))
        .one(&self.db)
        .await
        .map_err(repo_error)?
        .ok_or_else(|| RepoError::Unexpected("current_user has no pg_roles row".into()))?)
    }

    fn refuse_rls_escapes(
        facts: RoleFacts,
        expected: &'static str,
    ) -> Result<RoleFacts, RoleCheckError> {
        if facts.is_superuser {
            return Err(RoleCheckError::Superuser(facts.name, expected));
        }
        if facts.bypasses_rls {
            return Err(RoleCheckError::BypassRls(facts.name, expected));
        }
        if facts.owned_tables > 0 {
            return Err(RoleCheckError::OwnsTables(
                facts.name,
                expected,
                facts.owned_tables,
            ));
        }
        if let Some(roles) = facts.privileged_memberships {
            return Err(RoleCheckError::MemberOfPrivilegedRole(
                facts.name, expected, roles,
            ));
        }
        Ok(facts)
    }

    /// Whether the database answers (readiness): at once while it is known to be
    /// unreachable, else after one round trip through the pool.
    ///
    /// # Errors
    /// [`RepoError`] when it does not.
    pub async fn ping(&self) -> Result<(), RepoError> {
        let db = self.db.clone();
        self.availability
            .run_acquiring(async move {
                db.execute_unprepared("SELECT 1")
                    .await
                    .map(|_| ())
                    .map_err(repo_error)
            })
            .await
    }

    /// Opens a transaction and runs `first` in it, in a task of its own (see
    /// `availability`): a caller dropped meanwhile cannot leave `BEGIN` half done and
    /// an open transaction in the pool.
    async fn begin_then<T, F, Fut>(&self, first: F) -> Result<(DatabaseTransaction, T), RepoError>
    where
        T: Send + 'static,
        F: FnOnce(DatabaseTransaction) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(DatabaseTransaction, T), RepoError>> + Send,
    {
        let db = self.db.clone();
        // Counted from now until a connection is had, or the work is given up unspawned.
        let waiting = Waiting::start();
        let started = Instant::now();
        self.availability
            .run_acquiring(async move {
                let txn = db.begin().await;
                drop(waiting);
                metrics::histogram!("db_pool_acquire_seconds")
                    .record(started.elapsed().as_secs_f64());
                first(txn.map_err(repo_error)?).await
            })
            .await
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(self) {
        if let Err(error) = self.db.close().await {
            tracing::warn!(%error, "closing the database pool failed");
        }
    }
}

/// Whether a connection coming back to the pool is outside any transaction; one that is
/// not is closed, which rolls the transaction back, instead of being handed to the next
/// request. A rollback queued by a dropped transaction counts as outside: it is flushed
/// before the connection's next statement.
///
/// This asks sqlx's own book-keeping, at no cost. It used to ask the server
/// (`SELECT now() = statement_timestamp()`), one more round trip on every release, a
/// fifth of a GET's database CPU (docs/benchmarks.md). The two can only disagree when
/// `BEGIN` or `COMMIT` is cut in half by a dropped future (sqlx #2805), and that cannot
/// happen here: every transaction starts and ends inside `Availability::run_acquiring`,
/// which runs it to completion whoever waits. The backstops stay: a leaked transaction
/// would be ended by `idle_in_transaction_session_timeout`, and `tests/api/cancellation.rs`
/// asks the server (`pg_stat_activity`, nested-`BEGIN` warnings) under clients that reset
/// mid-request.
///
/// sqlx still tests the connection itself after this (its `return_to_pool` sends a `Sync`
/// and waits for `ReadyForQuery`), a round trip no option turns off; the statements sent on
/// their own avoid it on connections of their own (`statement_lane`).
async fn outside_transaction(connection: &mut PgConnection) -> Result<bool, sea_orm::sqlx::Error> {
    let outside = !connection.is_in_transaction();
    if !outside {
        tracing::warn!("a pooled connection came back inside a transaction; closing it");
    }
    Ok(outside)
}

/// One transaction scoped to one tenant.
#[derive(Debug)]
pub struct PgUnitOfWork {
    pub(crate) txn: DatabaseTransaction,
    pub(crate) tenant_id: TenantId,
    /// Runs the commit to completion, whoever waits for it.
    availability: Arc<Availability>,
    /// Where `commit` parks this unit of work instead, when an idempotent request still
    /// has to store its response in the same transaction.
    parked: Option<CommitSlot<PgUnitOfWork>>,
}

impl PgUnitOfWork {
    fn new(txn: DatabaseTransaction, tenant_id: TenantId, availability: Arc<Availability>) -> Self {
        Self {
            txn,
            tenant_id,
            availability,
            parked: None,
        }
    }
}

/// Requests waiting for a pooled connection right now, over every store of the process.
static WAITING_FOR_CONNECTION: AtomicI64 = AtomicI64::new(0);

/// One request waiting for a pooled connection, for `db_pool_waiting`: counted while it
/// lives, whichever way it ends.
struct Waiting;

impl Waiting {
    fn start() -> Self {
        WAITING_FOR_CONNECTION.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING_FOR_CONNECTION.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the pool looks like, for `/metrics` (with the statement lane's connections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (busy or idle).
    pub size: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The most it opens.
    pub max: u32,
    /// Requests waiting for a connection (every pool of the process).
    pub waiting: i64,
}

impl PgStore {
    /// The pool's figures now.
    #[must_use]
    pub fn pool_stats(&self) -> PoolStats {
        let pool = self.db.get_postgres_connection_pool();
        let one_at_a_time = self.lane.as_ref().map(|lane| lane.stats());
        let pipelined = self.pipelined.as_ref().map(|lane| lane.stats());
        let lane = [one_at_a_time, pipelined].into_iter().flatten().fold(
            LaneStats::default(),
            |sum, lane| LaneStats {
                open: sum.open.saturating_add(lane.open),
                idle: sum.idle.saturating_add(lane.idle),
                size: sum.size.saturating_add(lane.size),
            },
        );
        PoolStats {
            size: pool.size().saturating_add(lane.open),
            idle: u32::try_from(pool.num_idle())
                .unwrap_or(u32::MAX)
                .saturating_add(lane.idle),
            max: pool
                .options()
                .get_max_connections()
                .saturating_add(lane.size),
            waiting: WAITING_FOR_CONNECTION.load(Ordering::Relaxed),
        }
    }

    /// The webhook queue across tenants, as aggregates only: deliveries pending, and how
    /// long the oldest due one has waited (0 when none is due). Through
    /// `crm_webhook_queue_stats` (SECURITY DEFINER), as the API role reads no other
    /// tenant's rows.
    ///
    /// # Errors
    /// [`RepoError`] when the query fails.
    pub async fn webhook_queue_stats(&self) -> Result<(i64, f64), RepoError> {
        #[derive(Debug, FromQueryResult)]
        struct Stats {
            pending: i64,
            oldest_due_seconds: f64,
        }
        let stats = Stats::find_by_statement(statement(
            "SELECT pending, oldest_due_seconds FROM crm_webhook_queue_stats()",
            vec![],
        ))
        .one(&self.db)
        .await
        .map_err(repo_error)?;
        Ok(stats.map_or((0, 0.0), |s| (s.pending, s.oldest_due_seconds)))
    }

    /// The pool, for the pre-authentication functions (single statements, no
    /// transaction to leak): refused at once while the database is known unreachable.
    pub(crate) fn db(&self) -> Result<&DatabaseConnection, RepoError> {
        if self.availability.is_up() {
            Ok(&self.db)
        } else {
            Err(crate::availability::unreachable())
        }
    }
}

impl TenantStore for PgStore {
    type Uow = PgUnitOfWork;

    async fn begin_with_api_key(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(Principal, PgUnitOfWork)>, RepoError> {
        let hash = *hash;
        let remembered = self.keys.get(&hash);
        let known = remembered.as_ref().and_then(KnownKey::of);
        let (txn, key) = self
            .begin_then(move |txn| async move {
                if let Some(known) = known {
                    let checked = AuthenticatedKey::find_by_statement(statement(
                        &CHECK_KNOWN_KEY,
                        vec![known.tenant_id.to_string().into(), known.key_id.into()],
                    ))
                    .one(&txn)
                    .await
                    .map_err(repo_error)?;
                    if checked.is_some() {
                        return Ok((txn, (checked, true)));
                    }
                }
                // Not remembered, or its check found nothing: the function decides (and
                // sets the tenant again, or finds no key).
                let resolved = AuthenticatedKey::find_by_statement(statement(
                    RESOLVE_KEY,
                    vec![hash.0.to_vec().into()],
                ))
                .one(&txn)
                .await
                .map_err(repo_error)?;
                Ok((txn, (resolved, false)))
            })
            .await?;
        let (key, checked) = key;
        let Some(key) = key else {
            self.keys.forget(&hash);
            // Dropping the transaction queues its rollback; nothing was written.
            return Ok(None);
        };
        let principal = key.into_principal(remembered.as_ref())?;
        if checked {
            self.keys.confirm(&hash, &principal);
        } else {
            self.keys.learn(&hash, &principal);
        }
        let tenant_id = principal.tenant_id;
        Ok(Some((
            principal,
            PgUnitOfWork::new(txn, tenant_id, Arc::clone(&self.availability)),
        )))
    }

    async fn begin_with_session(
        &self,
        hash: &TokenHash,
        idle_timeout_seconds: i64,
    ) -> Result<Option<(Principal, PgUnitOfWork)>, RepoError> {
        let hash = hash.0.to_vec();
        let (txn, session) = self
            .begin_then(move |txn| async move {
                let session = AuthenticatedSession::find_by_statement(statement(
                    "SELECT tenant_id, tenant_name, session_id, user_id, user_email, user_name, \
                            role \
                       FROM crm_authenticate_session($1, $2)",
                    vec![hash.into(), idle_timeout_seconds.into()],
                ))
                .one(&txn)
                .await
                .map_err(repo_error)?;
                Ok((txn, session))
            })
            .await?;
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
        Ok(Some((
            principal,
            PgUnitOfWork::new(txn, tenant_id, Arc::clone(&self.availability)),
        )))
    }

    async fn begin_for_tenant(&self, tenant: TenantId) -> Result<PgUnitOfWork, RepoError> {
        let (txn, ()) = self
            .begin_then(move |txn| async move {
                txn.execute_raw(statement(
                    "SELECT set_config('app.tenant_id', $1, true)",
                    vec![tenant.to_string().into()],
                ))
                .await
                .map_err(repo_error)?;
                Ok((txn, ()))
            })
            .await?;
        Ok(PgUnitOfWork::new(
            txn,
            tenant,
            Arc::clone(&self.availability),
        ))
    }
}

/// The use cases' "now" ([`Clock`]) is the system clock: the SQL decides expiries by the
/// database's `now()`, which follows the same wall clock, so no other clock could be made
/// to agree with it.
impl Clock for PgStore {
    fn now(&self) -> time::OffsetDateTime {
        SystemClock.now()
    }
}

/// As [`PgStore`]'s: the system clock.
impl Clock for PgUnitOfWork {
    fn now(&self) -> time::OffsetDateTime {
        SystemClock.now()
    }
}

impl ports::HealthCheck for PgStore {
    async fn check(&self) -> Result<(), RepoError> {
        self.ping().await
    }
}

impl UnitOfWork for PgUnitOfWork {
    async fn commit(mut self) -> Result<(), RepoError> {
        if let Some(slot) = self.parked.take() {
            slot.park(self);
            return Ok(());
        }
        // In a task of its own: a caller gone mid-COMMIT cannot leave its outcome to a
        // rollback queued behind it.
        let txn = self.txn;
        self.availability
            .run_holding(async move { txn.commit().await.map_err(repo_error) })
            .await
    }

    fn park_commit(&mut self, slot: CommitSlot<Self>) {
        self.parked = Some(slot);
    }
}
