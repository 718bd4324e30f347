//! `/v1/leads` (with `POST /v1/leads/{id}/move`) and `/v1/activities`, plus the activity
//! timelines of contacts, companies and leads.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use app::leads::{
    ActivityChange, LeadChange, TimelineOf, create_activity, create_lead, delete_activity,
    delete_lead, get_activity, get_lead, list_activities, list_leads, update_activity, update_lead,
};
use domain::FieldErrors;
use domain::activity::{
    Activity, ActivityId, ActivityInput, ActivityPatch, ActivityQuery, ActivityType,
};
use domain::ids::{CompanyId, ContactId, UserId};
use domain::lead::{Lead, LeadId, LeadInput, LeadPatch, LeadQuery, LeadSortField};
use domain::list::{Limit, Sort};
use domain::pipeline::{PipelineId, StageId, StageKind};
use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::contacts::{DeletedResponse, if_match};
use super::pipelines::StageKindDto;
use crate::Store;
use crate::auth::Authenticated;
use crate::envelope::{Pagination, respond, respond_with};
use crate::error::ApiError;

fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn parse_date(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<Date> {
    raw.and_then(|raw| {
        errors.check(
            field,
            Date::parse(raw, format_description!("[year]-[month]-[day]"))
                .map_err(|_| "must be a date such as 2026-12-31"),
        )
    })
}

fn parse_time(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<OffsetDateTime> {
    raw.and_then(|raw| {
        errors.check(
            field,
            OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| "must be an RFC 3339 date-time"),
        )
    })
}

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
    let mut builder = HttpResponseBuilder::new(status);
    if let Ok(etag) = HeaderValue::from_str(&lead.etag()) {
        builder.insert_header((header::ETAG, etag));
    }
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!("/v1/leads/{}", lead.id))
    {
        builder.insert_header((header::LOCATION, location));
    }
    respond_with(builder, LeadResponse::from(lead), None)
}

/// List leads.
#[utoipa::path(get, path = "/v1/leads", tag = "leads", params(ListLeadsParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of leads", body = crate::envelope::Success<Vec<LeadResponse>>),
        crate::openapi::CommonErrors,
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
    let q = super::contacts::filter_text("q", p.q, 200, &mut errors);
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
        crate::openapi::CommonErrors,
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
        crate::openapi::CommonErrors,
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
        crate::openapi::CommonErrors,
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
        crate::openapi::CommonErrors,
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
        crate::openapi::CommonErrors,
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
        crate::openapi::CommonErrors,
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

/// Activity types.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActivityTypeDto {
    /// A note.
    Note,
    /// A call.
    Call,
    /// An e-mail.
    Email,
    /// A meeting.
    Meeting,
    /// A task.
    Task,
}

impl From<ActivityTypeDto> for ActivityType {
    fn from(t: ActivityTypeDto) -> Self {
        match t {
            ActivityTypeDto::Note => Self::Note,
            ActivityTypeDto::Call => Self::Call,
            ActivityTypeDto::Email => Self::Email,
            ActivityTypeDto::Meeting => Self::Meeting,
            ActivityTypeDto::Task => Self::Task,
        }
    }
}

/// An activity as shown.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityResponse {
    /// Id.
    pub id: Uuid,
    /// `note`, `call`, `email`, `meeting` or `task`.
    pub r#type: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: Option<String>,
    /// Due.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<OffsetDateTime>,
    /// Completed.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<OffsetDateTime>,
    /// Contact.
    pub contact_id: Option<Uuid>,
    /// Company.
    pub company_id: Option<Uuid>,
    /// Lead.
    pub lead_id: Option<Uuid>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Version.
    pub version: i64,
}

impl From<&Activity> for ActivityResponse {
    fn from(a: &Activity) -> Self {
        let f = &a.fields;
        Self {
            id: a.id.as_uuid(),
            r#type: f.kind.as_str().to_owned(),
            subject: f.subject.clone(),
            body: f.body.clone(),
            due_at: f.due_at,
            completed_at: f.completed_at,
            contact_id: f.contact_id.map(|i| i.as_uuid()),
            company_id: f.company_id.map(|i| i.as_uuid()),
            lead_id: f.lead_id.map(|i| i.as_uuid()),
            created_at: a.created_at,
            updated_at: a.updated_at,
            version: a.version,
        }
    }
}

