//! API key management: create (the secret is shown once), list, get, revoke.

use domain::FieldErrors;
use domain::identity::{ApiKeyRecord, NewApiKey, display_name};
use domain::ids::ApiKeyId;
use domain::principal::{Forbidden, Permission, Principal, Scopes};
use domain::token::{SecretToken, TokenKind};
use ports::{Clock, IdentityRepository, RepoError, UnitOfWork};
use thiserror::Error;
use time::OffsetDateTime;

use crate::secrets::generate;

/// Every way an API key use case can fail.
#[derive(Debug, Error)]
pub enum ApiKeyError {
    /// Role or scopes do not allow managing keys, or the key would exceed the creator's scopes.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// Bad name, scopes or expiry.
    #[error("invalid API key: {0}")]
    Invalid(FieldErrors),
    /// No such key in this tenant.
    #[error("API key not found")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// A request for a new key, unchecked.
#[derive(Clone, Debug)]
pub struct NewKeyInput {
    /// Human name.
    pub name: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Optional expiry, in the future.
    pub expires_at: Option<OffsetDateTime>,
}

/// A created key: its record and the secret, shown once.
#[derive(Debug)]
pub struct CreatedKey {
    /// As listed.
    pub record: ApiKeyRecord,
    /// The key in clear.
    pub secret: SecretToken,
}

/// Creates a key acting with the creator's role and at most the creator's scopes.
///
/// # Errors
/// [`ApiKeyError::Forbidden`], [`ApiKeyError::Invalid`], storage.
pub async fn create_api_key<U: UnitOfWork + Clock + IdentityRepository>(
    mut uow: U,
    principal: &Principal,
    input: NewKeyInput,
) -> Result<CreatedKey, ApiKeyError> {
    principal.require(Permission::ApiKeysManage)?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", display_name(&input.name));
    let scopes = errors.check("scopes", Scopes::parse(&input.scopes));
    if let Some(expires_at) = input.expires_at
        && expires_at <= uow.now()
    {
        errors.add("expiresAt", "must be in the future");
    }
    let (Some(name), Some(scopes)) = (name, scopes) else {
        return Err(ApiKeyError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(ApiKeyError::Invalid(errors));
    }
    if !principal.scopes.covers(&scopes) {
        return Err(ApiKeyError::Forbidden(Forbidden(Permission::ApiKeysManage)));
    }
    let secret = generate(TokenKind::ApiKey).map_err(|e| RepoError::Unexpected(e.to_string()))?;
    let record = uow
        .insert_api_key(&NewApiKey {
            id: ApiKeyId::new(),
            name,
            prefix: secret.display_prefix().to_owned(),
            key_hash: secret.hash(),
            role: principal.role,
            scopes,
            created_by: principal.user_id(),
            acts_for: principal.acting_for(),
            expires_at: input.expires_at,
        })
        .await?;
    uow.commit().await?;
    Ok(CreatedKey { record, secret })
}

/// Every key of the tenant, newest first.
///
/// # Errors
/// [`ApiKeyError::Forbidden`], storage.
pub async fn list_api_keys<U: UnitOfWork + IdentityRepository>(
    mut uow: U,
    principal: &Principal,
) -> Result<Vec<ApiKeyRecord>, ApiKeyError> {
    principal.require(Permission::ApiKeysManage)?;
    let keys = uow.list_api_keys().await?;
    uow.commit().await?;
    Ok(keys)
}

/// One key.
///
/// # Errors
/// [`ApiKeyError::Forbidden`], [`ApiKeyError::NotFound`], storage.
pub async fn get_api_key<U: UnitOfWork + IdentityRepository>(
    mut uow: U,
    principal: &Principal,
    id: ApiKeyId,
) -> Result<ApiKeyRecord, ApiKeyError> {
    principal.require(Permission::ApiKeysManage)?;
    let key = uow.get_api_key(id).await?.ok_or(ApiKeyError::NotFound)?;
    uow.commit().await?;
    Ok(key)
}

/// Revokes a key: it stops working at once, on every instance (keys are not cached).
///
/// # Errors
/// [`ApiKeyError::Forbidden`], [`ApiKeyError::NotFound`], storage.
pub async fn revoke_api_key<U: UnitOfWork + IdentityRepository>(
    mut uow: U,
    principal: &Principal,
    id: ApiKeyId,
) -> Result<ApiKeyRecord, ApiKeyError> {
    principal.require(Permission::ApiKeysManage)?;
    let key = uow.revoke_api_key(id).await?.ok_or(ApiKeyError::NotFound)?;
    uow.commit().await?;
    Ok(key)
}
