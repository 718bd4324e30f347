//! `/v1/pipelines`: pipelines with ordered stages; stages added, changed, deleted and
//! reordered under `/v1/pipelines/{id}/stages…`. Every change answers the whole pipeline.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::pipelines::{
    StageChange, change_stages, create_pipeline, delete_pipeline, get_pipeline, list_pipelines,
    rename_pipeline,
};
use domain::pipeline::{Pipeline, PipelineId, StageId, StageInput, StageKind};
use garde::Validate;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use super::common::{DeletedResponse, check_body, if_match, versioned_response};
use crate::Store;
use crate::auth::Authenticated;
use crate::envelope::respond;
use crate::error::ApiError;

/// What reaching a stage means for a lead.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StageKindDto {
    /// Still in play.
    Open,
    /// Closed, won.
    Won,
    /// Closed, lost.
    Lost,
}

impl From<StageKindDto> for StageKind {
    fn from(kind: StageKindDto) -> Self {
        match kind {
            StageKindDto::Open => Self::Open,
            StageKindDto::Won => Self::Won,
            StageKindDto::Lost => Self::Lost,
        }
    }
}

/// A stage as shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageResponse {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Position, from 0.
    pub position: i32,
    /// Win probability in percent.
    pub probability: i32,
    /// `open`, `won` or `lost`.
    pub kind: String,
}

/// A pipeline as shown, with its stages in order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineResponse {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Whether this is the tenant's default pipeline.
    pub is_default: bool,
    /// Stages, by position.
    pub stages: Vec<StageResponse>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change (stages included).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Version; the ETag is this number, quoted.
    pub version: i64,
}

impl From<&Pipeline> for PipelineResponse {
    fn from(p: &Pipeline) -> Self {
        Self {
            id: p.id.as_uuid(),
            name: p.name.clone(),
            is_default: p.is_default,
            stages: p
                .stages
                .iter()
                .map(|s| StageResponse {
                    id: s.id.as_uuid(),
                    name: s.name.clone(),
                    position: s.position,
                    probability: s.probability,
                    kind: s.kind.as_str().to_owned(),
                })
                .collect(),
            created_at: p.created_at,
            updated_at: p.updated_at,
            version: p.version,
        }
    }
}

/// A stage to create.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    /// Name.
    #[garde(length(chars, min = 1, max = 100))]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Demo scheduled"
    )]
    pub name: String,
    /// Win probability, 0-100 (default from the kind: open 50, won 100, lost 0).
    #[garde(skip)]
    #[serde(default, deserialize_with = "crate::validation::optional_integer")]
    #[schema(minimum = 0, maximum = 100)]
    pub probability: Option<i64>,
    /// Kind (default open).
    #[garde(skip)]
    pub kind: Option<StageKindDto>,
}

impl From<StageBody> for StageInput {
    fn from(body: StageBody) -> Self {
        Self {
            name: body.name,
            probability: body.probability,
            kind: body.kind.map(StageKind::from),
        }
    }
}

/// `POST /v1/pipelines`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePipelineBody {
    /// Name.
    #[garde(length(chars, min = 1, max = 200))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Partnerships"
    )]
    pub name: String,
    /// Stages, in order (1 to 50).
    #[garde(length(min = 1, max = 50), dive)]
    #[schema(min_items = 1, max_items = 50)]
    pub stages: Vec<StageBody>,
}

/// `PATCH /v1/pipelines/{id}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenamePipelineBody {
    /// New name.
    #[garde(length(chars, min = 1, max = 200))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
}

/// `POST /v1/pipelines/{id}/stages`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddStageBody {
    /// Name.
    #[garde(length(chars, min = 1, max = 100))]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// Win probability, 0-100.
    #[garde(skip)]
    #[serde(default, deserialize_with = "crate::validation::optional_integer")]
    #[schema(minimum = 0, maximum = 100)]
    pub probability: Option<i64>,
    /// Kind (default open).
    #[garde(skip)]
    pub kind: Option<StageKindDto>,
    /// Where to insert it, from 0 (default: at the end).
    #[garde(range(min = 0, max = 49))]
    #[serde(default, deserialize_with = "crate::validation::optional_integer")]
    #[schema(minimum = 0, maximum = 49)]
    pub position: Option<i64>,
}

/// `PATCH /v1/pipelines/{id}/stages/{stageId}`: fields left out are kept.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStageBody {
    /// New name.
    #[garde(inner(length(chars, min = 1, max = 100)))]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: Option<String>,
    /// New probability, 0-100.
    #[garde(skip)]
    #[serde(default, deserialize_with = "crate::validation::optional_integer")]
    #[schema(minimum = 0, maximum = 100)]
    pub probability: Option<i64>,
    /// New kind.
    #[garde(skip)]
    pub kind: Option<StageKindDto>,
}