/// `POST /v1/activities` and `PUT /v1/activities/{id}`: linked to at least one of
/// contact, company or lead of this tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityBody {
    /// Type.
    pub r#type: ActivityTypeDto,
    /// Subject.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Intro call"
    )]
    pub subject: String,
    /// Body, multi-line, at most 10 000 characters.
    #[schema(max_length = 10000, pattern = "^[^\\u0000]*$")]
    pub body: Option<String>,
    /// Due (tasks), RFC 3339.
    #[schema(format = DateTime)]
    pub due_at: Option<String>,
    /// Completed, RFC 3339.
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    /// Contact.
    pub contact_id: Option<Uuid>,
    /// Company.
    pub company_id: Option<Uuid>,
    /// Lead.
    pub lead_id: Option<Uuid>,
}

impl ActivityBody {
    fn into_input(self) -> Result<ActivityInput, ApiError> {
        let mut errors = FieldErrors::new();
        let due_at = parse_time("dueAt", self.due_at.as_deref(), &mut errors);
        let completed_at = parse_time("completedAt", self.completed_at.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::validation(&errors));
        }
        Ok(ActivityInput {
            kind: self.r#type.into(),
            subject: Some(self.subject),
            body: self.body,
            due_at,
            completed_at,
            contact_id: self.contact_id.map(ContactId::from_uuid),
            company_id: self.company_id.map(CompanyId::from_uuid),
            lead_id: self.lead_id.map(LeadId::from_uuid),
        })
    }
}

/// `PATCH /v1/activities/{id}`: a merge-patch (absent keeps, `null` clears). The links
/// must still name at least one contact, company or lead.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::option_option)]
pub struct ActivityPatchBody {
    /// Type.
    pub r#type: Option<ActivityTypeDto>,
    /// Subject (cannot be cleared).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub subject: Option<String>,
    /// Body, multi-line, at most 10 000 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000, pattern = "^[^\\u0000]*$")]
    pub body: Option<Option<String>>,
    /// Due (tasks), RFC 3339.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<Option<String>>,
    /// Completed, RFC 3339: set it to complete a task.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Option<String>>,
    /// Contact.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<Option<Uuid>>,
    /// Company.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub company_id: Option<Option<Uuid>>,
    /// Lead.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub lead_id: Option<Option<Uuid>>,
}

impl ActivityPatchBody {
    fn into_patch(self) -> Result<ActivityPatch, ApiError> {
        let mut errors = FieldErrors::new();
        let due_at = self
            .due_at
            .map(|t| t.and_then(|raw| parse_time("dueAt", Some(&raw), &mut errors)));
        let completed_at = self
            .completed_at
            .map(|t| t.and_then(|raw| parse_time("completedAt", Some(&raw), &mut errors)));
        if !errors.is_empty() {
            return Err(ApiError::validation(&errors));
        }
        Ok(ActivityPatch {
            kind: self.r#type.map(ActivityType::from),
            subject: self.subject,
            body: self.body,
            due_at,
            completed_at,
            contact_id: self.contact_id.map(|o| o.map(ContactId::from_uuid)),
            company_id: self.company_id.map(|o| o.map(CompanyId::from_uuid)),
            lead_id: self.lead_id.map(|o| o.map(LeadId::from_uuid)),
        })
    }
}

/// Query parameters of activity lists and timelines.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListActivitiesParams {
    /// Page size, 1-100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(max_length = 1024)]
    pub cursor: Option<String>,
    /// Of this type.
    #[param(inline)]
    pub r#type: Option<ActivityTypeDto>,
    /// Case-insensitive search in the subject and the body.
    #[param(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub q: Option<String>,
}

