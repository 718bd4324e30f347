//! Contacts: the repository of the unit of work's tenant and why a write can fail.

use std::future::Future;

use domain::contact::{Contact, ContactDraft, ContactPage, ContactQuery};
use domain::ids::ContactId;
use domain::principal::Principal;
use domain::token::TokenHash;
use thiserror::Error;

use crate::errors::RepoError;

/// Why a contact could not be written.
#[derive(Debug, Error)]
pub enum ContactWriteError {
    /// Another contact of the tenant has this e-mail address.
    #[error("a contact with this e-mail address already exists")]
    DuplicateEmail,
    /// `ownerId` is not a member of the tenant.
    #[error("the owner is not a member of this tenant")]
    UnknownOwner,
    /// `companyId` is not a company of the tenant.
    #[error("the company does not exist in this tenant")]
    UnknownCompany,
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

    /// The contact with this (normalised) e-mail, locked for update: the key of batch upserts.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn find_contact_by_email(
        &mut self,
        email: &domain::contact::Email,
    ) -> impl Future<Output = Result<Option<Contact>, RepoError>> + Send;

    /// The contacts having any of these (normalised) e-mails: one look-up for a batch.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn find_contacts_by_emails(
        &mut self,
        emails: &[domain::contact::Email],
    ) -> impl Future<Output = Result<Vec<Contact>, RepoError>> + Send;

    /// Stores many new contacts at once (a few statements in PostgreSQL), in order, and
    /// returns the ids of those written, in order. A row whose e-mail another contact already holds is skipped,
    /// not an error, so the caller learns every conflicting row from one call (without a
    /// look-up first) and decides whether to commit what was written.
    ///
    /// # Errors
    /// As [`ContactRepository::insert_contact`] (but for a taken e-mail), for the batch as
    /// a whole.
    fn insert_contacts(
        &mut self,
        rows: &[(ContactId, ContactDraft)],
    ) -> impl Future<Output = Result<Vec<ContactId>, ContactWriteError>> + Send;

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

/// A contact read that costs one statement in all: the API key is resolved, the tenant
/// set and the contact read in a single round trip, outside any transaction block
/// (SPEC §9: authentication and the transaction prologue cost no round trip of their
/// own). The read is scoped exactly as in a unit of work: the tenant is set
/// transaction-locally, for that statement's own transaction, before any contact row is
/// touched, and row-level security applies.
pub trait ContactReadByApiKey: Send + Sync {
    /// `None` when no live key has this hash; else the caller and the contact, if the
    /// caller's tenant has one with this id. The caller's permission is not checked here:
    /// the use case checks it before anything read leaves the core.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn contact_with_api_key(
        &self,
        hash: &TokenHash,
        id: ContactId,
    ) -> impl Future<Output = Result<Option<(Principal, Option<Contact>)>, RepoError>> + Send;
}

/// The API keys this process checked a moment ago, as it found them: what decides whether
/// a request may try one of the one-statement paths below. Trusted for nothing else; each
/// statement checks the key again before it reads or writes.
pub trait RememberedKeys: Send + Sync {
    /// The caller the key `hash` was found to be when this process last resolved or
    /// checked it, if that was recent; `None` when it was not (the unit of work decides).
    fn remembered_caller(&self, hash: &TokenHash) -> Option<Principal>;
}

/// A page of contacts listed in one statement in all, for an API key this process checked
/// a moment ago: the statement checks the key in its tenant, through row-level security,
/// and reads the page only when the key is still exactly the remembered caller.
pub trait ContactListByApiKey: RememberedKeys {
    /// The page `query` asks for, if the key is still exactly `caller`.
    ///
    /// `Ok(None)` when the key is no longer `caller` (revoked, expired, its tenant gone,
    /// its member removed, or a role or scope changed): the request takes the unit of
    /// work, which answers for the key as it is now.
    ///
    /// # Errors
    /// As [`ContactRepository::list_contacts`].
    fn list_contacts_as(
        &self,
        hash: &TokenHash,
        caller: &Principal,
        query: &ContactQuery,
    ) -> impl Future<Output = Result<Option<ContactPage>, RepoError>> + Send;
}

/// A contact created in one statement in all, for an API key this process checked a
/// moment ago (SPEC §9: authentication and the transaction prologue cost no round trip of
/// their own). The store remembers what the key was found to be; the statement that writes
/// checks first, in the key's tenant and through row-level security, that it still is
/// exactly that (live, its tenant live, acting for a member, with the same role and
/// scopes), and writes nothing otherwise. What is remembered only decides whether to try:
/// every right the write relies on is checked again by the statement that makes it.
pub trait ContactCreateByApiKey: RememberedKeys {
    /// Inserts the contact if the key is still exactly `caller`, in one statement that
    /// checks and writes (the tenant set transaction-locally before any row is touched,
    /// the change's event and deliveries written by the same statement).
    ///
    /// `Ok(None)` when the key is no longer `caller` (revoked, expired, its tenant gone,
    /// its member removed, or a role or scope changed): nothing was written, and the
    /// request takes the unit of work, which answers for the key as it is now.
    ///
    /// # Errors
    /// As [`ContactRepository::insert_contact`]; such an error means the key passed its
    /// check (the row is only attempted after it), and nothing was written.
    fn create_contact_as(
        &self,
        hash: &TokenHash,
        caller: &Principal,
        id: ContactId,
        draft: &ContactDraft,
    ) -> impl Future<Output = Result<Option<Contact>, ContactWriteError>> + Send;
}
