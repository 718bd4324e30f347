//! The traits the core needs from the outside world, and nothing else.
//!
//! Every tenant-scoped operation runs inside a [`UnitOfWork`], opened by a [`TenantStore`]
//! for exactly one tenant: the PostgreSQL adapter makes that a transaction with
//! `app.tenant_id` set (so row-level security scopes every statement), the in-memory
//! adapter a staged copy of one tenant's data. Use cases never see which one they got.
//!
//! Traits use `impl Future + Send` rather than `async fn` so the futures are `Send` and can
//! run on any executor thread.

use std::future::Future;

use domain::api_key::ApiKeyHash;
use domain::contact::{Contact, ContactDraft, ContactPage, ContactQuery};
use domain::ids::{ContactId, TenantId, UserId};
use domain::principal::Principal;
use thiserror::Error;

/// A failure of the storage itself, not of the caller's request.
#[derive(Debug, Error)]
pub enum RepoError {
    /// The store cannot be reached or is shutting down; worth retrying later (503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a broken invariant. The message is for logs only.
    #[error("unexpected storage error: {0}")]
    Unexpected(String),
}

/// Why a contact could not be written.
#[derive(Debug, Error)]
pub enum ContactWriteError {
    /// Another contact of the tenant has this e-mail address.
    #[error("a contact with this e-mail address already exists")]
    DuplicateEmail,
    /// `ownerId` is not a member of the tenant.
    #[error("the owner is not a member of this tenant")]
    UnknownOwner,
    /// The contact does not exist in this tenant.
    #[error("contact not found")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Contacts of the unit of work's tenant. There is no tenant parameter: the unit of work
/// is bound to one tenant and cannot reach another.
pub trait ContactRepository {
    /// One page of contacts matching `query`.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_contacts(
        &mut self,
        query: &ContactQuery,
    ) -> impl Future<Output = Result<ContactPage, RepoError>> + Send;

    /// One contact, `None` when it does not exist in this tenant. With `for_update` the
    /// row is locked until the unit of work ends, so a read-check-write cannot race.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_contact(
        &mut self,
        id: ContactId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Contact>, RepoError>> + Send;

    /// Stores a new contact at version 1.
    ///
    /// # Errors
    /// [`ContactWriteError::DuplicateEmail`], [`ContactWriteError::UnknownOwner`], or storage.
    fn insert_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> impl Future<Output = Result<Contact, ContactWriteError>> + Send;

    /// Replaces a contact's fields and bumps its version.
    ///
    /// # Errors
    /// As insert, plus [`ContactWriteError::NotFound`].
    fn update_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> impl Future<Output = Result<Contact, ContactWriteError>> + Send;

    /// Deletes a contact.
    ///
    /// # Errors
    /// [`ContactWriteError::NotFound`], or storage.
    fn delete_contact(
        &mut self,
        id: ContactId,
    ) -> impl Future<Output = Result<(), ContactWriteError>> + Send;
}

/// One tenant-scoped, all-or-nothing piece of work. Dropping it without
/// [`UnitOfWork::commit`] discards every change.
pub trait UnitOfWork: ContactRepository + Send {
    /// Makes every change of this unit of work durable at once.
    ///
    /// # Errors
    /// [`RepoError`] when the commit fails; nothing was changed then.
    fn commit(self) -> impl Future<Output = Result<(), RepoError>> + Send;
}

/// Opens units of work. Implementations are cheap to clone (a pool handle).
pub trait TenantStore: Clone + Send + Sync + 'static {
    /// The unit of work this store opens.
    type Uow: UnitOfWork;

    /// Resolves an API key by its hash and opens a unit of work scoped to the key's
    /// tenant, in one step: authentication costs no round trip of its own. `None` when
    /// no live key (unrevoked, unexpired) has this hash.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn begin_with_api_key(
        &self,
        hash: &ApiKeyHash,
    ) -> impl Future<Output = Result<Option<(Principal, Self::Uow)>, RepoError>> + Send;

    /// Opens a unit of work for a tenant already known to the caller (trusted callers
    /// only: background jobs, administration).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn begin_for_tenant(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Self::Uow, RepoError>> + Send;
}

/// What provisioning a tenant produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedTenant {
    /// The new tenant.
    pub tenant_id: TenantId,
    /// Its owner.
    pub owner_id: UserId,
}

/// The request to make a tenant: its name, its first owner, and the hash of an owner API
/// key (the clear key is made and shown by the caller).
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// Display name.
    pub name: String,
    /// The owner's e-mail address.
    pub owner_email: String,
    /// The owner's display name.
    pub owner_name: String,
    /// Name of the first API key.
    pub key_name: String,
    /// Public prefix of the first API key.
    pub key_prefix: String,
    /// Hash of the first API key.
    pub key_hash: ApiKeyHash,
}

/// Creates tenants: a privileged operation that crosses tenants by nature, so it runs
/// with the operator's credentials (`crm tenant create`), not the application role's.
pub trait TenantProvisioning: Send + Sync {
    /// Creates the tenant, its owner user and membership, and its first API key, at once.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails; nothing was created then.
    fn provision_tenant(
        &self,
        tenant: NewTenant,
    ) -> impl Future<Output = Result<ProvisionedTenant, RepoError>> + Send;
}

/// Whether the store can serve requests now (readiness probes).
pub trait HealthCheck: Send + Sync {
    /// Succeeds when the store answers.
    ///
    /// # Errors
    /// [`RepoError`] describing why it cannot serve.
    fn check(&self) -> impl Future<Output = Result<(), RepoError>> + Send;
}
