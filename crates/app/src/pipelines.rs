//! Pipeline use cases: list, get, create (with stages), rename, delete; add, change,
//! delete and reorder stages. Stage changes go through one `set_stages` so a pipeline's
//! stage list is always rewritten whole, under the pipeline's lock.

use domain::FieldErrors;
use domain::pipeline::{
    Pipeline, PipelineDraft, PipelineId, StageDraft, StageId, StageInput, StageKind, check_reorder,
};
use domain::principal::{Forbidden, Permission, Principal};
use domain::text::single_line;
use ports::{
    ActivityRepository, LeadRepository, PipelineRepository, PipelineWriteError, RepoError,
    UnitOfWork,
};
use thiserror::Error;

use crate::contacts::IfMatch;

/// Every way a pipeline use case can fail.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// Role or scopes do not allow it.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The input breaks a rule.
    #[error("invalid pipeline: {0}")]
    Invalid(FieldErrors),
    /// No such pipeline or stage in the caller's tenant.
    #[error("not found")]
    NotFound,
    /// `If-Match` named another version.
    #[error("the pipeline has changed: its current ETag is {current_etag}")]
    PreconditionFailed {
        /// Current ETag.
        current_etag: String,
    },
    /// The default pipeline cannot be deleted.
    #[error("the default pipeline cannot be deleted")]
    DefaultPipeline,
    /// A pipeline keeps at least one stage.
    #[error("a pipeline keeps at least one stage")]
    LastStage,
    /// Leads are still in the stage or pipeline.
    #[error("leads are still in this stage or pipeline")]
    InUse,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<PipelineWriteError> for PipelineError {
    fn from(error: PipelineWriteError) -> Self {
        match error {
            PipelineWriteError::NotFound => Self::NotFound,
            PipelineWriteError::InUse => Self::InUse,
            PipelineWriteError::Repo(repo) => Self::Repo(repo),
        }
    }
}

/// Pipelines are CRM data: readers read them, writers (members and up) change them.
const READ: Permission = Permission::ContactsRead;
const WRITE: Permission = Permission::ContactsWrite;

async fn locked<U: UnitOfWork + PipelineRepository>(
    uow: &mut U,
    id: PipelineId,
    if_match: Option<&IfMatch>,
) -> Result<Pipeline, PipelineError> {
    let pipeline = uow
        .get_pipeline(id, true)
        .await?
        .ok_or(PipelineError::NotFound)?;
    if let Some(precondition) = if_match
        && !precondition.matches(&pipeline.etag())
    {
        return Err(PipelineError::PreconditionFailed {
            current_etag: pipeline.etag(),
        });
    }
    Ok(pipeline)
}

fn drafts(pipeline: &Pipeline) -> Vec<(StageId, StageDraft)> {
    pipeline
        .stages
        .iter()
        .map(|s| {
            (
                s.id,
                StageDraft {
                    name: s.name.clone(),
                    probability: s.probability,
                    kind: s.kind,
                },
            )
        })
        .collect()
}

/// Every pipeline of the tenant, the default first.
///
/// # Errors
/// Permission, storage.
pub async fn list_pipelines<U: UnitOfWork + PipelineRepository>(
    mut uow: U,
    principal: &Principal,
) -> Result<Vec<Pipeline>, PipelineError> {
    principal.require(READ)?;
    let pipelines = uow.list_pipelines().await?;
    uow.commit().await?;
    Ok(pipelines)
}

/// One pipeline.
///
/// # Errors
/// [`PipelineError::NotFound`], permission, storage.
pub async fn get_pipeline<U: UnitOfWork + PipelineRepository>(
    mut uow: U,
    principal: &Principal,
    id: PipelineId,
) -> Result<Pipeline, PipelineError> {
    principal.require(READ)?;
    let pipeline = uow
        .get_pipeline(id, false)
        .await?
        .ok_or(PipelineError::NotFound)?;
    uow.commit().await?;
    Ok(pipeline)
}

/// Creates a pipeline with its stages.
///
/// # Errors
/// [`PipelineError::Invalid`], permission, storage.
pub async fn create_pipeline<U: UnitOfWork + PipelineRepository>(
    mut uow: U,
    principal: &Principal,
    name: &str,
    stages: Vec<StageInput>,
) -> Result<Pipeline, PipelineError> {
    principal.require(WRITE)?;
    let draft = PipelineDraft::new(name, stages).map_err(PipelineError::Invalid)?;
    let pipeline = uow.insert_pipeline(PipelineId::new(), &draft).await?;
    uow.commit().await?;
    Ok(pipeline)
}

/// Renames a pipeline.
///
/// # Errors
/// [`PipelineError::NotFound`], [`PipelineError::PreconditionFailed`], invalid name.
pub async fn rename_pipeline<U: UnitOfWork + PipelineRepository>(
    mut uow: U,
    principal: &Principal,
    id: PipelineId,
    if_match: Option<&IfMatch>,
    name: &str,
) -> Result<Pipeline, PipelineError> {
    principal.require(WRITE)?;
    let name = single_line(name, domain::pipeline::PIPELINE_NAME_MAX).map_err(|e| {
        let mut fields = FieldErrors::new();
        fields.add("name", e.to_string());
        PipelineError::Invalid(fields)
    })?;
    let current = locked(&mut uow, id, if_match).await?;
    if current.name == name {
        uow.commit().await?;
        return Ok(current);
    }
    let renamed = uow.rename_pipeline(id, &name).await?;
    uow.commit().await?;
    Ok(renamed)
}

