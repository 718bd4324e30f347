//! Identity inside a tenant: the tenant itself, its users' memberships, sessions and API keys.

use std::future::Future;

use domain::identity::{ApiKeyRecord, Member, NewApiKey, NewSession, NewUser, TenantInfo};
use domain::ids::{ApiKeyId, SessionId, UserId};
use domain::principal::Role;
use thiserror::Error;
use time::OffsetDateTime;

use crate::errors::RepoError;

/// Why an identity record could not be written.
#[derive(Debug, Error)]
pub enum IdentityWriteError {
    /// Another user already has this e-mail address.
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    /// The user is already a member of the tenant.
    #[error("already a member of this tenant")]
    AlreadyMember,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The unit of work's tenant, its members, sessions and API keys.
pub trait IdentityRepository {
    /// The tenant itself.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn tenant(&mut self) -> impl Future<Output = Result<TenantInfo, RepoError>> + Send;

    /// Creates the unit of work's own tenant (sign-up, demo).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_tenant(
        &mut self,
        name: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<TenantInfo, RepoError>> + Send;

    /// Creates a user (a global identity).
    ///
    /// # Errors
    /// [`IdentityWriteError::EmailTaken`], or storage.
    fn insert_user(
        &mut self,
        user: &NewUser,
    ) -> impl Future<Output = Result<(), IdentityWriteError>> + Send;

    /// Makes a user a member of this tenant.
    ///
    /// # Errors
    /// [`IdentityWriteError::AlreadyMember`], or storage.
    fn insert_membership(
        &mut self,
        user: UserId,
        role: Role,
    ) -> impl Future<Output = Result<(), IdentityWriteError>> + Send;

    /// Stores a login session for a member of this tenant.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_session(
        &mut self,
        session: &NewSession,
    ) -> impl Future<Output = Result<(), RepoError>> + Send;

    /// Revokes a session of this tenant.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn revoke_session(
        &mut self,
        id: SessionId,
    ) -> impl Future<Output = Result<(), RepoError>> + Send;

    /// Stores an API key and returns it as listed.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_api_key(
        &mut self,
        key: &NewApiKey,
    ) -> impl Future<Output = Result<ApiKeyRecord, RepoError>> + Send;

    /// Every API key of the tenant, newest first.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_api_keys(
        &mut self,
    ) -> impl Future<Output = Result<Vec<ApiKeyRecord>, RepoError>> + Send;

    /// One API key.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_api_key(
        &mut self,
        id: ApiKeyId,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, RepoError>> + Send;

    /// Revokes an API key (idempotent: an already revoked key keeps its first revocation
    /// time). `None` when no such key.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn revoke_api_key(
        &mut self,
        id: ApiKeyId,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, RepoError>> + Send;

    /// Every member, oldest first.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_members(&mut self) -> impl Future<Output = Result<Vec<Member>, RepoError>> + Send;

    /// One member; `for_update` locks the membership until the unit of work ends.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_member(
        &mut self,
        user: UserId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Member>, RepoError>> + Send;

    /// Changes a member's role.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn set_member_role(
        &mut self,
        user: UserId,
        role: Role,
    ) -> impl Future<Output = Result<Option<Member>, RepoError>> + Send;

    /// Removes a member (their sessions go with the membership).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn delete_member(
        &mut self,
        user: UserId,
    ) -> impl Future<Output = Result<bool, RepoError>> + Send;

    /// Locks and returns the owners, so "the last owner" checks cannot race.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn lock_owners(&mut self) -> impl Future<Output = Result<Vec<UserId>, RepoError>> + Send;
}
