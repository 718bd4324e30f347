//! `/v1/auth/*` and `/v1/me`: sign-up, login, logout, demo sandbox, who am I.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::identity::{LoginInput, SessionGrant, SignupInput, login, logout, signup};
use domain::identity::TenantInfo;
use domain::ids::TenantId;
use domain::principal::{Actor, Principal};
use garde::Validate;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use super::common::check_body;
use crate::auth::Authenticated;
use crate::envelope::respond;
use crate::error::ApiError;
use crate::{ApiState, Store, client_info};

/// `POST /v1/auth/signup`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignupBody {
    /// The new tenant's name.
    #[garde(length(chars, min = 1, max = 200))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Acme Ltd"
    )]
    pub tenant_name: String,
    /// Your name.
    #[garde(length(chars, min = 1, max = 200))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Ada Lovelace"
    )]
    pub name: String,
    /// Your e-mail address (your login).
    #[garde(length(chars, max = 254))]
    #[schema(
        max_length = 254,
        pattern = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
        example = "ada@example.com"
    )]
    pub email: String,
    /// At least 10 characters, at most 1024; any characters.
    #[garde(length(chars, min = 10, max = 1024))]
    #[schema(
        min_length = 10,
        max_length = 1024,
        example = "correct horse battery staple"
    )]
    pub password: String,
}

/// `POST /v1/auth/login`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginBody {
    /// Your e-mail address.
    #[garde(length(chars, max = 254))]
    #[schema(max_length = 254, example = "ada@example.com")]
    pub email: String,
    /// Your password.
    #[garde(length(chars, max = 1024))]
    #[schema(max_length = 1024, example = "correct horse battery staple")]
    pub password: String,
    /// The tenant to log into, for people in several (default: the oldest membership).
    #[garde(skip)]
    pub tenant_id: Option<Uuid>,
}

/// A tenant, as identity responses show it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// When a demo sandbox is deleted (absent for real tenants).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

impl From<&TenantInfo> for TenantView {
    fn from(tenant: &TenantInfo) -> Self {
        Self {
            id: tenant.id.as_uuid(),
            name: tenant.name.clone(),
            expires_at: tenant.expires_at,
        }
    }
}

/// A user, as identity responses show them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: Uuid,
    /// E-mail.
    pub email: String,
    /// Name.
    pub name: String,
}

/// A session token, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The bearer token (`crm_st_…`). Keep it secret; it is not shown again.
    pub token: String,
    /// When it stops working at the latest (it also ends after a day unused).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// The answer to sign-up, login and demo login.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// The tenant the session is bound to.
    pub tenant: TenantView,
    /// Who is logged in.
    pub user: UserView,
    /// The session.
    pub session: SessionView,
}

impl From<&SessionGrant> for SessionResponse {
    fn from(grant: &SessionGrant) -> Self {
        Self {
            tenant: TenantView::from(&grant.tenant),
            user: UserView {
                id: grant.user.id.as_uuid(),
                email: grant.user.email.clone(),
                name: grant.user.name.clone(),
            },
            session: SessionView {
                token: grant.token.expose().to_owned(),
                expires_at: grant.expires_at,
            },
        }
    }
}

/// The tenant in `GET /v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeTenant {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
}

/// The API key in `GET /v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeApiKey {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Public prefix.
    pub prefix: String,
}

/// `GET /v1/me`: who is calling.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    /// `user` (a session) or `apiKey`.
    #[schema(example = "user")]
    pub kind: String,
    /// The tenant the credential acts in.
    pub tenant: MeTenant,
    /// The role there.
    #[schema(example = "owner")]
    pub role: String,
    /// The scopes (`*` for sessions).
    pub scopes: Vec<String>,
    /// The person, for sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserView>,
    /// The key, for API keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<MeApiKey>,
}

/// `POST /v1/auth/logout`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogoutResponse {
    /// Always true.
    pub logged_out: bool,
}

