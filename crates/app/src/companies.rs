//! Company use cases: list, get, create, replace, patch, delete, and a company's contacts.

use domain::FieldErrors;
use domain::company::{
    Company, CompanyDraft, CompanyInput, CompanyPage, CompanyPatch, CompanyQuery,
};
use domain::contact::{ContactPage, ContactQuery};
use domain::ids::CompanyId;
use domain::principal::{Forbidden, Permission, Principal};
use ports::{CompanyRepository, CompanyWriteError, ContactRepository, RepoError, UnitOfWork};
use thiserror::Error;

use crate::contacts::IfMatch;

/// Every way a company use case can fail.
#[derive(Debug, Error)]
pub enum CompanyError {
    /// Role or scopes do not allow it.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The input breaks the company rules.
    #[error("invalid company: {0}")]
    Invalid(FieldErrors),
    /// No such company in the caller's tenant.
    #[error("company not found")]
    NotFound,
    /// `If-Match` named another version.
    #[error("the company has changed: its current ETag is {current_etag}")]
    PreconditionFailed {
        /// The current ETag.
        current_etag: String,
    },
    /// Another company of the tenant has this domain.
    #[error("a company with this domain already exists")]
    DuplicateDomain,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<CompanyWriteError> for CompanyError {
    fn from(error: CompanyWriteError) -> Self {
        match error {
            CompanyWriteError::DuplicateDomain => Self::DuplicateDomain,
            CompanyWriteError::NotFound => Self::NotFound,
            CompanyWriteError::Repo(repo) => Self::Repo(repo),
        }
    }
}

fn check(precondition: Option<&IfMatch>, company: &Company) -> Result<(), CompanyError> {
    match precondition {
        Some(precondition) if !precondition.matches(&company.etag()) => {
            Err(CompanyError::PreconditionFailed {
                current_etag: company.etag(),
            })
        }
        _ => Ok(()),
    }
}

/// Companies uses the contact permissions: they are the same CRM data to roles and scopes.
const READ: Permission = Permission::ContactsRead;
const WRITE: Permission = Permission::ContactsWrite;

/// Lists companies.
///
/// # Errors
/// Permission, storage.
pub async fn list_companies<U: UnitOfWork + CompanyRepository>(
    mut uow: U,
    principal: &Principal,
    query: CompanyQuery,
) -> Result<CompanyPage, CompanyError> {
    principal.require(READ)?;
    let page = uow.list_companies(&query).await?;
    uow.commit().await?;
    Ok(page)
}

/// One company.
///
/// # Errors
/// [`CompanyError::NotFound`], permission, storage.
pub async fn get_company<U: UnitOfWork + CompanyRepository>(
    mut uow: U,
    principal: &Principal,
    id: CompanyId,
) -> Result<Company, CompanyError> {
    principal.require(READ)?;
    let company = uow
        .get_company(id, false)
        .await?
        .ok_or(CompanyError::NotFound)?;
    uow.commit().await?;
    Ok(company)
}

/// A company's contacts (404 when the company is not in the tenant).
///
/// # Errors
/// [`CompanyError::NotFound`], permission, storage.
pub async fn company_contacts<U: UnitOfWork + ContactRepository + CompanyRepository>(
    mut uow: U,
    principal: &Principal,
    id: CompanyId,
    mut query: ContactQuery,
) -> Result<ContactPage, CompanyError> {
    principal.require(READ)?;
    uow.get_company(id, false)
        .await?
        .ok_or(CompanyError::NotFound)?;
    query.company_id = Some(id);
    let page = uow.list_contacts(&query).await?;
    uow.commit().await?;
    Ok(page)
}

/// Creates a company.
///
/// # Errors
/// [`CompanyError::Invalid`], [`CompanyError::DuplicateDomain`], permission, storage.
pub async fn create_company<U: UnitOfWork + CompanyRepository>(
    mut uow: U,
    principal: &Principal,
    input: CompanyInput,
) -> Result<Company, CompanyError> {
    principal.require(WRITE)?;
    let draft = CompanyDraft::new(input).map_err(CompanyError::Invalid)?;
    let company = uow.insert_company(CompanyId::new(), &draft).await?;
    uow.commit().await?;
    Ok(company)
}

/// What a change does to a company.
#[derive(Debug)]
pub enum CompanyChange {
    /// `PUT`: the whole new state.
    Replace(CompanyInput),
    /// `PATCH`: merge-patch.
    Patch(CompanyPatch),
}

/// Replaces or patches a company, honouring `If-Match`.
///
/// # Errors
/// As the other writes, plus [`CompanyError::PreconditionFailed`].
pub async fn update_company<U: UnitOfWork + CompanyRepository>(
    mut uow: U,
    principal: &Principal,
    id: CompanyId,
    if_match: Option<&IfMatch>,
    change: CompanyChange,
) -> Result<Company, CompanyError> {
    principal.require(WRITE)?;
    let current = uow
        .get_company(id, true)
        .await?
        .ok_or(CompanyError::NotFound)?;
    check(if_match, &current)?;
    let draft = match change {
        CompanyChange::Replace(input) => CompanyDraft::new(input),
        CompanyChange::Patch(patch) => current.fields.patched(patch),
    }
    .map_err(CompanyError::Invalid)?;
    if draft == current.fields {
        uow.commit().await?;
        return Ok(current);
    }
    let updated = uow.update_company(id, &draft).await?;
    uow.commit().await?;
    Ok(updated)
}

/// Deletes a company; its contacts stay, without a company (the database sets it null).
///
/// # Errors
/// [`CompanyError::NotFound`], [`CompanyError::PreconditionFailed`], permission, storage.
pub async fn delete_company<U: UnitOfWork + CompanyRepository>(
    mut uow: U,
    principal: &Principal,
    id: CompanyId,
    if_match: Option<&IfMatch>,
) -> Result<(), CompanyError> {
    principal.require(WRITE)?;
    let current = uow
        .get_company(id, true)
        .await?
        .ok_or(CompanyError::NotFound)?;
    check(if_match, &current)?;
    uow.delete_company(id).await?;
    uow.commit().await?;
    Ok(())
}
