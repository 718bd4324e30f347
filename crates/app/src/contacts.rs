//! Contact use cases: list, get, create, replace, patch, delete.

use domain::FieldErrors;
use domain::contact::{
    Contact, ContactDraft, ContactInput, ContactPage, ContactPatch, ContactQuery,
};
use domain::ids::ContactId;
use domain::principal::{Forbidden, Permission, Principal};
use domain::token::TokenHash;
use ports::{
    ContactCreateByApiKey, ContactListByApiKey, ContactReadByApiKey, ContactRepository,
    ContactWriteError, RememberedKeys, RepoError, UnitOfWork,
};
use thiserror::Error;

/// Every way a contact use case can fail. The API maps each variant to one status.
#[derive(Debug, Error)]
pub enum ContactError {
    /// The caller's role or scopes do not allow this.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The input breaks the contact rules.
    #[error("invalid contact: {0}")]
    Invalid(FieldErrors),
    /// No such contact in the caller's tenant (also what another tenant's id looks like).
    #[error("contact not found")]
    NotFound,
    /// `If-Match` named another version.
    #[error("the contact has changed: its current ETag is {current_etag}")]
    PreconditionFailed {
        /// The ETag the client should have sent.
        current_etag: String,
    },
    /// Another contact of the tenant has this e-mail address.
    #[error("a contact with this e-mail address already exists")]
    DuplicateEmail,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<ContactWriteError> for ContactError {
    fn from(error: ContactWriteError) -> Self {
        match error {
            ContactWriteError::DuplicateEmail => Self::DuplicateEmail,
            ContactWriteError::UnknownOwner => {
                let mut fields = FieldErrors::new();
                fields.add("ownerId", "must be a member of this tenant");
                Self::Invalid(fields)
            }
            ContactWriteError::UnknownCompany => {
                let mut fields = FieldErrors::new();
                fields.add("companyId", "must be a company of this tenant");
                Self::Invalid(fields)
            }
            ContactWriteError::NotFound => Self::NotFound,
            ContactWriteError::Repo(repo) => Self::Repo(repo),
        }
    }
}

/// An `If-Match` precondition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the resource must exist.
    Any,
    /// A list of entity tags, one of which must be current (strong comparison).
    Tags(Vec<String>),
}

impl IfMatch {
    /// Whether `current` (an entity tag) satisfies the precondition (strong comparison).
    #[must_use]
    pub fn matches(&self, current: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Tags(tags) => tags.iter().any(|tag| tag == current),
        }
    }

    fn check(&self, contact: &Contact) -> Result<(), ContactError> {
        let current = contact.etag();
        if self.matches(&current) {
            Ok(())
        } else {
            Err(ContactError::PreconditionFailed {
                current_etag: current,
            })
        }
    }
}

/// Lists contacts of the caller's tenant.
///
/// # Errors
/// [`ContactError::Forbidden`] without `contacts:read`; storage errors.
pub async fn list_contacts<U: UnitOfWork + ContactRepository>(
    mut uow: U,
    principal: &Principal,
    query: ContactQuery,
) -> Result<ContactPage, ContactError> {
    principal.require(Permission::ContactsRead)?;
    let page = uow.list_contacts(&query).await?;
    uow.commit().await?;
    Ok(page)
}

/// Fetches one contact.
///
/// # Errors
/// [`ContactError::NotFound`] when it is not in the caller's tenant.
pub async fn get_contact<U: UnitOfWork + ContactRepository>(
    mut uow: U,
    principal: &Principal,
    id: ContactId,
) -> Result<Contact, ContactError> {
    principal.require(Permission::ContactsRead)?;
    let contact = uow
        .get_contact(id, false)
        .await?
        .ok_or(ContactError::NotFound)?;
    uow.commit().await?;
    Ok(contact)
}

/// Fetches one contact for an API key in one statement that also authenticates the key
/// and scopes the read (SPEC §9): the same answer as [`get_contact`] in a unit of work
/// opened with the key, one round trip instead of four.
///
/// `Ok(None)` when no live key has this hash (the caller is unauthenticated); else the
/// caller, whom the API still counts against their limits, and the outcome. A contact
/// read for a caller without `contacts:read` is dropped here, unseen.
///
/// # Errors
/// [`ContactError::Repo`] when storage fails.
pub async fn get_contact_with_api_key<S: ContactReadByApiKey>(
    store: &S,
    key: &TokenHash,
    id: ContactId,
) -> Result<Option<(Principal, Result<Contact, ContactError>)>, ContactError> {
    let Some((principal, contact)) = store.contact_with_api_key(key, id).await? else {
        return Ok(None);
    };
    let outcome = match principal.require(Permission::ContactsRead) {
        Ok(()) => contact.ok_or(ContactError::NotFound),
        Err(forbidden) => Err(ContactError::Forbidden(forbidden)),
    };
    Ok(Some((principal, outcome)))
}

/// The caller an API key was remembered as, if it may list contacts in one statement
/// (SPEC §9): remembered by this process a moment ago, with `contacts:read`. `None`: the
/// request takes [`list_contacts`] in a unit of work, which answers for the key as it is
/// now (401, or 403 without the right).
pub fn remembered_reader<S: RememberedKeys>(store: &S, key: &TokenHash) -> Option<Principal> {
    store
        .remembered_caller(key)
        .filter(|caller| caller.require(Permission::ContactsRead).is_ok())
}