/// Deletes a pipeline that is not the default one (and holds no leads).
///
/// # Errors
/// [`PipelineError::DefaultPipeline`], [`PipelineError::InUse`], not found, precondition.
pub async fn delete_pipeline<U: UnitOfWork + PipelineRepository>(
    mut uow: U,
    principal: &Principal,
    id: PipelineId,
    if_match: Option<&IfMatch>,
) -> Result<(), PipelineError> {
    principal.require(WRITE)?;
    let current = locked(&mut uow, id, if_match).await?;
    if current.is_default {
        return Err(PipelineError::DefaultPipeline);
    }
    uow.delete_pipeline(id).await?;
    uow.commit().await?;
    Ok(())
}

/// What to do to the stage list.
#[derive(Debug)]
pub enum StageChange {
    /// Add a stage at `position` (end when absent or past the end).
    Add {
        /// The stage.
        stage: StageInput,
        /// Where, from 0.
        position: Option<usize>,
    },
    /// Change a stage's name, probability or kind (absent fields kept).
    Update {
        /// Which stage.
        stage: StageId,
        /// New name.
        name: Option<String>,
        /// New probability.
        probability: Option<i64>,
        /// New kind.
        kind: Option<StageKind>,
    },
    /// Delete a stage; its leads move to `move_to` (a stage of the same pipeline) first.
    /// Without `move_to`, a stage that holds leads is refused.
    Delete {
        /// The stage to delete.
        stage: StageId,
        /// Where its leads go.
        move_to: Option<StageId>,
    },
    /// Put the stages in this order (every stage exactly once).
    Reorder(Vec<StageId>),
}

/// Applies a change to a pipeline's stages, honouring `If-Match` on the pipeline.
///
/// # Errors
/// [`PipelineError::NotFound`] (pipeline or stage), [`PipelineError::Invalid`],
/// [`PipelineError::LastStage`], [`PipelineError::InUse`], precondition, permission.
pub async fn change_stages<
    U: UnitOfWork + PipelineRepository + LeadRepository + ActivityRepository,
>(
    mut uow: U,
    principal: &Principal,
    id: PipelineId,
    if_match: Option<&IfMatch>,
    change: StageChange,
) -> Result<Pipeline, PipelineError> {
    principal.require(WRITE)?;
    let current = locked(&mut uow, id, if_match).await?;
    let mut stages = drafts(&current);
    match change {
        StageChange::Add { stage, position } => {
            if stages.len() >= domain::pipeline::STAGES_MAX {
                let mut fields = FieldErrors::new();
                fields.add("stages", "a pipeline holds at most 50 stages");
                return Err(PipelineError::Invalid(fields));
            }
            let draft = StageDraft::new(stage, "").map_err(PipelineError::Invalid)?;
            let at = position.unwrap_or(stages.len()).min(stages.len());
            stages.insert(at, (StageId::new(), draft));
        }
        StageChange::Update {
            stage,
            name,
            probability,
            kind,
        } => {
            let (_, draft) = stages
                .iter_mut()
                .find(|(s, _)| *s == stage)
                .ok_or(PipelineError::NotFound)?;
            let input = StageInput {
                name: name.unwrap_or_else(|| draft.name.clone()),
                probability: Some(probability.unwrap_or(i64::from(draft.probability))),
                kind: Some(kind.unwrap_or(draft.kind)),
            };
            *draft = StageDraft::new(input, "").map_err(PipelineError::Invalid)?;
        }
        StageChange::Delete { stage, move_to } => {
            if let Some(target) = move_to {
                if target == stage || !current.stages.iter().any(|s| s.id == target) {
                    let mut fields = FieldErrors::new();
                    fields.add("moveTo", "must be another stage of the same pipeline");
                    return Err(PipelineError::Invalid(fields));
                }
                crate::leads::move_all(&mut uow, id, stage, target)
                    .await
                    .map_err(|e| match e {
                        crate::leads::CrmError::Repo(repo) => PipelineError::Repo(repo),
                        other => PipelineError::Repo(RepoError::Unexpected(format!(
                            "moving leads: {other}"
                        ))),
                    })?;
            }
            let before = stages.len();
            stages.retain(|(s, _)| *s != stage);
            if stages.len() == before {
                return Err(PipelineError::NotFound);
            }
            if stages.is_empty() {
                return Err(PipelineError::LastStage);
            }
        }
        StageChange::Reorder(order) => {
            check_reorder(&current.stages, &order).map_err(PipelineError::Invalid)?;
            stages.sort_by_key(|(s, _)| order.iter().position(|o| o == s));
        }
    }
    let updated = uow.set_stages(id, &stages).await?;
    uow.commit().await?;
    Ok(updated)
}
