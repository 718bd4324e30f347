//! Lead and activity use cases. A lead's stage changes in one place, [`change_stage`]:
//! `move`, `PUT` and `PATCH` all go through it, and each change records a note activity
//! on the lead's timeline.

use domain::FieldErrors;
use domain::activity::{
    Activity, ActivityDraft, ActivityId, ActivityInput, ActivityPage, ActivityPatch, ActivityQuery,
    ActivityType,
};
use domain::ids::{CompanyId, ContactId};
use domain::lead::{Lead, LeadDraft, LeadId, LeadInput, LeadPage, LeadPatch, LeadQuery};
use domain::pipeline::{Pipeline, StageId};
use domain::principal::{Forbidden, Permission, Principal};
use ports::{
    ActivityRepository, CompanyRepository, ContactRepository, CrmWriteError, LeadRepository,
    PipelineRepository, RepoError, UnitOfWork,
};
use thiserror::Error;

use crate::contacts::IfMatch;

/// Every way a lead or activity use case can fail.
#[derive(Debug, Error)]
pub enum CrmError {
    /// Role or scopes do not allow it.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The input breaks a rule or refers outside the tenant.
    #[error("invalid: {0}")]
    Invalid(FieldErrors),
    /// No such record in the caller's tenant.
    #[error("not found")]
    NotFound,
    /// `If-Match` named another version.
    #[error("changed: the current ETag is {current_etag}")]
    PreconditionFailed {
        /// Current ETag.
        current_etag: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

fn invalid(field: &str, message: &str) -> CrmError {
    let mut fields = FieldErrors::new();
    fields.add(field, message);
    CrmError::Invalid(fields)
}

impl From<CrmWriteError> for CrmError {
    fn from(error: CrmWriteError) -> Self {
        match error {
            CrmWriteError::UnknownReference("stageId") => invalid(
                "stageId",
                "must be a stage of the lead's pipeline in this tenant",
            ),
            CrmWriteError::UnknownReference(field) => {
                invalid(field, "must refer to a record of this tenant")
            }
            CrmWriteError::NotFound => Self::NotFound,
            CrmWriteError::Repo(repo) => Self::Repo(repo),
        }
    }
}

const READ: Permission = Permission::ContactsRead;
const WRITE: Permission = Permission::ContactsWrite;

fn precondition(if_match: Option<&IfMatch>, etag: String) -> Result<(), CrmError> {
    match if_match {
        Some(p) if !p.matches(&etag) => Err(CrmError::PreconditionFailed { current_etag: etag }),
        _ => Ok(()),
    }
}

/// Fills in the pipeline and stage: a stage names its pipeline; a pipeline alone means its
/// first stage; neither means the default pipeline's first stage.
async fn place<U: UnitOfWork + PipelineRepository>(
    uow: &mut U,
    input: &mut LeadInput,
) -> Result<(), CrmError> {
    let pipelines = uow.list_pipelines().await?;
    let holder = |stage: StageId| {
        pipelines
            .iter()
            .find(|p| p.stages.iter().any(|s| s.id == stage))
    };
    match (input.pipeline_id, input.stage_id) {
        (_, Some(stage)) => {
            let pipeline = holder(stage)
                .ok_or_else(|| invalid("stageId", "must be a stage of this tenant"))?;
            if input.pipeline_id.is_some_and(|p| p != pipeline.id) {
                return Err(invalid("stageId", "must be a stage of the lead's pipeline"));
            }
            input.pipeline_id = Some(pipeline.id);
        }
        (Some(pipeline), None) => {
            let first = pipelines
                .iter()
                .find(|p| p.id == pipeline)
                .and_then(|p| p.stages.first())
                .ok_or_else(|| invalid("pipelineId", "must be a pipeline of this tenant"))?;
            input.stage_id = Some(first.id);
        }
        (None, None) => {
            let default: &Pipeline = pipelines
                .iter()
                .find(|p| p.is_default)
                .ok_or_else(|| RepoError::Unexpected("tenant without a default pipeline".into()))?;
            input.pipeline_id = Some(default.id);
            input.stage_id = default.stages.first().map(|s| s.id);
        }
    }
    Ok(())
}

fn stage_name(pipelines: &[Pipeline], stage: StageId) -> String {
    pipelines
        .iter()
        .flat_map(|p| p.stages.iter())
        .find(|s| s.id == stage)
        .map_or_else(|| "an unknown stage".to_owned(), |s| s.name.clone())
}

/// Writes a lead's new state; when its stage changed, records the move as a note on the
/// lead's timeline in the same unit of work.
async fn change_stage<U: UnitOfWork + PipelineRepository + LeadRepository + ActivityRepository>(
    uow: &mut U,
    current: &Lead,
    draft: &LeadDraft,
) -> Result<Lead, CrmError> {
    let updated = uow.update_lead(current.id, draft).await?;
    if current.fields.stage_id != draft.stage_id {
        let pipelines = uow.list_pipelines().await?;
        let subject = format!(
            "Moved from {} to {}",
            stage_name(&pipelines, current.fields.stage_id),
            stage_name(&pipelines, draft.stage_id)
        );
        let note = ActivityDraft {
            kind: ActivityType::Note,
            subject: subject
                .chars()
                .take(domain::activity::SUBJECT_MAX)
                .collect(),
            body: None,
            due_at: None,
            completed_at: None,
            contact_id: updated.fields.contact_id,
            company_id: updated.fields.company_id,
            lead_id: Some(updated.id),
        };
        uow.insert_activity(ActivityId::new(), &note).await?;
    }
    Ok(updated)
}

/// Moves every lead of `from` to `to` (stages of `pipeline`), one by one through the
/// stage-change rule, so each move is noted on the lead's timeline.
pub(crate) async fn move_all<
    U: UnitOfWork + PipelineRepository + LeadRepository + ActivityRepository,
>(
    uow: &mut U,
    pipeline: domain::pipeline::PipelineId,
    from: StageId,
    to: StageId,
) -> Result<usize, CrmError> {
    let mut moved = 0;
    loop {
        let query = LeadQuery {
            limit: domain::list::Limit::new(Some(100)).unwrap_or_default(),
            pipeline_id: Some(pipeline),
            stage_id: Some(from),
            ..LeadQuery::default()
        };
        let page = uow.list_leads(&query).await?;
        if page.items.is_empty() {
            return Ok(moved);
        }
        for lead in page.items {
            let Some(current) = uow.get_lead(lead.id, true).await? else {
                continue;
            };
            let mut draft = current.fields.clone();
            draft.stage_id = to;
            change_stage(uow, &current, &draft).await?;
            moved += 1;
        }
    }
}

/// Lists leads.
///
/// # Errors
/// Permission, storage.
pub async fn list_leads<U: UnitOfWork + LeadRepository>(
    mut uow: U,
    principal: &Principal,
    query: LeadQuery,
) -> Result<LeadPage, CrmError> {
    principal.require(READ)?;
    let page = uow.list_leads(&query).await?;
    uow.commit().await?;
    Ok(page)
}

/// One lead.
///
/// # Errors
/// [`CrmError::NotFound`], permission, storage.
pub async fn get_lead<U: UnitOfWork + LeadRepository>(
    mut uow: U,
    principal: &Principal,
    id: LeadId,
) -> Result<Lead, CrmError> {
    principal.require(READ)?;
    let lead = uow.get_lead(id, false).await?.ok_or(CrmError::NotFound)?;
    uow.commit().await?;
    Ok(lead)
}

/// Creates a lead (in the default pipeline's first stage unless told otherwise).
///
/// # Errors
/// [`CrmError::Invalid`] (also for references outside the tenant), permission, storage.
pub async fn create_lead<U: UnitOfWork + PipelineRepository + LeadRepository>(
    mut uow: U,
    principal: &Principal,
    mut input: LeadInput,
) -> Result<Lead, CrmError> {
    principal.require(WRITE)?;
    place(&mut uow, &mut input).await?;
    let draft = LeadDraft::new(input).map_err(CrmError::Invalid)?;
    let lead = uow.insert_lead(LeadId::new(), &draft).await?;
    uow.commit().await?;
    Ok(lead)
}

/// What a lead change does.
#[derive(Debug)]
pub enum LeadChange {
    /// `PUT`: the whole new state.
    Replace(LeadInput),
    /// `PATCH`: merge-patch.
    Patch(LeadPatch),
    /// `move`: to this stage (of any pipeline of the tenant; the pipeline follows).
    Move(StageId),
}

/// Replaces, patches or moves a lead, honouring `If-Match`.
///
/// # Errors
/// As create, plus [`CrmError::NotFound`], [`CrmError::PreconditionFailed`].
pub async fn update_lead<
    U: UnitOfWork + PipelineRepository + LeadRepository + ActivityRepository,
>(
    mut uow: U,
    principal: &Principal,
    id: LeadId,
    if_match: Option<&IfMatch>,
    change: LeadChange,
) -> Result<Lead, CrmError> {
    principal.require(WRITE)?;
    let current = uow.get_lead(id, true).await?.ok_or(CrmError::NotFound)?;
    precondition(if_match, current.etag())?;
    let mut input = match change {
        LeadChange::Replace(input) => input,
        LeadChange::Patch(patch) => {
            let moves = patch.stage_id.is_some() || patch.pipeline_id.is_some();
            let mut input = current.fields.patched_input(patch);
            if moves
                && input.pipeline_id != Some(current.fields.pipeline_id)
                && input.stage_id == Some(current.fields.stage_id)
            {
                input.stage_id = None; // a new pipeline alone means its first stage
            }
            input
        }
        LeadChange::Move(stage) => {
            let mut input = current.fields.to_input();
            input.pipeline_id = None;
            input.stage_id = Some(stage);
            input
        }
    };
    place(&mut uow, &mut input).await?;
    let draft = LeadDraft::new(input).map_err(CrmError::Invalid)?;
    if draft == current.fields {
        uow.commit().await?;
        return Ok(current);
    }
    let updated = change_stage(&mut uow, &current, &draft).await?;
    uow.commit().await?;
    Ok(updated)
}

/// Deletes a lead and its activities.
///
/// # Errors
/// [`CrmError::NotFound`], precondition, permission, storage.
pub async fn delete_lead<U: UnitOfWork + LeadRepository>(
    mut uow: U,
    principal: &Principal,
    id: LeadId,
    if_match: Option<&IfMatch>,
) -> Result<(), CrmError> {
    principal.require(WRITE)?;
    let current = uow.get_lead(id, true).await?.ok_or(CrmError::NotFound)?;
    precondition(if_match, current.etag())?;
    uow.delete_lead(id).await?;
    uow.commit().await?;
    Ok(())
}

/// Whose timeline.
#[derive(Clone, Copy, Debug)]
pub enum TimelineOf {
    /// A contact's.
    Contact(ContactId),
    /// A company's.
    Company(CompanyId),
    /// A lead's.
    Lead(LeadId),
}

/// Lists activities; with `of`, the timeline of that record (404 when it is not in the tenant).
///
/// # Errors
/// [`CrmError::NotFound`], permission, storage.
pub async fn list_activities<
    U: UnitOfWork + ContactRepository + CompanyRepository + LeadRepository + ActivityRepository,
>(
    mut uow: U,
    principal: &Principal,
    of: Option<TimelineOf>,
    mut query: ActivityQuery,
) -> Result<ActivityPage, CrmError> {
    principal.require(READ)?;
    match of {
        None => {}
        Some(TimelineOf::Contact(id)) => {
            uow.get_contact(id, false)
                .await?
                .ok_or(CrmError::NotFound)?;
            query.contact_id = Some(id);
        }
        Some(TimelineOf::Company(id)) => {
            uow.get_company(id, false)
                .await?
                .ok_or(CrmError::NotFound)?;
            query.company_id = Some(id);
        }
        Some(TimelineOf::Lead(id)) => {
            uow.get_lead(id, false).await?.ok_or(CrmError::NotFound)?;
            query.lead_id = Some(id);
        }
    }
    let page = uow.list_activities(&query).await?;
    uow.commit().await?;
    Ok(page)
}

/// One activity.
///
/// # Errors
/// [`CrmError::NotFound`], permission, storage.
pub async fn get_activity<U: UnitOfWork + ActivityRepository>(
    mut uow: U,
    principal: &Principal,
    id: ActivityId,
) -> Result<Activity, CrmError> {
    principal.require(READ)?;
    let activity = uow
        .get_activity(id, false)
        .await?
        .ok_or(CrmError::NotFound)?;
    uow.commit().await?;
    Ok(activity)
}

/// Creates an activity.
///
/// # Errors
/// [`CrmError::Invalid`], permission, storage.
pub async fn create_activity<U: UnitOfWork + ActivityRepository>(
    mut uow: U,
    principal: &Principal,
    input: ActivityInput,
) -> Result<Activity, CrmError> {
    principal.require(WRITE)?;
    let draft = ActivityDraft::new(input).map_err(CrmError::Invalid)?;
    let activity = uow.insert_activity(ActivityId::new(), &draft).await?;
    uow.commit().await?;
    Ok(activity)
}

/// How an activity changes.
#[derive(Clone, Debug)]
pub enum ActivityChange {
    /// `PUT`: the whole activity.
    Replace(ActivityInput),
    /// `PATCH`: merge-patch (to complete a task: `completedAt`).
    Patch(ActivityPatch),
}

/// Replaces or patches an activity, honouring `If-Match`.
///
/// # Errors
/// As create, plus [`CrmError::NotFound`], [`CrmError::PreconditionFailed`].
pub async fn update_activity<U: UnitOfWork + ActivityRepository>(
    mut uow: U,
    principal: &Principal,
    id: ActivityId,
    if_match: Option<&IfMatch>,
    change: ActivityChange,
) -> Result<Activity, CrmError> {
    principal.require(WRITE)?;
    let current = uow
        .get_activity(id, true)
        .await?
        .ok_or(CrmError::NotFound)?;
    precondition(if_match, current.etag())?;
    let input = match change {
        ActivityChange::Replace(input) => input,
        ActivityChange::Patch(patch) => current.fields.patched_input(patch),
    };
    let draft = ActivityDraft::new(input).map_err(CrmError::Invalid)?;
    if draft == current.fields {
        uow.commit().await?;
        return Ok(current);
    }
    let updated = uow.update_activity(id, &draft).await?;
    uow.commit().await?;
    Ok(updated)
}

/// Deletes an activity.
///
/// # Errors
/// [`CrmError::NotFound`], precondition, permission, storage.
pub async fn delete_activity<U: UnitOfWork + ActivityRepository>(
    mut uow: U,
    principal: &Principal,
    id: ActivityId,
    if_match: Option<&IfMatch>,
) -> Result<(), CrmError> {
    principal.require(WRITE)?;
    let current = uow
        .get_activity(id, true)
        .await?
        .ok_or(CrmError::NotFound)?;
    precondition(if_match, current.etag())?;
    uow.delete_activity(id).await?;
    uow.commit().await?;
    Ok(())
}
