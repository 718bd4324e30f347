//! `/v1/activities` (notes, calls, e-mails, meetings, tasks) and the activity timelines
//! of contacts, companies and leads.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use app::leads::{
    ActivityChange, TimelineOf, create_activity, delete_activity, get_activity, list_activities,
    update_activity,
};
use domain::FieldErrors;
use domain::activity::{
    Activity, ActivityId, ActivityInput, ActivityPatch, ActivityQuery, ActivityType,
};
use domain::ids::{CompanyId, ContactId};
use domain::lead::LeadId;
use domain::list::Limit;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use super::common::{
    DeletedResponse, filter_text, if_match, parse_time, present, versioned_response,
};
use crate::Store;
use crate::auth::Authenticated;
use crate::envelope::{Pagination, respond, respond_with};
use crate::error::ApiError;

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
    let q = filter_text("q", params.q, 200, &mut errors);
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
    versioned_response(
        status,
        &activity.etag(),
        "/v1/activities",
        activity.id,
        ActivityResponse::from(activity),
    )
}

/// List activities, newest first.
#[utoipa::path(get, path = "/v1/activities", tag = "activities", params(ListActivitiesParams), security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of activities", body = crate::envelope::Success<Vec<ActivityResponse>>),
        crate::schemas::CommonErrors,
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
        crate::schemas::CommonErrors,
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
        crate::schemas::CommonErrors,
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
        crate::schemas::CommonErrors,
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
        crate::schemas::CommonErrors,
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
        crate::schemas::CommonErrors,
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
        crate::schemas::CommonErrors,
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
        crate::schemas::CommonErrors,
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
        crate::schemas::CommonErrors,
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

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(
    lead_timeline,
    list_all,
    create_one,
    get_one,
    replace_one,
    patch_one,
    delete_one,
    contact_timeline,
    company_timeline
))]
pub struct ApiDoc;

/// Registers the activity routes and timelines (under `/v1`).
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/leads/{id}/activities", |r| r.get(lead_timeline::<S>))
        .resource("/activities", |r| {
            r.get(list_all::<S>).post(create_one::<S>)
        })
        .resource("/activities/{id}", |r| {
            r.get(get_one::<S>)
                .put(replace_one::<S>)
                .patch(patch_one::<S>)
                .delete(delete_one::<S>)
        })
        .resource("/contacts/{id}/activities", |r| {
            r.get(contact_timeline::<S>)
        })
        .resource("/companies/{id}/activities", |r| {
            r.get(company_timeline::<S>)
        });
}
