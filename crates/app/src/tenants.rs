//! Tenant provisioning: a new tenant with its owner and a first, owner-level API key.

use domain::token::{SecretToken, TokenKind};
use ports::{NewTenant, ProvisionedTenant, RepoError, TenantProvisioning};
use thiserror::Error;

use crate::secrets::{SecretGenerationFailed, generate};

/// Why a tenant could not be made.
#[derive(Debug, Error)]
pub enum ProvisionError {
    /// The name is blank, too long or holds control characters.
    #[error("tenant name {0}")]
    InvalidName(domain::text::TextError),
    /// The system's random source failed to produce a key (practically impossible).
    #[error(transparent)]
    KeyGeneration(#[from] SecretGenerationFailed),
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// A provisioned tenant and its first API key, in clear: shown once, never stored.
#[derive(Debug)]
pub struct TenantWithKey {
    /// Ids of the tenant and its owner.
    pub tenant: ProvisionedTenant,
    /// The owner API key.
    pub api_key: SecretToken,
}

/// Makes a fresh API key.
///
/// # Errors
/// [`ProvisionError::KeyGeneration`] if the random source failed.
pub fn generate_api_key() -> Result<SecretToken, ProvisionError> {
    Ok(generate(TokenKind::ApiKey)?)
}

/// Creates a tenant named `name` with an owner and an owner API key with every scope.
///
/// # Errors
/// [`ProvisionError`] for a bad name or a storage failure (then nothing was created).
pub async fn provision_tenant<P: TenantProvisioning>(
    provisioning: &P,
    name: &str,
    owner_email: Option<&str>,
) -> Result<TenantWithKey, ProvisionError> {
    let name = domain::identity::display_name(name).map_err(ProvisionError::InvalidName)?;
    let api_key = generate_api_key()?;
    let owner_email = owner_email.map_or_else(
        || {
            format!(
                "owner+{}@tenants.crm.invalid",
                uuid::Uuid::new_v4().simple()
            )
        },
        str::to_owned,
    );
    let tenant = provisioning
        .provision_tenant(NewTenant {
            name,
            owner_email,
            owner_name: "Owner".to_owned(),
            key_name: "Owner key".to_owned(),
            key_prefix: api_key.display_prefix().to_owned(),
            key_hash: api_key.hash(),
        })
        .await?;
    Ok(TenantWithKey { tenant, api_key })
}
