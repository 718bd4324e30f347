//! Authentication: from a presented credential to a principal and a unit of work scoped
//! to its tenant, in one storage call.

use std::time::Duration;

use domain::principal::Principal;
use domain::token::{SecretToken, TokenHash, TokenKind};
use ports::{RepoError, TenantStore};
use thiserror::Error;

/// Lifetimes of the identity features, set by configuration.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// Absolute lifetime of a login session.
    pub session_ttl: Duration,
    /// A session unused for this long stops working.
    pub session_idle_timeout: Duration,
    /// How long a demo sandbox lives before the sweep deletes it.
    pub demo_ttl: Duration,
    /// How long a QR code can be scanned and linked.
    pub qr_ttl: Duration,
    /// The slowest allowed polling of a QR login request, in seconds.
    pub qr_poll_interval_seconds: i32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            session_idle_timeout: Duration::from_secs(24 * 3600),
            demo_ttl: Duration::from_secs(24 * 3600),
            qr_ttl: Duration::from_secs(120),
            qr_poll_interval_seconds: 2,
        }
    }
}

/// What a caller presented as `Authorization: Bearer …`.
#[derive(Clone, Debug)]
pub enum Credential {
    /// An API key (`crm_sk_…`).
    ApiKey(SecretToken),
    /// A login session (`crm_st_…`).
    Session(SecretToken),
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
        if let Ok(key) = SecretToken::parse(TokenKind::ApiKey, token) {
            return Ok(Self::ApiKey(key));
        }
        SecretToken::parse(TokenKind::Session, token)
            .map(Self::Session)
            .map_err(|_| UnrecognisedCredential)
    }

    /// What storage looks the credential up by: its kind and the SHA-256 of the secret.
    /// Hashing is the costly part of recognising a credential, so a request does it once
    /// and passes the [`HashedCredential`] on (rate limits, authentication, idempotency).
    #[must_use]
    pub fn hashed(&self) -> HashedCredential {
        match self {
            Self::ApiKey(secret) => HashedCredential {
                kind: CredentialKind::ApiKey,
                hash: secret.hash(),
            },
            Self::Session(secret) => HashedCredential {
                kind: CredentialKind::Session,
                hash: secret.hash(),
            },
        }
    }
}

/// Which of our bearer credentials a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// An API key (`crm_sk_…`).
    ApiKey,
    /// A login session (`crm_st_…`).
    Session,
}

/// A recognised credential reduced to what authentication needs: its kind and its hash.
/// The secret in clear is not kept, so nothing that holds this value can leak it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashedCredential {
    /// API key or session.
    pub kind: CredentialKind,
    /// The SHA-256 of the whole token, as storage keeps it.
    pub hash: TokenHash,
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
    settings: &AuthSettings,
    credential: &Credential,
) -> Result<(Principal, S::Uow), AuthError> {
    authenticate_hashed(store, settings, &credential.hashed()).await
}

/// [`authenticate`] for a credential already hashed (the HTTP layer hashes each
/// request's credential once and shares the hash).
///
/// # Errors
/// [`AuthError::Unauthenticated`] when the credential is unknown, revoked or expired.
pub async fn authenticate_hashed<S: TenantStore>(
    store: &S,
    settings: &AuthSettings,
    credential: &HashedCredential,
) -> Result<(Principal, S::Uow), AuthError> {
    let found = match credential.kind {
        CredentialKind::ApiKey => store.begin_with_api_key(&credential.hash).await?,
        CredentialKind::Session => {
            let idle = i64::try_from(settings.session_idle_timeout.as_secs()).unwrap_or(i64::MAX);
            store.begin_with_session(&credential.hash, idle).await?
        }
    };
    found.ok_or(AuthError::Unauthenticated)
}
