//! Sign-up, login, logout and "who am I".

use domain::FieldErrors;
use domain::contact::Email;
use domain::identity::{NewSession, NewUser, TenantInfo, display_name};
use domain::ids::{SessionId, TenantId, UserId};
use domain::password::Password;
use domain::principal::{Actor, Principal, Role};
use domain::token::{SecretToken, TokenKind};
use ports::{
    Clock, IdentityRepository, IdentityWriteError, PasswordHasher, PreAuthStore, RepoError,
    TenantStore, UnitOfWork,
};
use thiserror::Error;
use time::OffsetDateTime;

use crate::auth::AuthSettings;
use crate::secrets::generate;

/// Every way an identity use case can fail.
#[derive(Debug, Error)]
pub enum IdentityError {
    /// The input breaks a rule.
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    /// Sign-up with an e-mail address that already has an account.
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    /// Login failed: unknown e-mail or wrong password, deliberately indistinguishable.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// The password was right but the user is not a member of the requested tenant (or
    /// of any tenant).
    #[error("you are not a member of this tenant")]
    NotAMember,
    /// The endpoint needs a person's session, not an API key.
    #[error("this needs a user session, not an API key")]
    SessionRequired,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<IdentityWriteError> for IdentityError {
    fn from(error: IdentityWriteError) -> Self {
        match error {
            IdentityWriteError::EmailTaken => Self::EmailTaken,
            IdentityWriteError::AlreadyMember => Self::Repo(RepoError::Unexpected(
                "a new user is already a member".into(),
            )),
            IdentityWriteError::Repo(repo) => Self::Repo(repo),
        }
    }
}

impl From<crate::secrets::SecretGenerationFailed> for IdentityError {
    fn from(error: crate::secrets::SecretGenerationFailed) -> Self {
        Self::Repo(RepoError::Unexpected(error.to_string()))
    }
}

/// A user as the API shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSummary {
    /// Id.
    pub id: UserId,
    /// E-mail.
    pub email: String,
    /// Name.
    pub name: String,
}

/// A new session, its token in clear (shown once), with its tenant and user.
#[derive(Debug)]
pub struct SessionGrant {
    /// The tenant the session is bound to.
    pub tenant: TenantInfo,
    /// Who logged in.
    pub user: UserSummary,
    /// The bearer token.
    pub token: SecretToken,
    /// When it stops working at the latest.
    pub expires_at: OffsetDateTime,
}

/// Where a request came from, recorded with sessions and shown to QR scanners.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// `User-Agent`, cut to 300 characters.
    pub user_agent: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
}

/// Sign-up input, unchecked.
#[derive(Clone, Debug)]
pub struct SignupInput {
    /// The new tenant's name.
    pub tenant_name: String,
    /// The person's name.
    pub name: String,
    /// Their e-mail address.
    pub email: String,
    /// Their password.
    pub password: String,
}

/// Adds a session for `user` to the unit of work and returns its token.
pub(crate) async fn open_session<U: UnitOfWork + Clock + IdentityRepository>(
    uow: &mut U,
    user: UserId,
    settings: &AuthSettings,
    client: &ClientInfo,
) -> Result<(SecretToken, OffsetDateTime), IdentityError> {
    let token = generate(TokenKind::Session)?;
    let expires_at = uow.now() + settings.session_ttl;
    uow.insert_session(&NewSession {
        id: SessionId::new(),
        user_id: user,
        token_hash: token.hash(),
        expires_at,
        user_agent: client.user_agent.clone(),
        ip: client.ip.clone(),
    })
    .await?;
    Ok((token, expires_at))
}