async fn activities_page<S: Store>(
    auth: Authenticated<S>,
    of: Option<TimelineOf>,
    params: ListActivitiesParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::new();
    let limit = errors
        .check("limit", Limit::new(params.limit))
        .unwrap_or_default();
    let default = ActivityQuery::default();
    let (cursor, _) =
        crate::cursor::resolve(params.cursor.as_deref(), Some(default.sort), &mut errors);
    let q = super::contacts::filter_text("q", params.q, 200, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(&errors));
    }
    let query = ActivityQuery {
        limit,
        cursor,
        kind: params.r#type.map(ActivityType::from),
        q,
        ..default
    };
    let page = list_activities(auth.uow, &auth.principal, of, query).await?;
    let data: Vec<ActivityResponse> = page.items.iter().map(ActivityResponse::from).collect();
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

fn activity_response(status: StatusCode, activity: &Activity) -> HttpResponse {
    let mut builder = HttpResponseBuilder::new(status);
    if let Ok(etag) = HeaderValue::from_str(&activity.etag()) {
        builder.insert_header((header::ETAG, etag));
    }
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!("/v1/activities/{}", activity.id))
    {
        builder.insert_header((header::LOCATION, location));
    }
    respond_with(builder, ActivityResponse::from(activity), None)
}

/// List activities, newest first.
#[utoipa::path(get, path = "/v1/activities", tag = "activities", params(ListActivitiesParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of activities", body = crate::envelope::Success<Vec<ActivityResponse>>),
        crate::openapi::CommonErrors,
    ))]
pub async fn list_all<S: Store>(
    auth: Authenticated<S>,
    params: web::Query<ListActivitiesParams>,
) -> Result<HttpResponse, ApiError> {
    activities_page(auth, None, params.into_inner()).await
}

/// A contact's timeline, newest first.
#[utoipa::path(get, path = "/v1/contacts/{id}/activities", tag = "activities",
    params(("id" = Uuid, Path, description = "Contact id"), ListActivitiesParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "The timeline", body = crate::envelope::Success<Vec<ActivityResponse>>),
        crate::openapi::CommonErrors,
    ))]
pub async fn contact_timeline<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
    params: web::Query<ListActivitiesParams>,
) -> Result<HttpResponse, ApiError> {
    activities_page(
        auth,
        Some(TimelineOf::Contact(ContactId::from_uuid(*id))),
        params.into_inner(),
    )
    .await
}

/// A company's timeline, newest first.
#[utoipa::path(get, path = "/v1/companies/{id}/activities", tag = "activities",
    params(("id" = Uuid, Path, description = "Company id"), ListActivitiesParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "The timeline", body = crate::envelope::Success<Vec<ActivityResponse>>),
        crate::openapi::CommonErrors,
    ))]
pub async fn company_timeline<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
    params: web::Query<ListActivitiesParams>,
) -> Result<HttpResponse, ApiError> {
    activities_page(
        auth,
        Some(TimelineOf::Company(CompanyId::from_uuid(*id))),
        params.into_inner(),
    )
    .await
}

/// A lead's timeline, newest first (stage moves included).
#[utoipa::path(get, path = "/v1/leads/{id}/activities", tag = "activities",
    params(("id" = Uuid, Path, description = "Lead id"), ListActivitiesParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "The timeline", body = crate::envelope::Success<Vec<ActivityResponse>>),
        crate::openapi::CommonErrors,
    ))]
pub async fn lead_timeline<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
    params: web::Query<ListActivitiesParams>,
) -> Result<HttpResponse, ApiError> {
    activities_page(
        auth,
        Some(TimelineOf::Lead(LeadId::from_uuid(*id))),
        params.into_inner(),
    )
    .await
}

/// Create an activity.
#[utoipa::path(post, path = "/v1/activities", tag = "activities", request_body = ActivityBody, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = crate::envelope::Success<ActivityResponse>),
        crate::openapi::CommonErrors,
    ))]
pub async fn create_one<S: Store>(
    body: web::Json<ActivityBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner().into_input()?;
    let activity = create_activity(auth.uow, &auth.principal, input).await?;
    Ok(activity_response(StatusCode::CREATED, &activity))
}

/// Fetch an activity.
#[utoipa::path(get, path = "/v1/activities/{id}", tag = "activities", params(("id" = Uuid, Path, description = "Activity id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The activity", body = crate::envelope::Success<ActivityResponse>),
        crate::openapi::CommonErrors,
    ))]