fn me_view(principal: &Principal) -> MeResponse {
    let (kind, user, api_key) = match &principal.actor {
        Actor::User {
            id, email, name, ..
        } => (
            "user",
            Some(UserView {
                id: id.as_uuid(),
                email: email.clone(),
                name: name.clone(),
            }),
            None,
        ),
        Actor::ApiKey {
            id, name, prefix, ..
        } => (
            "apiKey",
            None,
            Some(MeApiKey {
                id: id.as_uuid(),
                name: name.clone(),
                prefix: prefix.clone(),
            }),
        ),
    };
    MeResponse {
        kind: kind.to_owned(),
        tenant: MeTenant {
            id: principal.tenant_id.as_uuid(),
            name: principal.tenant_name.clone(),
        },
        role: principal.role.as_str().to_owned(),
        scopes: principal.scopes.names().to_vec(),
        user,
        api_key,
    }
}

/// Sign up: a new tenant, you as its owner, and a session.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = SignupBody,
    responses(
        (status = 201, description = "Tenant, user and session created", body = crate::envelope::Success<SessionResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn signup_handler<S: Store>(
    req: HttpRequest,
    state: web::Data<ApiState<S>>,
    body: web::Json<SignupBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let input = SignupInput {
        tenant_name: body.tenant_name,
        name: body.name,
        email: body.email,
        password: body.password,
    };
    let grant = signup(
        &state.store,
        state.hasher.as_ref(),
        &state.auth,
        input,
        &client_info(&req),
    )
    .await?;
    Ok(respond(StatusCode::CREATED, SessionResponse::from(&grant)))
}

/// Log in with e-mail and password. Unknown e-mail and wrong password answer the same.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = crate::envelope::Success<SessionResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn login_handler<S: Store>(
    req: HttpRequest,
    state: web::Data<ApiState<S>>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let input = LoginInput {
        email: body.email,
        password: body.password,
        tenant_id: body.tenant_id.map(TenantId::from_uuid),
    };
    let grant = login(
        &state.store,
        state.hasher.as_ref(),
        &state.auth,
        input,
        &client_info(&req),
    )
    .await?;
    Ok(respond(StatusCode::OK, SessionResponse::from(&grant)))
}

/// Log out: revoke the session this request carries.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The session is revoked", body = crate::envelope::Success<LogoutResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn logout_handler<S: Store>(auth: Authenticated<S>) -> Result<HttpResponse, ApiError> {
    logout(auth.uow, &auth.principal).await?;
    Ok(respond(StatusCode::OK, LogoutResponse { logged_out: true }))
}

/// A fresh sandbox tenant with sample data, and a session in it. It is deleted after a day.
#[utoipa::path(post, path = "/v1/auth/demo-login", tag = "auth",
    responses(
        (status = 201, description = "Sandbox created", body = crate::envelope::Success<SessionResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn demo_login_handler<S: Store>(
    req: HttpRequest,
    state: web::Data<ApiState<S>>,
) -> Result<HttpResponse, ApiError> {
    let grant = app::demo::demo_login(&state.store, &state.auth, &client_info(&req)).await?;
    Ok(respond(StatusCode::CREATED, SessionResponse::from(&grant)))
}

/// Who is calling: user or API key, tenant, role, scopes.
#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = crate::envelope::Success<MeResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn me_handler<S: Store>(auth: Authenticated<S>) -> Result<HttpResponse, ApiError> {
    // Authentication already read everything /me shows; committing keeps the key's or
    // session's last-use time that authentication recorded.
    ports::UnitOfWork::commit(auth.uow).await?;
    Ok(respond(StatusCode::OK, me_view(&auth.principal)))
}

/// This module's operations in the OpenAPI document, next to the routes that serve them
/// (`openapi`'s test checks the two lists agree).
#[derive(OpenApi)]
#[openapi(paths(
    signup_handler,
    login_handler,
    logout_handler,
    demo_login_handler,
    me_handler
))]
pub struct ApiDoc;

/// Registers the routes (under `/v1`).
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/auth/signup", |r| r.post(signup_handler::<S>))
        .resource("/auth/login", |r| r.post(login_handler::<S>))
        .resource("/auth/logout", |r| r.post(logout_handler::<S>))
        .resource("/auth/demo-login", |r| r.post(demo_login_handler::<S>))
        .resource("/me", |r| r.get(me_handler::<S>));
}
