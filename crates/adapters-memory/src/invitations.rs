//! Invitations in memory, for use-case tests: the same rules as the PostgreSQL adapter
//! (a token works once, while pending and unexpired; an invitation goes with its inviter).

use std::collections::BTreeMap;

use domain::identity::{Invitation, InvitationLookup, NewInvitation};
use domain::ids::{InvitationId, TenantId, UserId};
use domain::token::TokenHash;
use ports::{InvitationRepository, RepoError};

use time::OffsetDateTime;

use crate::store::MemoryUnitOfWork;

/// One tenant's invitations, with their token hashes.
#[derive(Clone, Debug, Default)]
pub(crate) struct InvitationData {
    invitations: BTreeMap<InvitationId, (Invitation, TokenHash)>,
}

impl InvitationData {
    fn live(invitation: &Invitation, now: OffsetDateTime) -> bool {
        invitation.accepted_at.is_none()
            && invitation.revoked_at.is_none()
            && invitation.expires_at > now
    }

    /// The live invitation with this token, for the pre-authentication look-up.
    pub(crate) fn find(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Option<InvitationLookup> {
        self.invitations
            .values()
            .find(|(invitation, stored)| stored.matches(hash) && Self::live(invitation, now))
            .map(|(invitation, _)| InvitationLookup {
                tenant_id: tenant,
                id: invitation.id,
                email: invitation.email.clone(),
            })
    }

    /// Drops the invitations of a member who left.
    pub(crate) fn forget_inviter(&mut self, user: UserId) {
        self.invitations
            .retain(|_, (invitation, _)| invitation.invited_by != user);
    }
}

impl InvitationRepository for MemoryUnitOfWork {
    async fn insert_invitation(
        &mut self,
        invitation: &NewInvitation,
    ) -> Result<Invitation, RepoError> {
        let now = self.now();
        let stored = Invitation {
            id: invitation.id,
            email: invitation.email.as_str().to_owned(),
            role: invitation.role,
            invited_by: invitation.invited_by,
            created_at: now,
            expires_at: invitation.expires_at,
            accepted_at: None,
            revoked_at: None,
        };
        let data = self.data_mut()?;
        data.invitations
            .invitations
            .insert(invitation.id, (stored.clone(), invitation.token_hash));
        data.record_change(now, None, Some(&stored))?;
        Ok(stored)
    }

    async fn list_invitations(&mut self) -> Result<Vec<Invitation>, RepoError> {
        let mut all: Vec<Invitation> = self
            .data()?
            .invitations
            .invitations
            .values()
            .map(|(invitation, _)| invitation.clone())
            .collect();
        all.sort_by_key(|i| std::cmp::Reverse((i.created_at, i.id.as_uuid())));
        Ok(all)
    }

    async fn revoke_invitation(&mut self, id: InvitationId) -> Result<Option<bool>, RepoError> {
        let now = self.now();
        let data = self.data_mut()?;
        let Some((invitation, _)) = data.invitations.invitations.get_mut(&id) else {
            return Ok(None);
        };
        if invitation.accepted_at.is_some() || invitation.revoked_at.is_some() {
            return Ok(Some(false));
        }
        invitation.revoked_at = Some(now);
        Ok(Some(true))
    }

    async fn claim_invitation(
        &mut self,
        id: InvitationId,
        _user: UserId,
    ) -> Result<Option<Invitation>, RepoError> {
        let now = self.now();
        let data = self.data_mut()?;
        let Some((invitation, _)) = data.invitations.invitations.get_mut(&id) else {
            return Ok(None);
        };
        if !InvitationData::live(invitation, now) {
            return Ok(None);
        }
        invitation.accepted_at = Some(now);
        Ok(Some(invitation.clone()))
    }
}
