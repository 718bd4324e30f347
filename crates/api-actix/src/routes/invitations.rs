//! `/v1/invitations` (admins: invite, list, revoke) and `POST /v1/auth/accept-invitation`
//! (the invitee, with the token). Membership is by invitation only.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::auth::Credential;
use app::invitations::{
    AcceptInput, InviteInput, accept_invitation, create_invitation, list_invitations,
    revoke_invitation,
};
use domain::identity::Invitation;
use domain::ids::InvitationId;
use garde::Validate;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use crate::auth::{Authenticated, bearer_token};
use crate::envelope::{respond, respond_all};
use crate::error::{ApiError, unauthenticated};
use crate::{ApiState, Store, client_info};

use super::auth::SessionResponse;
use super::common::{DeletedResponse, check_body};
use super::members::RoleName;

/// `POST /v1/invitations`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitationBody {
    /// The address to invite. Whether it has an account is neither checked nor told.
    #[garde(length(chars, max = 254))]
    #[schema(
        max_length = 254,
        pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
        example = "grace@example.com"
    )]
    pub email: String,
    /// The role the invitee gets: at most the inviter's; admin and owner only from a
    /// full-scope credential.
    #[garde(skip)]
    pub role: RoleName,
}

/// An invitation, as admins see it (never its token after creation).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationResponse {
    /// Id.
    pub id: Uuid,
    /// The address invited.
    pub email: String,
    /// The role the invitee gets.
    pub role: String,
    /// The member who invited.
    pub invited_by: Uuid,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last moment it can be accepted.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// When it was accepted (it works once).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub accepted_at: Option<OffsetDateTime>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&Invitation> for InvitationResponse {
    fn from(invitation: &Invitation) -> Self {
        Self {
            id: invitation.id.as_uuid(),
            email: invitation.email.clone(),
            role: invitation.role.as_str().to_owned(),
            invited_by: invitation.invited_by.as_uuid(),
            created_at: invitation.created_at,
            expires_at: invitation.expires_at,
            accepted_at: invitation.accepted_at,
            revoked_at: invitation.revoked_at,
        }
    }
}

/// A created invitation, with its token: shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedInvitationResponse {
    /// The invitation.
    #[serde(flatten)]
    pub invitation: InvitationResponse,
    /// The token (`crm_inv_…`) for the invitee only: send it to them now, it cannot be
    /// shown again.
    pub token: String,
}

/// `POST /v1/auth/accept-invitation`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationBody {
    /// The `crm_inv_…` token.
    #[garde(length(chars, max = 100))]
    #[schema(max_length = 100)]
    pub token: String,
    /// A name for a new account (default: the address's local part).
    #[garde(inner(length(chars, min = 1, max = 200)))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// A new account's own password (10 to 1024 characters), or an existing account's
    /// current password. Not needed with the existing account's own session in
    /// `Authorization`.
    #[garde(inner(length(chars, max = 1024)))]
    #[schema(max_length = 1024)]
    pub password: Option<String>,
}

/// Invite someone by e-mail; the response carries the token, once.
#[utoipa::path(post, path = "/v1/invitations", tag = "members", request_body = CreateInvitationBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Invited", body = crate::envelope::Success<CreatedInvitationResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn create<S: Store>(
    body: web::Json<CreateInvitationBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let input = InviteInput {
        email: body.email,
        role: body.role.into(),
    };
    let created = create_invitation(auth.uow, &auth.principal, input).await?;
    Ok(respond(
        StatusCode::CREATED,
        CreatedInvitationResponse {
            invitation: InvitationResponse::from(&created.invitation),
            token: created.token.expose().to_owned(),
        },
    ))
}

/// List the tenant's invitations, newest first (accepted and revoked ones included).
#[utoipa::path(get, path = "/v1/invitations", params(super::SearchParams), tag = "members", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every invitation", body = crate::envelope::Success<Vec<InvitationResponse>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn list<S: Store>(
    auth: Authenticated<S>,
    params: web::Query<super::SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let term = params.into_inner().term()?;
    let invitations = list_invitations(auth.uow, &auth.principal).await?;
    let data: Vec<InvitationResponse> = invitations
        .iter()
        .filter(|i| super::found(term.as_deref(), [i.email.as_str()]))
        .map(InvitationResponse::from)
        .collect();
    Ok(respond_all(data))
}

/// Revoke a pending invitation: its token stops working at once.
#[utoipa::path(delete, path = "/v1/invitations/{id}", tag = "members", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "Revoked", body = crate::envelope::Success<DeletedResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn revoke<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    revoke_invitation(auth.uow, &auth.principal, InvitationId::from_uuid(*id)).await?;
    Ok(respond(
        StatusCode::OK,
        DeletedResponse {
            id: *id,
            deleted: true,
        },
    ))
}

/// Accept an invitation: a new account sets its own password; an existing account gives
/// its current password or sends its own session. Answers like login, with a session in
/// the inviting tenant.
#[utoipa::path(post, path = "/v1/auth/accept-invitation", tag = "auth",
    request_body = AcceptInvitationBody,
    responses(
        (status = 200, description = "Joined, and logged in there", body = crate::envelope::Success<SessionResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn accept<S: Store>(
    req: HttpRequest,
    state: web::Data<ApiState<S>>,
    body: web::Json<AcceptInvitationBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let session = match bearer_token(req.headers()) {
        None => None,
        Some(token) => Some(Credential::from_bearer(token).map_err(|_| unauthenticated())?),
    };
    let input = AcceptInput {
        token: body.token,
        name: body.name,
        password: body.password,
    };
    let grant = accept_invitation(
        &state.store,
        state.hasher.as_ref(),
        &state.auth,
        input,
        session.as_ref(),
        &client_info(&req),
    )
    .await?;
    Ok(respond(StatusCode::OK, SessionResponse::from(&grant)))
}

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(list, create, revoke, accept))]
pub struct ApiDoc;

/// Registers the routes (under `/v1`).
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/invitations", |r| r.get(list::<S>).post(create::<S>))
        .resource("/invitations/{id}", |r| r.delete(revoke::<S>))
        .resource("/auth/accept-invitation", |r| r.post(accept::<S>));
}
