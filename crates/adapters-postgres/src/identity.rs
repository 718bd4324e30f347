//! Identity in PostgreSQL: tenants, users, memberships, sessions, API keys (tenant-scoped,
//! through RLS), and the pre-authentication functions (SECURITY DEFINER) for login,
//! invitation look-up, sweeps and QR login.

use domain::identity::{
    ApiKeyRecord, InvitationLookup, LoginCandidate, Member, NewApiKey, NewQrSession, NewSession,
    NewUser, QrRequester, QrStatus, TenantInfo,
};
use domain::ids::{ApiKeyId, InvitationId, QrSessionId, SessionId, TenantId, UserId};
use domain::principal::{Role, Scopes};
use domain::token::TokenHash;
use ports::{
    IdentityRepository, IdentityWriteError, NewQrLoginSession, PreAuthStore, QrDecision, QrPoll,
    QrRepository, QrScan, RepoError,
};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _,
    FromQueryResult, QueryFilter as _, QueryOrder as _, QuerySelect as _, Set, Value,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::entities::api_keys::{self, Entity as ApiKeys};
use crate::entities::memberships::{self, Entity as Memberships};
use crate::entities::tenants::{self, Entity as Tenants};
use crate::errors::{UNIQUE_VIOLATION, repo_error, violated_constraint};
use crate::store::{PgStore, PgUnitOfWork, statement};

pub(crate) fn role(raw: &str) -> Result<Role, RepoError> {
    raw.parse()
        .map_err(|e: domain::principal::UnknownRole| RepoError::Unexpected(e.to_string()))
}

impl From<tenants::Model> for TenantInfo {
    fn from(row: tenants::Model) -> Self {
        Self {
            id: TenantId::from_uuid(row.id),
            name: row.name,
            expires_at: row.expires_at,
        }
    }
}

#[derive(Debug, FromQueryResult)]
struct MemberRow {
    user_id: Uuid,
    email: String,
    name: String,
    role: String,
    created_at: OffsetDateTime,
}

impl TryFrom<MemberRow> for Member {
    type Error = RepoError;
    fn try_from(row: MemberRow) -> Result<Self, RepoError> {
        Ok(Self {
            user_id: UserId::from_uuid(row.user_id),
            email: row.email,
            name: row.name,
            role: role(&row.role)?,
            created_at: row.created_at,
        })
    }
}

/// What the hand-written INSERT returns: the entity's columns, in its order.
const KEY_COLUMNS: &str = "tenant_id, id, name, prefix, role, scopes, created_by, acts_for, \
                           created_at, last_used_at, expires_at, revoked_at";

impl TryFrom<api_keys::Model> for ApiKeyRecord {
    type Error = RepoError;
    /// A stored role that no longer parses is a broken invariant, reported as unexpected.
    fn try_from(row: api_keys::Model) -> Result<Self, RepoError> {
        Ok(Self {
            id: ApiKeyId::from_uuid(row.id),
            name: row.name,
            prefix: row.prefix,
            role: role(&row.role)?,
            scopes: Scopes::from_names(row.scopes),
            created_by: row.created_by.map(UserId::from_uuid),
            acts_for: row.acts_for.map(UserId::from_uuid),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        })
    }
}

const MEMBER_SELECT: &str = "SELECT m.user_id, u.email, u.name, m.role, m.created_at \
                             FROM memberships m JOIN users u ON u.id = m.user_id \
                             WHERE m.tenant_id = $1";

impl PgUnitOfWork {
    async fn exec(&self, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
        self.txn
            .execute_raw(statement(sql, values))
            .await
            .map(|r| r.rows_affected())
    }

    pub(crate) fn tenant_value(&self) -> Value {
        self.tenant_id.as_uuid().into()
    }

