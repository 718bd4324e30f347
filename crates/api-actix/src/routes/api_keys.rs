//! `/v1/api-keys`: create (the key is shown once), list, get, revoke.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use app::api_keys::{NewKeyInput, create_api_key, get_api_key, list_api_keys, revoke_api_key};
use domain::identity::ApiKeyRecord;
use domain::ids::ApiKeyId;
use garde::Validate;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::Routes;
use crate::Store;
use crate::auth::Authenticated;
use crate::envelope::{respond, respond_all};
use crate::error::ApiError;

use super::common::{DeletedResponse, check_body};

/// A scope an API key may carry.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
pub enum ScopeName {
    /// Everything the key's role allows.
    #[serde(rename = "*")]
    All,
    /// Read contacts.
    #[serde(rename = "contacts:read")]
    ContactsRead,
    /// Read and write contacts.
    #[serde(rename = "contacts:write")]
    ContactsWrite,
    /// Manage API keys.
    #[serde(rename = "api_keys:manage")]
    ApiKeysManage,
    /// Manage members.
    #[serde(rename = "members:manage")]
    MembersManage,
    /// Manage webhooks.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
}

impl ScopeName {
    fn as_str(self) -> &'static str {
        match self {
            Self::All => "*",
            Self::ContactsRead => "contacts:read",
            Self::ContactsWrite => "contacts:write",
            Self::ApiKeysManage => "api_keys:manage",
            Self::MembersManage => "members:manage",
            Self::WebhooksManage => "webhooks:manage",
        }
    }
}

/// `POST /v1/api-keys`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKeyBody {
    /// A name to recognise the key by.
    #[garde(length(chars, min = 1, max = 200))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
        example = "Zapier integration"
    )]
    pub name: String,
    /// What the key may do; at most what the creator may do.
    #[garde(length(min = 1, max = 6))]
    #[schema(min_items = 1, max_items = 6)]
    pub scopes: Vec<ScopeName>,
    /// When the key stops working (in the future); never when absent.
    #[garde(skip)]
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

/// An API key as listed: never the secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyResponse {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The key's public first characters (`crm_sk_AbCd`).
    pub prefix: String,
    /// The role it acts with (its creator's).
    pub role: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// The member whose session made it (null when another key made it).
    pub created_by: Option<Uuid>,
    /// The member the key answers to through its whole chain of keys: it acts at most
    /// with their current role, and is deleted when they leave the tenant.
    pub acts_for: Option<Uuid>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Expiry, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// Last use (to the minute).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
    /// Revocation time.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&ApiKeyRecord> for ApiKeyResponse {
    fn from(key: &ApiKeyRecord) -> Self {
        Self {
            id: key.id.as_uuid(),
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            role: key.role.as_str().to_owned(),
            scopes: key.scopes.names().to_vec(),
            created_by: key.created_by.map(|u| u.as_uuid()),
            acts_for: key.acts_for.map(|u| u.as_uuid()),
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// A created key, with the secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKeyResponse {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Public prefix.
    pub prefix: String,
    /// Role.
    pub role: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Expiry, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// The key (`crm_sk_…`). Store it now: it cannot be shown again.
    pub key: String,
}

/// Create an API key; the response carries the key, once.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = crate::envelope::Success<CreatedApiKeyResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn create<S: Store>(
    body: web::Json<CreateApiKeyBody>,
    auth: Authenticated<S>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_body(&body)?;
    let input = NewKeyInput {
        name: body.name,
        scopes: body.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        expires_at: body.expires_at,
    };
    let created = create_api_key(auth.uow, &auth.principal, input).await?;
    let record = &created.record;
    Ok(respond(
        StatusCode::CREATED,
        CreatedApiKeyResponse {
            id: record.id.as_uuid(),
            name: record.name.clone(),
            prefix: record.prefix.clone(),
            role: record.role.as_str().to_owned(),
            scopes: record.scopes.names().to_vec(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            key: created.secret.expose().to_owned(),
        },
    ))
}

/// List the tenant's API keys, newest first (revoked ones included, marked).
#[utoipa::path(get, path = "/v1/api-keys", params(super::SearchParams), tag = "api-keys", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every key", body = crate::envelope::Success<Vec<ApiKeyResponse>>),
        crate::schemas::CommonErrors,
    ))]
pub async fn list<S: Store>(
    auth: Authenticated<S>,
    params: web::Query<super::SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let term = params.into_inner().term()?;
    let keys = list_api_keys(auth.uow, &auth.principal).await?;
    let data: Vec<ApiKeyResponse> = keys
        .iter()
        .filter(|k| super::found(term.as_deref(), [k.name.as_str(), k.prefix.as_str()]))
        .map(ApiKeyResponse::from)
        .collect();
    Ok(respond_all(data))
}

/// One API key.
#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 200, description = "The key", body = crate::envelope::Success<ApiKeyResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn get<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let key = get_api_key(auth.uow, &auth.principal, ApiKeyId::from_uuid(*id)).await?;
    Ok(respond(StatusCode::OK, ApiKeyResponse::from(&key)))
}

/// Revoke an API key: it stops working at once, on every instance.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 200, description = "Revoked", body = crate::envelope::Success<DeletedResponse>),
        crate::schemas::CommonErrors,
    ))]
pub async fn revoke<S: Store>(
    auth: Authenticated<S>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    revoke_api_key(auth.uow, &auth.principal, ApiKeyId::from_uuid(*id)).await?;
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
#[openapi(paths(list, create, get, revoke))]
pub struct ApiDoc;

/// Registers the routes (under `/v1`).
pub fn configure<S: Store>(routes: &mut Routes<'_>) {
    routes
        .resource("/api-keys", |r| r.get(list::<S>).post(create::<S>))
        .resource("/api-keys/{id}", |r| r.get(get::<S>).delete(revoke::<S>));
}
