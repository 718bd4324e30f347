//! `/v1/leads`: list, create, get, replace, patch, delete, and `POST /v1/leads/{id}/move`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use app::leads::{LeadChange, create_lead, delete_lead, get_lead, list_leads, update_lead};
use domain::FieldErrors;
use domain::ids::{CompanyId, ContactId, UserId};
use domain::lead::{Lead, LeadId, LeadInput, LeadPatch, LeadQuery, LeadSortField};
use domain::list::{Limit, Sort};
use domain::pipeline::{PipelineId, StageId, StageKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use super::common::{
    DeletedResponse, filter_text, if_match, parse_date, present, versioned_response,
};
use super::pipelines::StageKindDto;
use crate::Store;
use crate::auth::Authenticated;
use crate::envelope::{Pagination, respond, respond_with};
use crate::error::ApiError;

/// A lead as shown.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadResponse {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Contact.
    pub contact_id: Option<Uuid>,
    /// Company.
    pub company_id: Option<Uuid>,
    /// Pipeline.
    pub pipeline_id: Uuid,
    /// Stage (of that pipeline).
    pub stage_id: Uuid,
    /// Value in minor units (cents).
    pub value: Option<i64>,
    /// ISO 4217 currency of the value.
    pub currency: Option<String>,
    /// `open`, `won` or `lost`: the kind of the stage.
    pub status: String,
    /// Owning member.
    pub owner_id: Option<Uuid>,
    /// Expected close date (YYYY-MM-DD).
    #[schema(value_type = Option<String>, format = Date)]
    pub expected_close_date: Option<String>,
    /// Source.
    pub source: Option<String>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Version; the ETag is this number, quoted.
    pub version: i64,
}

impl From<&Lead> for LeadResponse {
    fn from(lead: &Lead) -> Self {
        let f = &lead.fields;
        Self {
            id: lead.id.as_uuid(),
            title: f.title.clone(),
            contact_id: f.contact_id.map(|i| i.as_uuid()),
            company_id: f.company_id.map(|i| i.as_uuid()),
            pipeline_id: f.pipeline_id.as_uuid(),
            stage_id: f.stage_id.as_uuid(),
            value: f.value.as_ref().map(|m| m.minor),
            currency: f.value.as_ref().map(|m| m.currency.as_str().to_owned()),
            status: lead.status.as_str().to_owned(),
            owner_id: f.owner_id.map(|i| i.as_uuid()),
            expected_close_date: f.expected_close_date.map(|d| d.to_string()),
            source: f.source.clone(),
            created_at: lead.created_at,
            updated_at: lead.updated_at,
            version: lead.version,
        }
    }
}

/// `POST /v1/leads` and `PUT /v1/leads/{id}` (fields left out are cleared on `PUT`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadBody {
    /// Title.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "500 rockets"
    )]
    pub title: String,
    /// Contact of this tenant.
    pub contact_id: Option<Uuid>,
    /// Company of this tenant.
    pub company_id: Option<Uuid>,
    /// Pipeline (default: the default pipeline, or the stage's pipeline).
    pub pipeline_id: Option<Uuid>,
    /// Stage (default: the pipeline's first stage).
    pub stage_id: Option<Uuid>,
    /// Value in minor units (cents); with `currency`.
    #[serde(default, deserialize_with = "crate::validation::optional_integer")]
    #[schema(minimum = 0)]
    pub value: Option<i64>,
    /// ISO 4217 currency; with `value`.
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: Option<String>,
    /// Owning member.
    pub owner_id: Option<Uuid>,
    /// Expected close date, YYYY-MM-DD.
    #[schema(format = Date, example = "2026-12-31")]
    pub expected_close_date: Option<String>,
    /// Source.
    #[schema(max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub source: Option<String>,
}

impl LeadBody {
    fn into_input(self) -> Result<LeadInput, ApiError> {
        let mut errors = FieldErrors::new();
        let expected_close_date = parse_date(
            "expectedCloseDate",
            self.expected_close_date.as_deref(),
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(ApiError::validation(&errors));
        }
        Ok(LeadInput {
            title: Some(self.title),
            contact_id: self.contact_id.map(ContactId::from_uuid),
            company_id: self.company_id.map(CompanyId::from_uuid),
            pipeline_id: self.pipeline_id.map(PipelineId::from_uuid),
            stage_id: self.stage_id.map(StageId::from_uuid),
            value: self.value,
            currency: self.currency,
            owner_id: self.owner_id.map(UserId::from_uuid),
            expected_close_date,
            source: self.source,
        })
    }
}