    async fn keys(&self, sql: &str, values: Vec<Value>) -> Result<Vec<ApiKeyRecord>, RepoError> {
        api_keys::Model::find_by_statement(statement(sql, values))
            .all(&self.txn)
            .await
            .map_err(repo_error)?
            .into_iter()
            .map(ApiKeyRecord::try_from)
            .collect()
    }
}

fn identity_write_error(error: DbErr) -> IdentityWriteError {
    match violated_constraint(&error) {
        Some(("users_email_key", code)) if code == UNIQUE_VIOLATION => {
            IdentityWriteError::EmailTaken
        }
        Some(("memberships_pkey", code)) if code == UNIQUE_VIOLATION => {
            IdentityWriteError::AlreadyMember
        }
        _ => IdentityWriteError::Repo(repo_error(error)),
    }
}

impl IdentityRepository for PgUnitOfWork {
    async fn tenant(&mut self) -> Result<TenantInfo, RepoError> {
        Tenants::find_by_id(self.tenant_id.as_uuid())
            .one(&self.txn)
            .await
            .map_err(repo_error)?
            .map(TenantInfo::from)
            .ok_or_else(|| RepoError::Unexpected("the unit of work's tenant is not visible".into()))
    }

    async fn insert_tenant(
        &mut self,
        name: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<TenantInfo, RepoError> {
        tenants::ActiveModel {
            id: Set(self.tenant_id.as_uuid()),
            name: Set(name.to_owned()),
            expires_at: Set(expires_at),
        }
        .insert(&self.txn)
        .await
        .map(TenantInfo::from)
        .map_err(repo_error)
    }

    async fn insert_user(&mut self, user: &NewUser) -> Result<(), IdentityWriteError> {
        self.exec(
            "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)",
            vec![
                user.id.as_uuid().into(),
                user.email.as_str().to_owned().into(),
                user.name.clone().into(),
                user.password_hash.clone().into(),
            ],
        )
        .await
        .map_err(identity_write_error)?;
        Ok(())
    }

    async fn insert_membership(
        &mut self,
        user: UserId,
        role: Role,
    ) -> Result<(), IdentityWriteError> {
        Memberships::insert(memberships::ActiveModel {
            tenant_id: Set(self.tenant_id.as_uuid()),
            user_id: Set(user.as_uuid()),
            role: Set(role.as_str().to_owned()),
            ..Default::default()
        })
        .exec_without_returning(&self.txn)
        .await
        .map_err(identity_write_error)?;
        Ok(())
    }

    async fn insert_session(&mut self, session: &NewSession) -> Result<(), RepoError> {
        self.exec(
            "INSERT INTO sessions (tenant_id, id, user_id, token_hash, expires_at, user_agent, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                self.tenant_value(),
                session.id.as_uuid().into(),
                session.user_id.as_uuid().into(),
                session.token_hash.0.to_vec().into(),
                session.expires_at.into(),
                session.user_agent.clone().into(),
                session.ip.clone().into(),
            ],
        )
        .await
        .map_err(repo_error)?;
        Ok(())
    }

    async fn revoke_session(&mut self, id: SessionId) -> Result<(), RepoError> {
        self.exec(
            "UPDATE sessions SET revoked_at = coalesce(revoked_at, now()) \
             WHERE tenant_id = $1 AND id = $2",
            vec![self.tenant_value(), id.as_uuid().into()],
        )
        .await
        .map_err(repo_error)?;
        Ok(())
    }

