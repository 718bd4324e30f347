//! Pipelines and their stages: the repository and why a change can fail.

use std::future::Future;

use domain::pipeline::{Pipeline, PipelineDraft, PipelineId, StageDraft, StageId};
use thiserror::Error;

use crate::errors::RepoError;

/// Why a pipeline change could not be made.
#[derive(Debug, Error)]
pub enum PipelineWriteError {
    /// No such pipeline or stage in this tenant.
    #[error("not found")]
    NotFound,
    /// The stage or pipeline still holds leads.
    #[error("still in use by leads")]
    InUse,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Pipelines and their stages, of the unit of work's tenant.
pub trait PipelineRepository {
    /// Every pipeline, default first, with stages in order.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_pipelines(&mut self) -> impl Future<Output = Result<Vec<Pipeline>, RepoError>> + Send;

    /// One pipeline; `for_update` locks it (and so its stage list) until the end.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_pipeline(
        &mut self,
        id: PipelineId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Pipeline>, RepoError>> + Send;

    /// Stores a new (non-default) pipeline with its stages.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_pipeline(
        &mut self,
        id: PipelineId,
        draft: &PipelineDraft,
    ) -> impl Future<Output = Result<Pipeline, RepoError>> + Send;

    /// Renames a pipeline and bumps its version.
    ///
    /// # Errors
    /// [`PipelineWriteError::NotFound`], storage.
    fn rename_pipeline(
        &mut self,
        id: PipelineId,
        name: &str,
    ) -> impl Future<Output = Result<Pipeline, PipelineWriteError>> + Send;

    /// Deletes a pipeline with its stages.
    ///
    /// # Errors
    /// [`PipelineWriteError::NotFound`], [`PipelineWriteError::InUse`], storage.
    fn delete_pipeline(
        &mut self,
        id: PipelineId,
    ) -> impl Future<Output = Result<(), PipelineWriteError>> + Send;

    /// Replaces the pipeline's stages with `stages`: existing ids are updated and moved to
    /// their new position, new ids inserted, absent ones deleted. Bumps the version.
    ///
    /// # Errors
    /// [`PipelineWriteError::NotFound`], [`PipelineWriteError::InUse`] (a deleted stage
    /// holds leads), storage.
    fn set_stages(
        &mut self,
        id: PipelineId,
        stages: &[(StageId, StageDraft)],
    ) -> impl Future<Output = Result<Pipeline, PipelineWriteError>> + Send;
}