/// A merge-patch of a lead; `stageId`/`pipelineId` changes go through the move rule.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::option_option)]
pub struct LeadPatchBody {
    /// Title.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub title: Option<String>,
    /// Contact.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<Option<Uuid>>,
    /// Company.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub company_id: Option<Option<Uuid>>,
    /// Pipeline (alone: its first stage).
    pub pipeline_id: Option<Uuid>,
    /// Stage.
    pub stage_id: Option<Uuid>,
    /// Value in minor units.
    #[serde(default, deserialize_with = "crate::validation::present_integer")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub value: Option<Option<i64>>,
    /// Currency.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^[A-Z]{3}$")]
    pub currency: Option<Option<String>>,
    /// Owner.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub owner_id: Option<Option<Uuid>>,
    /// Expected close date, YYYY-MM-DD.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Date)]
    pub expected_close_date: Option<Option<String>>,
    /// Source.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub source: Option<Option<String>>,
}

impl LeadPatchBody {
    fn into_patch(self) -> Result<LeadPatch, ApiError> {
        let mut errors = FieldErrors::new();
        let expected_close_date = self.expected_close_date.map(|date| {
            date.and_then(|raw| parse_date("expectedCloseDate", Some(&raw), &mut errors))
        });
        if !errors.is_empty() {
            return Err(ApiError::validation(&errors));
        }
        Ok(LeadPatch {
            title: self.title.map(Some),
            contact_id: self.contact_id.map(|o| o.map(ContactId::from_uuid)),
            company_id: self.company_id.map(|o| o.map(CompanyId::from_uuid)),
            pipeline_id: self.pipeline_id.map(PipelineId::from_uuid),
            stage_id: self.stage_id.map(StageId::from_uuid),
            value: self.value,
            currency: self.currency,
            owner_id: self.owner_id.map(|o| o.map(UserId::from_uuid)),
            expected_close_date,
            source: self.source,
        })
    }
}

/// `POST /v1/leads/{id}/move`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoveBody {
    /// The new stage (its pipeline becomes the lead's).
    pub stage_id: Uuid,
}

/// Sort orders of a lead list.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
pub enum LeadSort {
    /// Oldest first.
    #[serde(rename = "createdAt")]
    CreatedAt,
    /// Newest first (default).
    #[serde(rename = "-createdAt")]
    CreatedAtDesc,
    /// Least recently changed first.
    #[serde(rename = "updatedAt")]
    UpdatedAt,
    /// Most recently changed first.
    #[serde(rename = "-updatedAt")]
    UpdatedAtDesc,
}

/// Query parameters of `GET /v1/leads`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListLeadsParams {
    /// Page size, 1-100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(max_length = 1024)]
    pub cursor: Option<String>,
    /// Order (default `-createdAt`).
    #[param(inline)]
    pub sort: Option<LeadSort>,
    /// In this pipeline.
    pub pipeline_id: Option<Uuid>,
    /// In this stage.
    pub stage_id: Option<Uuid>,
    /// With this status.
    #[param(inline)]
    pub status: Option<StageKindDto>,
    /// Owned by.
    pub owner_id: Option<Uuid>,
    /// Of this contact.
    pub contact_id: Option<Uuid>,
    /// Of this company.
    pub company_id: Option<Uuid>,
    /// Value at least (minor units).
    #[param(minimum = 0)]
    pub min_value: Option<i64>,
    /// Value at most (minor units).
    #[param(minimum = 0)]
    pub max_value: Option<i64>,
    /// Case-insensitive search in the title, the source, and the linked contact's and
    /// company's names.
    #[param(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub q: Option<String>,
}

fn lead_response(status: StatusCode, lead: &Lead) -> HttpResponse {
    versioned_response(
        status,
        &lead.etag(),
        "/v1/leads",
        lead.id,
        LeadResponse::from(lead),
    )
}

/// List leads.
#[utoipa::path(get, path = "/v1/leads", tag = "leads", params(ListLeadsParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of leads", body = crate::envelope::Success<Vec<LeadResponse>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn list<S: Store>(
    auth: Authenticated<S>,
    params: web::Query<ListLeadsParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let mut errors = FieldErrors::new();
    let limit = errors
        .check("limit", Limit::new(p.limit))
        .unwrap_or_default();
    let sort = p.sort.map(|s| match s {
        LeadSort::CreatedAt => Sort {
            field: LeadSortField::CreatedAt,
            descending: false,
        },
        LeadSort::CreatedAtDesc => Sort {
            field: LeadSortField::CreatedAt,
            descending: true,
        },
        LeadSort::UpdatedAt => Sort {
            field: LeadSortField::UpdatedAt,
            descending: false,
        },
        LeadSort::UpdatedAtDesc => Sort {
            field: LeadSortField::UpdatedAt,
            descending: true,
        },
    });
    let (cursor, sort) = crate::cursor::resolve(p.cursor.as_deref(), sort, &mut errors);
    let q = filter_text("q", p.q, 200, &mut errors);
    for (field, value) in [("minValue", p.min_value), ("maxValue", p.max_value)] {
        if value.is_some_and(|v| v < 0) {
            errors.add(field, "must not be negative");
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(&errors));
    }
    let default = LeadQuery::default();
    let query = LeadQuery {
        limit,
        sort: sort.unwrap_or(default.sort),
        cursor,
        pipeline_id: p.pipeline_id.map(PipelineId::from_uuid),
        stage_id: p.stage_id.map(StageId::from_uuid),
        status: p.status.map(StageKind::from),
        owner_id: p.owner_id.map(UserId::from_uuid),
        contact_id: p.contact_id.map(ContactId::from_uuid),
        company_id: p.company_id.map(CompanyId::from_uuid),
        min_value: p.min_value,
        max_value: p.max_value,
        q,
    };
    let page = list_leads(auth.uow, &auth.principal, query).await?;
    let data: Vec<LeadResponse> = page.items.iter().map(LeadResponse::from).collect();
    let pagination = Pagination {
        limit: limit.get(),
        has_more: page.next.is_some(),
        next_cursor: page.next.as_ref().map(crate::cursor::encode),
    };
    Ok(respond_with(
        HttpResponseBuilder::new(StatusCode::OK),
        data,
        Some(pagination),
    ))
}

