//! Invitations in PostgreSQL, tenant-scoped through RLS. The application role never reads
//! a token hash: the look-up by token is `crm_find_invitation` (SECURITY DEFINER, in
//! `identity.rs`), and acceptance is a conditional UPDATE, so a token works once. Listing and claiming go
//! through SeaORM's builder; the INSERT and the revocation stay hand-written.

use domain::identity::{Invitation, NewInvitation};
use domain::ids::{InvitationId, UserId};
use ports::{InvitationRepository, RepoError};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ColumnTrait as _, EntityTrait as _, FromQueryResult, QueryFilter as _, QueryOrder as _,
};

use crate::entities::invitations::{self, Column, Entity as Invitations};
use crate::errors::repo_error;
use crate::identity::role;
use crate::store::{PgUnitOfWork, statement};

/// What the hand-written INSERT returns: the entity's columns, in its order.
const COLUMNS: &str = "tenant_id, id, email, role, invited_by, created_at, expires_at, accepted_at, accepted_by, \
     revoked_at";

impl TryFrom<invitations::Model> for Invitation {
    type Error = RepoError;

    /// A stored role that no longer parses is a broken invariant, reported as unexpected.
    fn try_from(row: invitations::Model) -> Result<Self, RepoError> {
        Ok(Self {
            id: InvitationId::from_uuid(row.id),
            email: row.email,
            role: role(&row.role)?,
            invited_by: UserId::from_uuid(row.invited_by),
            created_at: row.created_at,
            expires_at: row.expires_at,
            accepted_at: row.accepted_at,
            revoked_at: row.revoked_at,
        })
    }
}

impl InvitationRepository for PgUnitOfWork {
    async fn insert_invitation(
        &mut self,
        invitation: &NewInvitation,
    ) -> Result<Invitation, RepoError> {
        // Hand-written: it writes `token_hash`, which the entity leaves out (see there).
        invitations::Model::find_by_statement(statement(
            &format!(
                "INSERT INTO invitations (tenant_id, id, email, role, token_hash, invited_by, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
            ),
            vec![
                self.tenant_value(),
                invitation.id.as_uuid().into(),
                invitation.email.as_str().to_owned().into(),
                invitation.role.as_str().to_owned().into(),
                invitation.token_hash.0.to_vec().into(),
                invitation.invited_by.as_uuid().into(),
                invitation.expires_at.into(),
            ],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?
        .map(Invitation::try_from)
        .transpose()?
        .ok_or_else(|| RepoError::Unexpected("INSERT invitation returned no row".into()))
    }

    async fn list_invitations(&mut self) -> Result<Vec<Invitation>, RepoError> {
        Invitations::find()
            .filter(Column::TenantId.eq(self.tenant_id.as_uuid()))
            .order_by_desc(Column::CreatedAt)
            .order_by_desc(Column::Id)
            .all(&self.txn)
            .await
            .map_err(repo_error)?
            .into_iter()
            .map(Invitation::try_from)
            .collect()
    }

    async fn revoke_invitation(&mut self, id: InvitationId) -> Result<Option<bool>, RepoError> {
        // One statement: whether it exists, and whether this call revoked it (a CTE the
        // builder cannot say as one statement; hand-written).
        #[derive(Debug, FromQueryResult)]
        struct Outcome {
            revoked: bool,
        }
        let outcome = Outcome::find_by_statement(statement(
            "WITH target AS (SELECT id FROM invitations WHERE tenant_id = $1 AND id = $2), \
             changed AS (UPDATE invitations SET revoked_at = now() \
                          WHERE tenant_id = $1 AND id = $2 \
                            AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id) \
             SELECT EXISTS (SELECT 1 FROM changed) AS revoked FROM target",
            vec![self.tenant_value(), id.as_uuid().into()],
        ))
        .one(&self.txn)
        .await
        .map_err(repo_error)?;
        Ok(outcome.map(|o| o.revoked))
    }

    async fn claim_invitation(
        &mut self,
        id: InvitationId,
        user: UserId,
    ) -> Result<Option<Invitation>, RepoError> {
        use sea_orm::sea_query::ExprTrait as _;
        // A conditional UPDATE: only a pending, unexpired invitation is claimed, once.
        Invitations::update_many()
            .col_expr(Column::AcceptedAt, Func::cust("now").into())
            .col_expr(Column::AcceptedBy, Expr::val(user.as_uuid()))
            .filter(Column::TenantId.eq(self.tenant_id.as_uuid()))
            .filter(Column::Id.eq(id.as_uuid()))
            .filter(Column::AcceptedAt.is_null())
            .filter(Column::RevokedAt.is_null())
            .filter(Expr::col(Column::ExpiresAt).gt(Func::cust("now")))
            .exec_with_returning(&self.txn)
            .await
            .map_err(repo_error)?
            .pop()
            .map(Invitation::try_from)
            .transpose()
    }
}
