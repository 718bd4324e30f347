//! Authentication: from a presented credential to a principal and a unit of work scoped
//! to its tenant, in one storage call.

use domain::api_key::ApiKeySecret;
use domain::principal::Principal;
use ports::{RepoError, TenantStore};
use thiserror::Error;

/// What a caller presented as `Authorization: Bearer …`.
#[derive(Clone, Debug)]
pub enum Credential {
    /// An API key (`crm_sk_…`).
    ApiKey(ApiKeySecret),
}

/// The bearer token is none of our credential formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("unrecognised credential")]
pub struct UnrecognisedCredential;

impl Credential {
    /// Recognises a bearer token by its prefix and shape. No storage is consulted.
    ///
    /// # Errors
    /// [`UnrecognisedCredential`] for anything that cannot be one of our tokens.
    pub fn from_bearer(token: &str) -> Result<Self, UnrecognisedCredential> {
        ApiKeySecret::parse(token)
            .map(Self::ApiKey)
            .map_err(|_| UnrecognisedCredential)
    }
}

/// Why a request could not be authenticated.
#[derive(Debug, Error)]
pub enum AuthError {
    /// No such credential, or revoked, or expired: deliberately indistinguishable.
    #[error("missing or invalid credentials")]
    Unauthenticated,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Resolves the credential and opens a unit of work scoped to its tenant.
///
/// # Errors
/// [`AuthError::Unauthenticated`] when the credential is unknown, revoked or expired.
pub async fn authenticate<S: TenantStore>(
    store: &S,
    credential: &Credential,
) -> Result<(Principal, S::Uow), AuthError> {
    match credential {
        Credential::ApiKey(secret) => store
            .begin_with_api_key(&secret.hash())
            .await?
            .ok_or(AuthError::Unauthenticated),
    }
}
