//! Invitations into a tenant (membership is by invitation only).

use std::future::Future;

use domain::identity::{Invitation, NewInvitation};
use domain::ids::{InvitationId, UserId};

use crate::errors::RepoError;

/// Invitations into the unit of work's tenant (membership is by invitation only).
pub trait InvitationRepository {
    /// Stores an invitation (its token only as a hash).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_invitation(
        &mut self,
        invitation: &NewInvitation,
    ) -> impl Future<Output = Result<Invitation, RepoError>> + Send;

    /// Every invitation of the tenant, newest first.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_invitations(
        &mut self,
    ) -> impl Future<Output = Result<Vec<Invitation>, RepoError>> + Send;

    /// Revokes a pending invitation; `None` when there is no such invitation, `Some(false)`
    /// when it was already accepted or revoked.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn revoke_invitation(
        &mut self,
        id: InvitationId,
    ) -> impl Future<Output = Result<Option<bool>, RepoError>> + Send;

    /// Marks a live (pending, unexpired) invitation accepted by `user`, once: of two
    /// concurrent acceptances, one gets it and the other `None`.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn claim_invitation(
        &mut self,
        id: InvitationId,
        user: UserId,
    ) -> impl Future<Output = Result<Option<Invitation>, RepoError>> + Send;
}