/// `DELETE /v1/pipelines/{id}/stages/{stageId}` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteStageParams {
    /// Another stage of the pipeline to move the stage's leads to; without it, a stage that
    /// holds leads is not deleted (409).
    pub move_to: Option<Uuid>,
}

/// `POST /v1/pipelines/{id}/stages/reorder`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReorderBody {
    /// Every stage id of the pipeline, once each, in the new order.
    #[schema(min_items = 1, max_items = 50)]
    pub stage_ids: Vec<Uuid>,
}

fn pipeline_response(status: StatusCode, pipeline: &Pipeline) -> HttpResponse {
    versioned_response(
        status,
        &pipeline.etag(),
        "/v1/pipelines",
        pipeline.id,
        PipelineResponse::from(pipeline),
    )
}

/// List pipelines, the default first.
#[utoipa::path(get, path = "/v1/pipelines", params(super::SearchParams), tag = "pipelines", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every pipeline", body = crate::envelope::Success<Vec<PipelineResponse>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn list<S: Store>(
    auth: Authenticated<S>,
    params: web::Query<super::SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let term = params.into_inner().term()?;
    let pipelines = list_pipelines(auth.uow, &auth.principal).await?;
    let data: Vec<PipelineResponse> = pipelines
        .iter()
        .filter(|p| {
            let stages = p.stages.iter().map(|s| s.name.as_str());
            super::found(
                term.as_deref(),
                std::iter::once(p.name.as_str()).chain(stages),
            )
        })
        .map(PipelineResponse::from)
        .collect();
    Ok(crate::envelope::respond_all(data))
}

/// Create a pipeline with its stages.
#[utoipa::path(post, path = "/v1/pipelines", tag = "pipelines", request_body = CreatePipelineBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = crate::envelope::Success<PipelineResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn create<S: Store>(
    body: web::Json<CreatePipelineBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let stages = body.stages.into_iter().map(StageInput::from).collect();
    let pipeline = create_pipeline(auth.uow, &auth.principal, &body.name, stages).await?;
    Ok(pipeline_response(StatusCode::CREATED, &pipeline))
}