/// Creates a tenant, its owner (this person) and a session for them.
///
/// # Errors
/// [`IdentityError::Invalid`] with every bad field, [`IdentityError::EmailTaken`].
pub async fn signup<S: TenantStore>(
    store: &S,
    hasher: &dyn PasswordHasher,
    settings: &AuthSettings,
    input: SignupInput,
    client: &ClientInfo,
) -> Result<SessionGrant, IdentityError> {
    let mut errors = FieldErrors::new();
    let tenant_name = errors.check("tenantName", display_name(&input.tenant_name));
    let name = errors.check("name", display_name(&input.name));
    let email = errors.check("email", Email::parse(&input.email));
    let password = errors.check("password", Password::new(&input.password));
    let (Some(tenant_name), Some(name), Some(email), Some(password)) =
        (tenant_name, name, email, password)
    else {
        return Err(IdentityError::Invalid(errors));
    };
    let password_hash = hasher.hash(&password).await?;
    let mut uow = store.begin_for_tenant(TenantId::new()).await?;
    let tenant = uow.insert_tenant(&tenant_name, None).await?;
    let user = UserSummary {
        id: UserId::new(),
        email: email.as_str().to_owned(),
        name,
    };
    uow.insert_user(&NewUser {
        id: user.id,
        email,
        name: user.name.clone(),
        password_hash: Some(password_hash),
    })
    .await?;
    uow.insert_membership(user.id, Role::Owner).await?;
    let (token, expires_at) = open_session(&mut uow, user.id, settings, client).await?;
    uow.commit().await?;
    Ok(SessionGrant {
        tenant,
        user,
        token,
        expires_at,
    })
}

/// Login input, unchecked.
#[derive(Clone, Debug)]
pub struct LoginInput {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: String,
    /// The tenant to log into, for people in several; default: their oldest membership.
    pub tenant_id: Option<TenantId>,
}

/// Checks e-mail and password and opens a session in one of the user's tenants.
///
/// Unknown e-mail, user without password and wrong password all do exactly one password
/// verification (against a dummy hash when there is no real one) and answer the same.
///
/// # Errors
/// [`IdentityError::InvalidCredentials`], [`IdentityError::NotAMember`], storage.
pub async fn login<S: TenantStore + PreAuthStore>(
    store: &S,
    hasher: &dyn PasswordHasher,
    settings: &AuthSettings,
    input: LoginInput,
    client: &ClientInfo,
) -> Result<SessionGrant, IdentityError> {
    let password = Password::presented(&input.password);
    let candidate = match Email::parse(&input.email) {
        Ok(email) => store.find_login(email.as_str()).await?,
        Err(_) => None,
    };
    let stored = candidate
        .as_ref()
        .and_then(|c| c.password_hash.as_deref())
        .unwrap_or_else(|| hasher.dummy_hash());
    let verified = match &password {
        Some(password) => hasher.verify(password, stored).await,
        None => {
            // Over-long input: still do the work, on a bounded stand-in.
            let stand_in = Password::presented("").ok_or(IdentityError::InvalidCredentials)?;
            let _ = hasher.verify(&stand_in, hasher.dummy_hash()).await;
            false
        }
    };
    let candidate = match candidate {
        Some(c) if verified && c.password_hash.is_some() => c,
        _ => return Err(IdentityError::InvalidCredentials),
    };
    let membership = match input.tenant_id {
        Some(wanted) => candidate
            .memberships
            .iter()
            .find(|(tenant, _, _)| *tenant == wanted),
        None => candidate.memberships.first(),
    };
    let Some((tenant_id, _, _)) = membership else {
        return Err(IdentityError::NotAMember);
    };
    let mut uow = store.begin_for_tenant(*tenant_id).await?;
    let tenant = uow.tenant().await?;
    let (token, expires_at) = open_session(&mut uow, candidate.user_id, settings, client).await?;
    uow.commit().await?;
    Ok(SessionGrant {
        tenant,
        user: UserSummary {
            id: candidate.user_id,
            email: candidate.email,
            name: candidate.name,
        },
        token,
        expires_at,
    })
}

/// Revokes the session the request came with.
///
/// # Errors
/// [`IdentityError::SessionRequired`] for API keys; storage.
pub async fn logout<U: UnitOfWork + IdentityRepository>(
    mut uow: U,
    principal: &Principal,
) -> Result<(), IdentityError> {
    let Actor::User { session_id, .. } = &principal.actor else {
        return Err(IdentityError::SessionRequired);
    };
    uow.revoke_session(*session_id).await?;
    uow.commit().await?;
    Ok(())
}