pub async fn get_one<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let activity = get_activity(auth.uow, &auth.principal, ActivityId::from_uuid(*id)).await?;
    Ok(activity_response(StatusCode::OK, &activity))
}

/// Replace an activity (e.g. to complete a task).
#[utoipa::path(put, path = "/v1/activities/{id}", tag = "activities", request_body = ActivityBody,
    params(("id" = Uuid, Path, description = "Activity id"), ("If-Match" = Option<String>, Header, description = "ETag; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = crate::envelope::Success<ActivityResponse>),
        crate::openapi::CommonErrors,
    ))]
pub async fn replace_one<S: Store>(
    req: HttpRequest,
    body: web::Json<ActivityBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner().into_input()?;
    activity_changed(&req, auth, *id, ActivityChange::Replace(input)).await
}

/// Change some fields of an activity (JSON merge-patch), e.g. `{"completedAt": …}` to
/// complete a task.
#[utoipa::path(patch, path = "/v1/activities/{id}", tag = "activities", request_body = ActivityPatchBody,
    params(("id" = Uuid, Path, description = "Activity id"), ("If-Match" = Option<String>, Header, description = "ETag; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = crate::envelope::Success<ActivityResponse>),
        crate::openapi::CommonErrors,
    ))]
pub async fn patch_one<S: Store>(
    req: HttpRequest,
    body: web::Json<ActivityPatchBody>,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner().into_patch()?;
    activity_changed(&req, auth, *id, ActivityChange::Patch(patch)).await
}

async fn activity_changed<S: Store>(
    req: &HttpRequest,
    auth: Authenticated<S>,
    id: Uuid,
    change: ActivityChange,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(req);
    let activity = update_activity(
        auth.uow,
        &auth.principal,
        ActivityId::from_uuid(id),
        precondition.as_ref(),
        change,
    )
    .await?;
    Ok(activity_response(StatusCode::OK, &activity))
}

/// Delete an activity.
#[utoipa::path(delete, path = "/v1/activities/{id}", tag = "activities",
    params(("id" = Uuid, Path, description = "Activity id"), ("If-Match" = Option<String>, Header, description = "ETag; 412 when stale")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = crate::envelope::Success<DeletedResponse>),
        crate::openapi::CommonErrors,
    ))]
pub async fn delete_one<S: Store>(
    req: HttpRequest,
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(&req);
    delete_activity(
        auth.uow,
        &auth.principal,
        ActivityId::from_uuid(*id),
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

/// Registers the routes (under `/v1`).
pub fn configure<S: Store>(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str, allow: &'static str| {
        web::resource(path.to_owned()).default_service(super::method_not_allowed(allow))
    };
    cfg.service(
        resource("/leads", "GET, POST")
            .route(web::get().to(list::<S>))
            .route(web::post().to(create::<S>)),
    )
    .service(resource("/leads/{id}/move", "POST").route(web::post().to(move_lead::<S>)))
    .service(resource("/leads/{id}/activities", "GET").route(web::get().to(lead_timeline::<S>)))
    .service(
        resource("/leads/{id}", "GET, PUT, PATCH, DELETE")
            .route(web::get().to(get::<S>))
            .route(web::put().to(replace::<S>))
            .route(web::patch().to(patch::<S>))
            .route(web::delete().to(delete::<S>)),
    )
    .service(
        resource("/activities", "GET, POST")
            .route(web::get().to(list_all::<S>))
            .route(web::post().to(create_one::<S>)),
    )
    .service(
        resource("/activities/{id}", "GET, PUT, PATCH, DELETE")
            .route(web::get().to(get_one::<S>))
            .route(web::put().to(replace_one::<S>))
            .route(web::patch().to(patch_one::<S>))
            .route(web::delete().to(delete_one::<S>)),
    )
    .service(
        resource("/contacts/{id}/activities", "GET").route(web::get().to(contact_timeline::<S>)),
    )
    .service(
        resource("/companies/{id}/activities", "GET").route(web::get().to(company_timeline::<S>)),
    );
}
