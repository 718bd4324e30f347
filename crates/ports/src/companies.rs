//! Companies: the repository of the unit of work's tenant and why a write can fail.

use std::future::Future;

use domain::company::{Company, CompanyDraft, CompanyPage, CompanyQuery};
use domain::ids::CompanyId;
use thiserror::Error;

use crate::errors::RepoError;

/// Why a company could not be written.
#[derive(Debug, Error)]
pub enum CompanyWriteError {
    /// Another company of the tenant has this domain.
    #[error("a company with this domain already exists")]
    DuplicateDomain,
    /// The company does not exist in this tenant.
    #[error("company not found")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Companies of the unit of work's tenant.
pub trait CompanyRepository {
    /// One page of companies.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_companies(
        &mut self,
        query: &CompanyQuery,
    ) -> impl Future<Output = Result<CompanyPage, RepoError>> + Send;

    /// One company; `for_update` locks it until the unit of work ends.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_company(
        &mut self,
        id: CompanyId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Company>, RepoError>> + Send;

    /// The company with this (normalised) domain, locked for update.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn find_company_by_domain(
        &mut self,
        domain: &domain::company::Domain,
    ) -> impl Future<Output = Result<Option<Company>, RepoError>> + Send;

    /// Stores a new company at version 1.
    ///
    /// # Errors
    /// [`CompanyWriteError::DuplicateDomain`], or storage.
    fn insert_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> impl Future<Output = Result<Company, CompanyWriteError>> + Send;

    /// Replaces a company's fields and bumps its version.
    ///
    /// # Errors
    /// As insert, plus [`CompanyWriteError::NotFound`].
    fn update_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> impl Future<Output = Result<Company, CompanyWriteError>> + Send;

    /// Deletes a company; its contacts keep existing without a company.
    ///
    /// # Errors
    /// [`CompanyWriteError::NotFound`], or storage.
    fn delete_company(
        &mut self,
        id: CompanyId,
    ) -> impl Future<Output = Result<(), CompanyWriteError>> + Send;
}
