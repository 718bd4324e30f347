//! Invitations in PostgreSQL, tenant-scoped through RLS. The application role never reads
//! a token hash: the look-up by token is `crm_find_invitation` (SECURITY DEFINER, in
//! `identity.rs`), and acceptance is a conditional UPDATE, so a token works once.

use domain::identity::{Invitation, NewInvitation};
use domain::ids::{InvitationId, UserId};
use ports::{InvitationRepository, RepoError};
use sea_orm::{FromQueryResult, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::repo_error;
use crate::identity::role;
use crate::store::{PgUnitOfWork, statement};

const COLUMNS: &str =
    "id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

#[derive(Debug, FromQueryResult)]
struct InvitationRow {
    id: Uuid,
    email: String,
    role: String,
    invited_by: Uuid,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    accepted_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = RepoError;
    fn try_from(row: InvitationRow) -> Result<Self, RepoError> {
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

impl PgUnitOfWork {
    async fn invitations(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<Invitation>, RepoError> {
        InvitationRow::find_by_statement(statement(sql, values))
            .all(&self.txn)
            .await
            .map_err(repo_error)?
            .into_iter()
            .map(Invitation::try_from)
            .collect()
    }
}

impl InvitationRepository for PgUnitOfWork {
    async fn insert_invitation(
        &mut self,
        invitation: &NewInvitation,
    ) -> Result<Invitation, RepoError> {
        self.invitations(
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
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| RepoError::Unexpected("INSERT invitation returned no row".into()))
    }

    async fn list_invitations(&mut self) -> Result<Vec<Invitation>, RepoError> {
        self.invitations(
            &format!(
                "SELECT {COLUMNS} FROM invitations WHERE tenant_id = $1 \
                 ORDER BY created_at DESC, id DESC"
            ),
            vec![self.tenant_value()],
        )
        .await
    }

    async fn revoke_invitation(&mut self, id: InvitationId) -> Result<Option<bool>, RepoError> {
        // One statement: whether it exists, and whether this call revoked it.
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
        Ok(self
            .invitations(
                &format!(
                    "UPDATE invitations SET accepted_at = now(), accepted_by = $3 \
                     WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL \
                       AND revoked_at IS NULL AND expires_at > now() RETURNING {COLUMNS}"
                ),
                vec![
                    self.tenant_value(),
                    id.as_uuid().into(),
                    user.as_uuid().into(),
                ],
            )
            .await?
            .into_iter()
            .next())
    }
}