/// Lists contacts for the [`remembered_reader`] `caller` in one statement that checks the
/// key again and reads the page: the same page as [`list_contacts`] in a unit of work
/// opened with the key. `Ok(None)` when the key is no longer exactly `caller`: take the
/// unit of work.
///
/// # Errors
/// Storage errors.
pub async fn list_contacts_as_remembered<S: ContactListByApiKey>(
    store: &S,
    key: &TokenHash,
    caller: &Principal,
    query: &ContactQuery,
) -> Result<Option<ContactPage>, ContactError> {
    Ok(store.list_contacts_as(key, caller, query).await?)
}

/// Creates a contact.
///
/// # Errors
/// [`ContactError::Invalid`], [`ContactError::DuplicateEmail`], permission and storage.
pub async fn create_contact<U: UnitOfWork + ContactRepository>(
    mut uow: U,
    principal: &Principal,
    input: ContactInput,
) -> Result<Contact, ContactError> {
    principal.require(Permission::ContactsWrite)?;
    let draft = ContactDraft::new(input).map_err(ContactError::Invalid)?;
    let contact = uow.insert_contact(ContactId::new(), &draft).await?;
    uow.commit().await?;
    Ok(contact)
}

/// A create that can be one statement in all (SPEC §9): the store remembers the key as a
/// caller who may write contacts, and the input is valid. Anything else (a key not
/// remembered, one remembered without the right, an invalid body) takes
/// [`create_contact`] in a unit of work, which authenticates the key as it is now before
/// answering anything, so the answers are the same either way.
#[derive(Debug)]
pub struct RememberedCreate {
    caller: Principal,
    draft: ContactDraft,
}

impl RememberedCreate {
    /// `None` when the request must take the unit of work.
    #[must_use]
    pub fn prepare<S: ContactCreateByApiKey>(
        store: &S,
        key: &TokenHash,
        input: &ContactInput,
    ) -> Option<Self> {
        let caller = store.remembered_caller(key)?;
        caller.require(Permission::ContactsWrite).ok()?;
        let draft = ContactDraft::new(input.clone()).ok()?;
        Some(Self { caller, draft })
    }

    /// The caller as remembered: whom the limits count before anything is written.
    #[must_use]
    pub fn caller(&self) -> &Principal {
        &self.caller
    }

    /// Creates the contact if the key is still exactly the remembered caller, checked by
    /// the statement that writes. `Ok(None)`: it no longer is and nothing was written;
    /// take [`create_contact`].
    ///
    /// # Errors
    /// [`ContactError::DuplicateEmail`], [`ContactError::Invalid`] (an owner or company
    /// outside the tenant), storage.
    pub async fn run<S: ContactCreateByApiKey>(
        self,
        store: &S,
        key: &TokenHash,
    ) -> Result<Option<Contact>, ContactError> {
        Ok(store
            .create_contact_as(key, &self.caller, ContactId::new(), &self.draft)
            .await?)
    }
}

/// What a change does to the stored fields.
#[derive(Debug)]
pub enum ContactChange {
    /// `PUT`: the input is the whole new state; absent fields are cleared.
    Replace(ContactInput),
    /// `PATCH`: merge-patch over the current state.
    Patch(ContactPatch),
}

/// Replaces or patches a contact, honouring `If-Match`. A change that changes nothing
/// keeps the version (and so the ETag), as a no-op should.
///
/// # Errors
/// [`ContactError::NotFound`], [`ContactError::PreconditionFailed`],
/// [`ContactError::Invalid`], [`ContactError::DuplicateEmail`], permission and storage.
pub async fn update_contact<U: UnitOfWork + ContactRepository>(
    mut uow: U,
    principal: &Principal,
    id: ContactId,
    if_match: Option<&IfMatch>,
    change: ContactChange,
) -> Result<Contact, ContactError> {
    principal.require(Permission::ContactsWrite)?;
    let current = uow
        .get_contact(id, true)
        .await?
        .ok_or(ContactError::NotFound)?;
    if let Some(precondition) = if_match {
        precondition.check(&current)?;
    }
    let draft = match change {
        ContactChange::Replace(input) => ContactDraft::new(input),
        ContactChange::Patch(patch) => current.fields.patched(patch),
    }
    .map_err(ContactError::Invalid)?;
    if draft == current.fields {
        uow.commit().await?;
        return Ok(current);
    }
    let updated = uow.update_contact(id, &draft).await?;
    uow.commit().await?;
    Ok(updated)
}

/// Deletes a contact, honouring `If-Match`.
///
/// # Errors
/// [`ContactError::NotFound`], [`ContactError::PreconditionFailed`], permission, storage.
pub async fn delete_contact<U: UnitOfWork + ContactRepository>(
    mut uow: U,
    principal: &Principal,
    id: ContactId,
    if_match: Option<&IfMatch>,
) -> Result<(), ContactError> {
    principal.require(Permission::ContactsWrite)?;
    let current = uow
        .get_contact(id, true)
        .await?
        .ok_or(ContactError::NotFound)?;
    if let Some(precondition) = if_match {
        precondition.check(&current)?;
    }
    uow.delete_contact(id).await?;
    uow.commit().await?;
    Ok(())
}