/// Fetch a pipeline.
#[utoipa::path(get, path = "/v1/pipelines/{id}", tag = "pipelines",
    params(("id" = Uuid, Path, description = "Pipeline id")), security(("bearer" = [])),
    responses(
        (status = 200, description = "The pipeline", body = crate::envelope::Success<PipelineResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn get<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let pipeline = get_pipeline(auth.uow, &auth.principal, PipelineId::from_uuid(*id)).await?;
    Ok(pipeline_response(StatusCode::OK, &pipeline))
}

/// Rename a pipeline.
#[utoipa::path(patch, path = "/v1/pipelines/{id}", tag = "pipelines", request_body = RenamePipelineBody,
    params(("id" = Uuid, Path, description = "Pipeline id"),
           ("If-Match" = Option<String>, Header, description = "ETag the change is based on; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Renamed", body = crate::envelope::Success<PipelineResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn rename<S: Store>(
    req: HttpRequest,
    body: web::Json<RenamePipelineBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    check_body(&*body)?;
    let precondition = if_match(&req);
    let pipeline = rename_pipeline(
        auth.uow,
        &auth.principal,
        PipelineId::from_uuid(*id),
        precondition.as_ref(),
        &body.name,
    )
    .await?;
    Ok(pipeline_response(StatusCode::OK, &pipeline))
}

/// Delete a pipeline (not the default one).
#[utoipa::path(delete, path = "/v1/pipelines/{id}", tag = "pipelines",
    params(("id" = Uuid, Path, description = "Pipeline id"),
           ("If-Match" = Option<String>, Header, description = "ETag the deletion is based on; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = crate::envelope::Success<DeletedResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn delete<S: Store>(
    req: HttpRequest,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(&req);
    delete_pipeline(
        auth.uow,
        &auth.principal,
        PipelineId::from_uuid(*id),
        precondition.as_ref(),
    )
    .await?;
    Ok(respond(
        StatusCode::OK,
        DeletedResponse {
            id: *id,
            deleted: true,
        },
    ))
}

async fn stages_changed<S: Store>(
    req: &HttpRequest,
    auth: Authenticated<S>,
    pipeline: Uuid,
    change: StageChange,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(req);
    let pipeline = change_stages(
        auth.uow,
        &auth.principal,
        PipelineId::from_uuid(pipeline),
        precondition.as_ref(),
        change,
    )
    .await?;
    Ok(pipeline_response(status, &pipeline))
}

/// Add a stage (at `position`, else at the end).
#[utoipa::path(post, path = "/v1/pipelines/{id}/stages", tag = "pipelines", request_body = AddStageBody,
    params(("id" = Uuid, Path, description = "Pipeline id"),
           ("If-Match" = Option<String>, Header, description = "The pipeline's ETag; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The pipeline with the new stage", body = crate::envelope::Success<PipelineResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn add_stage<S: Store>(
    req: HttpRequest,
    body: web::Json<AddStageBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let change = StageChange::Add {
        stage: StageInput {
            name: body.name,
            probability: body.probability,
            kind: body.kind.map(StageKind::from),
        },
        position: body.position.and_then(|p| usize::try_from(p).ok()),
    };
    stages_changed(&req, auth, *id, change, StatusCode::CREATED).await
}

/// Change a stage's name, probability or kind.
#[utoipa::path(patch, path = "/v1/pipelines/{id}/stages/{stageId}", tag = "pipelines", request_body = UpdateStageBody,
    params(("id" = Uuid, Path, description = "Pipeline id"), ("stageId" = Uuid, Path, description = "Stage id"),
           ("If-Match" = Option<String>, Header, description = "The pipeline's ETag; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The pipeline", body = crate::envelope::Success<PipelineResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn update_stage<S: Store>(
    req: HttpRequest,
    body: web::Json<UpdateStageBody>,
    auth: Authenticated<S>,
    ids: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let (pipeline, stage) = ids.into_inner();
    let change = StageChange::Update {
        stage: StageId::from_uuid(stage),
        name: body.name,
        probability: body.probability,
        kind: body.kind.map(StageKind::from),
    };
    stages_changed(&req, auth, pipeline, change, StatusCode::OK).await
}

/// Delete a stage (a pipeline keeps at least one); `moveTo` moves its leads first.
#[utoipa::path(delete, path = "/v1/pipelines/{id}/stages/{stageId}", tag = "pipelines",
    params(("id" = Uuid, Path, description = "Pipeline id"), ("stageId" = Uuid, Path, description = "Stage id"), DeleteStageParams,
           ("If-Match" = Option<String>, Header, description = "The pipeline's ETag; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The pipeline without the stage", body = crate::envelope::Success<PipelineResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn delete_stage<S: Store>(
    req: HttpRequest,
    auth: Authenticated<S>,
    ids: web::Path<(Uuid, Uuid)>,
    params: web::Query<DeleteStageParams>,
) -> Result<HttpResponse, ApiError> {
    let (pipeline, stage) = ids.into_inner();
    let change = StageChange::Delete {
        stage: StageId::from_uuid(stage),
        move_to: params.move_to.map(StageId::from_uuid),
    };
    stages_changed(&req, auth, pipeline, change, StatusCode::OK).await
}

/// Reorder the stages: every stage id, once, in the new order.
#[utoipa::path(post, path = "/v1/pipelines/{id}/stages/reorder", tag = "pipelines", request_body = ReorderBody,
    params(("id" = Uuid, Path, description = "Pipeline id"),
           ("If-Match" = Option<String>, Header, description = "The pipeline's ETag; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reordered pipeline", body = crate::envelope::Success<PipelineResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn reorder<S: Store>(
    req: HttpRequest,
    body: web::Json<ReorderBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let order = body
        .into_inner()
        .stage_ids
        .into_iter()
        .map(StageId::from_uuid)
        .collect();
    stages_changed(&req, auth, *id, StageChange::Reorder(order), StatusCode::OK).await
}

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(
    list,
    create,
    reorder,
    update_stage,
    delete_stage,
    add_stage,
    get,
    rename,
    delete
))]
pub struct ApiDoc;

/// Registers the routes (under `/v1`).
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/pipelines", |r| r.get(list::<S>).post(create::<S>))
        .resource("/pipelines/{id}/stages/reorder", |r| r.post(reorder::<S>))
        .resource("/pipelines/{id}/stages/{stageId}", |r| {
            r.patch(update_stage::<S>).delete(delete_stage::<S>)
        })
        .resource("/pipelines/{id}/stages", |r| r.post(add_stage::<S>))
        .resource("/pipelines/{id}", |r| {
            r.get(get::<S>).patch(rename::<S>).delete(delete::<S>)
        });
}
