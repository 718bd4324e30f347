//! `/v1/members`: list, change role, remove. Admins and owners only. People join by
//! invitation (`routes/invitations.rs`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use app::members::{change_member_role, list_members, remove_member};
use domain::identity::Member;
use domain::ids::UserId;
use domain::principal::Role;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use crate::Store;
use crate::auth::Authenticated;
use crate::envelope::{respond, respond_all};
use crate::error::ApiError;

use super::common::DeletedResponse;

/// A role in a tenant.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// Everything.
    Owner,
    /// CRM data, API keys, webhooks, members.
    Admin,
    /// CRM data.
    Member,
    /// Read only.
    Viewer,
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Owner => Self::Owner,
            RoleName::Admin => Self::Admin,
            RoleName::Member => Self::Member,
            RoleName::Viewer => Self::Viewer,
        }
    }
}

/// A member.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberResponse {
    /// The user's id.
    pub user_id: Uuid,
    /// E-mail.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role here.
    pub role: String,
    /// Joined.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<&Member> for MemberResponse {
    fn from(member: &Member) -> Self {
        Self {
            user_id: member.user_id.as_uuid(),
            email: member.email.clone(),
            name: member.name.clone(),
            role: member.role.as_str().to_owned(),
            created_at: member.created_at,
        }
    }
}

/// `PATCH /v1/members/{userId}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleBody {
    /// The new role.
    pub role: RoleName,
}

/// List members, oldest first.
#[utoipa::path(get, path = "/v1/members", params(super::SearchParams), tag = "members", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every member", body = crate::envelope::Success<Vec<MemberResponse>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn list<S: Store>(
    auth: Authenticated<S>,
    params: web::Query<super::SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let term = params.into_inner().term()?;
    let members = list_members(auth.uow, &auth.principal).await?;
    let data: Vec<MemberResponse> = members
        .iter()
        .filter(|m| super::found(term.as_deref(), [m.name.as_str(), m.email.as_str()]))
        .map(MemberResponse::from)
        .collect();
    Ok(respond_all(data))
}

/// Change a member's role.
#[utoipa::path(patch, path = "/v1/members/{userId}", tag = "members", request_body = ChangeRoleBody,
    params(("userId" = Uuid, Path, description = "The member's user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = crate::envelope::Success<MemberResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn change_role<S: Store>(
    body: web::Json<ChangeRoleBody>,
    auth: Authenticated<S>,
    user: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let member = change_member_role(
        auth.uow,
        &auth.principal,
        UserId::from_uuid(*user),
        body.role.into(),
    )
    .await?;
    Ok(respond(StatusCode::OK, MemberResponse::from(&member)))
}

/// Remove a member (their sessions end).
#[utoipa::path(delete, path = "/v1/members/{userId}", tag = "members",
    params(("userId" = Uuid, Path, description = "The member's user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Removed", body = crate::envelope::Success<DeletedResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn remove<S: Store>(
    auth: Authenticated<S>,
    user: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    remove_member(auth.uow, &auth.principal, UserId::from_uuid(*user)).await?;
    Ok(respond(
        StatusCode::OK,
        DeletedResponse {
            id: *user,
            deleted: true,
        },
    ))
}

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(list, change_role, remove))]
pub struct ApiDoc;

/// Registers the routes (under `/v1`).
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/members", |r| r.get(list::<S>))
        .resource("/members/{userId}", |r| {
            r.patch(change_role::<S>).delete(remove::<S>)
        });
}
