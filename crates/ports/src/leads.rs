//! Leads: the repository of the unit of work's tenant (write errors in [`crate::CrmWriteError`]).

use std::future::Future;

use domain::lead::{Lead, LeadDraft, LeadId, LeadPage, LeadQuery};

use crate::errors::{CrmWriteError, RepoError};

/// Leads of the unit of work's tenant.
pub trait LeadRepository {
    /// One page of leads.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_leads(
        &mut self,
        query: &LeadQuery,
    ) -> impl Future<Output = Result<LeadPage, RepoError>> + Send;

    /// One lead; `for_update` locks it.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_lead(
        &mut self,
        id: LeadId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Lead>, RepoError>> + Send;

    /// Stores a new lead (its status follows its stage).
    ///
    /// # Errors
    /// [`CrmWriteError::UnknownReference`] (`stageId` for a stage outside the pipeline), storage.
    fn insert_lead(
        &mut self,
        id: LeadId,
        draft: &LeadDraft,
    ) -> impl Future<Output = Result<Lead, CrmWriteError>> + Send;

    /// Replaces a lead's fields and bumps its version.
    ///
    /// # Errors
    /// As insert, plus [`CrmWriteError::NotFound`].
    fn update_lead(
        &mut self,
        id: LeadId,
        draft: &LeadDraft,
    ) -> impl Future<Output = Result<Lead, CrmWriteError>> + Send;

    /// Deletes a lead and the activities linked to it.
    ///
    /// # Errors
    /// [`CrmWriteError::NotFound`], storage.
    fn delete_lead(&mut self, id: LeadId)
    -> impl Future<Output = Result<(), CrmWriteError>> + Send;
}