/// Create a lead.
#[utoipa::path(post, path = "/v1/leads", tag = "leads", request_body = LeadBody, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = crate::envelope::Success<LeadResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn create<S: Store>(
    body: web::Json<LeadBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner().into_input()?;
    let lead = create_lead(auth.uow, &auth.principal, input).await?;
    Ok(lead_response(StatusCode::CREATED, &lead))
}

/// Fetch a lead.
#[utoipa::path(get, path = "/v1/leads/{id}", tag = "leads", params(("id" = Uuid, Path, description = "Lead id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The lead", body = crate::envelope::Success<LeadResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn get<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let lead = get_lead(auth.uow, &auth.principal, LeadId::from_uuid(*id)).await?;
    Ok(lead_response(StatusCode::OK, &lead))
}

async fn changed<S: Store>(
    req: &HttpRequest,
    auth: Authenticated<S>,
    id: Uuid,
    change: LeadChange,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(req);
    let lead = update_lead(
        auth.uow,
        &auth.principal,
        LeadId::from_uuid(id),
        precondition.as_ref(),
        change,
    )
    .await?;
    Ok(lead_response(StatusCode::OK, &lead))
}

/// Replace a lead.
#[utoipa::path(put, path = "/v1/leads/{id}", tag = "leads", request_body = LeadBody,
    params(("id" = Uuid, Path, description = "Lead id"), ("If-Match" = Option<String>, Header, description = "ETag; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = crate::envelope::Success<LeadResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn replace<S: Store>(
    req: HttpRequest,
    body: web::Json<LeadBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner().into_input()?;
    changed(&req, auth, *id, LeadChange::Replace(input)).await
}

/// Change some fields of a lead (JSON merge-patch).
#[utoipa::path(patch, path = "/v1/leads/{id}", tag = "leads", request_body = LeadPatchBody,
    params(("id" = Uuid, Path, description = "Lead id"), ("If-Match" = Option<String>, Header, description = "ETag; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = crate::envelope::Success<LeadResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn patch<S: Store>(
    req: HttpRequest,
    body: web::Json<LeadPatchBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner().into_patch()?;
    changed(&req, auth, *id, LeadChange::Patch(patch)).await
}

/// Move a lead to another stage; records a note on its timeline.
#[utoipa::path(post, path = "/v1/leads/{id}/move", tag = "leads", request_body = MoveBody,
    params(("id" = Uuid, Path, description = "Lead id"), ("If-Match" = Option<String>, Header, description = "ETag; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Moved", body = crate::envelope::Success<LeadResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn move_lead<S: Store>(
    req: HttpRequest,
    body: web::Json<MoveBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    changed(
        &req,
        auth,
        *id,
        LeadChange::Move(StageId::from_uuid(body.stage_id)),
    )
    .await
}

/// Delete a lead (and its activities).
#[utoipa::path(delete, path = "/v1/leads/{id}", tag = "leads",
    params(("id" = Uuid, Path, description = "Lead id"), ("If-Match" = Option<String>, Header, description = "ETag; 412 when stale")),
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
    delete_lead(
        auth.uow,
        &auth.principal,
        LeadId::from_uuid(*id),
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

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(list, create, move_lead, get, replace, patch, delete))]
pub struct ApiDoc;

/// Registers the lead routes (under `/v1`).
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/leads", |r| r.get(list::<S>).post(create::<S>))
        .resource("/leads/{id}/move", |r| r.post(move_lead::<S>))
        .resource("/leads/{id}", |r| {
            r.get(get::<S>)
                .put(replace::<S>)
                .patch(patch::<S>)
                .delete(delete::<S>)
        });
}