    async fn insert_api_key(&mut self, key: &NewApiKey) -> Result<ApiKeyRecord, RepoError> {
        // Hand-written: it writes `key_hash`, which the entity leaves out (see there).
        let rows = self
            .keys(
                &format!(
                    "INSERT INTO api_keys (tenant_id, id, name, prefix, key_hash, role, scopes, \
                     created_by, acts_for, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     RETURNING {KEY_COLUMNS}"
                ),
                vec![
                    self.tenant_value(),
                    key.id.as_uuid().into(),
                    key.name.clone().into(),
                    key.prefix.clone().into(),
                    key.key_hash.0.to_vec().into(),
                    key.role.as_str().to_owned().into(),
                    key.scopes.names().to_vec().into(),
                    key.created_by.map(|u| u.as_uuid()).into(),
                    key.acts_for.as_uuid().into(),
                    key.expires_at.into(),
                ],
            )
            .await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| RepoError::Unexpected("INSERT key returned no row".into()))
    }

    async fn list_api_keys(&mut self) -> Result<Vec<ApiKeyRecord>, RepoError> {
        ApiKeys::find()
            .filter(api_keys::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .order_by_desc(api_keys::Column::CreatedAt)
            .order_by_desc(api_keys::Column::Id)
            .all(&self.txn)
            .await
            .map_err(repo_error)?
            .into_iter()
            .map(ApiKeyRecord::try_from)
            .collect()
    }

    async fn get_api_key(&mut self, id: ApiKeyId) -> Result<Option<ApiKeyRecord>, RepoError> {
        ApiKeys::find_by_id((self.tenant_id.as_uuid(), id.as_uuid()))
            .one(&self.txn)
            .await
            .map_err(repo_error)?
            .map(ApiKeyRecord::try_from)
            .transpose()
    }

    async fn revoke_api_key(&mut self, id: ApiKeyId) -> Result<Option<ApiKeyRecord>, RepoError> {
        // Revoking twice keeps the first time.
        ApiKeys::update_many()
            .col_expr(
                api_keys::Column::RevokedAt,
                Func::coalesce([
                    Expr::col(api_keys::Column::RevokedAt),
                    Func::cust("now").into(),
                ])
                .into(),
            )
            .filter(api_keys::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(api_keys::Column::Id.eq(id.as_uuid()))
            .exec_with_returning(&self.txn)
            .await
            .map_err(repo_error)?
            .pop()
            .map(ApiKeyRecord::try_from)
            .transpose()
    }

    async fn list_members(&mut self) -> Result<Vec<Member>, RepoError> {
        MemberRow::find_by_statement(statement(
            &format!("{MEMBER_SELECT} ORDER BY m.created_at, m.user_id"),
            vec![self.tenant_value()],
        ))
        .all(&self.txn)
        .await
        .map_err(repo_error)?
        .into_iter()
        .map(Member::try_from)
        .collect()
    }

    async fn get_member(
        &mut self,
        user: UserId,
        for_update: bool,
    ) -> Result<Option<Member>, RepoError> {
        let lock = if for_update { " FOR UPDATE OF m" } else { "" };
        MemberRow::find_by_statement(statement(
            &format!("{MEMBER_SELECT} AND m.user_id = $2{lock}"),
            vec![self.tenant_value(), user.as_uuid().into()],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?
        .map(Member::try_from)
        .transpose()
    }

    async fn set_member_role(
        &mut self,
        user: UserId,
        role: Role,
    ) -> Result<Option<Member>, RepoError> {
        let changed = Memberships::update_many()
            .col_expr(
                memberships::Column::Role,
                Expr::val(role.as_str().to_owned()),
            )
            .filter(memberships::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(memberships::Column::UserId.eq(user.as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(repo_error)?
            .rows_affected;
        if changed == 0 {
            return Ok(None);
        }
        self.get_member(user, false).await
    }

    async fn delete_member(&mut self, user: UserId) -> Result<bool, RepoError> {
        let deleted = Memberships::delete_by_id((self.tenant_id.as_uuid(), user.as_uuid()))
            .exec(&self.txn)
            .await
            .map_err(repo_error)?
            .rows_affected;
        Ok(deleted > 0)
    }

    async fn lock_owners(&mut self) -> Result<Vec<UserId>, RepoError> {
        Ok(Memberships::find()
            .select_only()
            .column(memberships::Column::UserId)
            .filter(memberships::Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(memberships::Column::Role.eq(Role::Owner.as_str()))
            .order_by_asc(memberships::Column::UserId)
            .lock_exclusive()
            .into_tuple::<Uuid>()
            .all(&self.txn)
            .await
            .map_err(repo_error)?
            .into_iter()
            .map(UserId::from_uuid)
            .collect())
    }
}

fn status(raw: &str) -> Result<QrStatus, RepoError> {
    QrStatus::parse(raw).ok_or_else(|| RepoError::Unexpected(format!("unknown QR status {raw}")))
}

#[derive(Debug, FromQueryResult)]
struct ScanRow {
    outcome: String,
    session_id: Option<Uuid>,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: Option<OffsetDateTime>,
}

#[derive(Debug, FromQueryResult)]
struct OutcomeRow {
    outcome: String,
}

impl PgUnitOfWork {
    async fn qr_decide(
        &mut self,
        id: QrSessionId,
        user: UserId,
        decision: &str,
    ) -> Result<QrDecision, RepoError> {
        let row = OutcomeRow::find_by_statement(statement(
            "SELECT crm_qr_decide($1, $2, $3) AS outcome",
            vec![
                id.as_uuid().into(),
                user.as_uuid().into(),
                decision.to_owned().into(),
            ],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?
        .ok_or_else(|| RepoError::Unexpected("crm_qr_decide returned no row".into()))?;
        Ok(match row.outcome.as_str() {
            "ok" => QrDecision::Done,
            "not_found" => QrDecision::NotFound,
            "expired" => QrDecision::Expired,
            other => QrDecision::AlreadyUsed(status(other)?),
        })
    }
}

impl QrRepository for PgUnitOfWork {
    async fn qr_scan(&mut self, code: &TokenHash, user: UserId) -> Result<QrScan, RepoError> {
        let row = ScanRow::find_by_statement(statement(
            "SELECT outcome, session_id, user_agent, ip, created_at FROM crm_qr_scan($1, $2)",
            vec![code.0.to_vec().into(), user.as_uuid().into()],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?
        .ok_or_else(|| RepoError::Unexpected("crm_qr_scan returned no row".into()))?;
        Ok(
            match (row.outcome.as_str(), row.session_id, row.created_at) {
                ("ok", Some(id), Some(created_at)) => QrScan::Scanned(QrRequester {
                    session_id: QrSessionId::from_uuid(id),
                    user_agent: row.user_agent,
                    ip: row.ip,
                    created_at,
                }),
                ("not_found", _, _) => QrScan::NotFound,
                ("expired", _, _) => QrScan::Expired,
                (other, _, _) => QrScan::AlreadyUsed(status(other)?),
            },
        )
    }

    async fn qr_link(&mut self, id: QrSessionId, user: UserId) -> Result<QrDecision, RepoError> {
        self.qr_decide(id, user, "linked").await
    }

    async fn qr_cancel(&mut self, id: QrSessionId, user: UserId) -> Result<QrDecision, RepoError> {
        self.qr_decide(id, user, "cancelled").await
    }
}

#[derive(Debug, FromQueryResult)]
struct LoginRow {
    user_id: Uuid,
    email: String,
    name: String,
    password_hash: Option<String>,
    tenant_id: Option<Uuid>,
    tenant_name: Option<String>,
    role: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct PollRow {
    outcome: String,
    tenant_id: Option<Uuid>,
    user_id: Option<Uuid>,
}

impl PreAuthStore for PgStore {
    async fn find_login(&self, email: &str) -> Result<Option<LoginCandidate>, RepoError> {
        let rows = LoginRow::find_by_statement(statement(
            "SELECT user_id, email, name, password_hash, tenant_id, tenant_name, role \
               FROM crm_find_login($1)",
            vec![email.to_owned().into()],
        ))
        .all(self.db()?)
        .await
        .map_err(repo_error)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut candidate = LoginCandidate {
            user_id: UserId::from_uuid(first.user_id),
            email: first.email.clone(),
            name: first.name.clone(),
            password_hash: first.password_hash.clone(),
            memberships: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            if let (Some(tenant), Some(name), Some(raw_role)) =
                (row.tenant_id, row.tenant_name, row.role)
            {
                candidate
                    .memberships
                    .push((TenantId::from_uuid(tenant), name, role(&raw_role)?));
            }
        }
        Ok(Some(candidate))
    }

    async fn find_invitation(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<InvitationLookup>, RepoError> {
        #[derive(Debug, FromQueryResult)]
        struct Found {
            tenant_id: Uuid,
            invitation_id: Uuid,
            email: String,
        }
        Ok(Found::find_by_statement(statement(
            "SELECT tenant_id, invitation_id, email FROM crm_find_invitation($1)",
            vec![token_hash.0.to_vec().into()],
        ))
        .one(self.db()?)
        .await
        .map_err(repo_error)?
        .map(|found| InvitationLookup {
            tenant_id: TenantId::from_uuid(found.tenant_id),
            id: InvitationId::from_uuid(found.invitation_id),
            email: found.email,
        }))
    }

    async fn sweep_expired_tenants(&self) -> Result<u64, RepoError> {
        #[derive(Debug, FromQueryResult)]
        struct Swept {
            removed: i64,
        }
        let sweep = |sql: &'static str| async move {
            Swept::find_by_statement(statement(sql, vec![]))
                .one(self.db()?)
                .await
                .map_err(repo_error)
                .map(|s| s.map_or(0, |s| s.removed))
        };
        let swept = sweep("SELECT crm_sweep_expired_tenants() AS removed").await?;
        // Idempotency records past their 24 hours, 5 000 a transaction, so the sweep
        // never holds one long transaction (at most 100 chunks a pass).
        for _ in 0..100 {
            if sweep("SELECT crm_sweep_idempotency_records() AS removed").await? < 5_000 {
                break;
            }
        }
        Ok(u64::try_from(swept).unwrap_or(0))
    }

    async fn qr_create(&self, request: &NewQrSession) -> Result<(), RepoError> {
        self.db()?
            .execute_raw(statement(
                "SELECT crm_qr_create($1, $2, $3, $4, $5, $6, $7)",
                vec![
                    request.id.as_uuid().into(),
                    request.code_hash.0.to_vec().into(),
                    request.poll_token_hash.0.to_vec().into(),
                    request.user_agent.clone().into(),
                    request.ip.clone().into(),
                    request.expires_at.into(),
                    request.interval_seconds.into(),
                ],
            ))
            .await
            .map_err(repo_error)?;
        Ok(())
    }

    async fn qr_poll(
        &self,
        id: QrSessionId,
        poll_token: &TokenHash,
        session: &NewQrLoginSession,
    ) -> Result<QrPoll, RepoError> {
        let row = PollRow::find_by_statement(statement(
            "SELECT outcome, tenant_id, user_id FROM crm_qr_poll($1, $2, $3, $4, $5)",
            vec![
                id.as_uuid().into(),
                poll_token.0.to_vec().into(),
                session.id.as_uuid().into(),
                session.token_hash.0.to_vec().into(),
                session.expires_at.into(),
            ],
        ))
        .one(self.db()?)
        .await
        .map_err(repo_error)?
        .ok_or_else(|| RepoError::Unexpected("crm_qr_poll returned no row".into()))?;
        Ok(match (row.outcome.as_str(), row.tenant_id, row.user_id) {
            ("collected", Some(tenant), Some(user)) => QrPoll::Collected {
                tenant_id: TenantId::from_uuid(tenant),
                user_id: UserId::from_uuid(user),
            },
            ("not_found", _, _) => QrPoll::NotFound,
            ("wrong_token", _, _) => QrPoll::WrongPollToken,
            ("slow_down", _, _) => QrPoll::SlowDown,
            ("expired", _, _) => QrPoll::Status(QrStatus::Expired),
            (other, _, _) => QrPoll::Status(status(other)?),
        })
    }
}
