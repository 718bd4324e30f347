//! Invitations: the only way into a tenant besides sign-up (SPEC §4).
//!
//! An admin invites an address with a role and gets a single-use `crm_inv_…` token, shown
//! once; the tenant's own system mails it (the `invitation.created` event). Whoever
//! accepts proves control of the account: a new account sets its own password, an
//! existing one gives its current password or comes with its own session. Nobody ever
//! chooses a password for someone else, and creating an invitation answers the same
//! whether or not the address has an account.

use domain::FieldErrors;
use domain::contact::Email;
use domain::identity::{
    INVITATION_TTL, Invitation, InvitationLookup, NewInvitation, NewUser, display_name,
};
use domain::ids::{InvitationId, UserId};
use domain::password::Password;
use domain::principal::{Actor, Forbidden, Permission, Principal, Role};
use domain::token::{SecretToken, TokenKind};
use ports::{
    Clock, IdentityRepository, IdentityWriteError, InvitationRepository, PasswordHasher,
    PreAuthStore, RepoError, TenantStore, UnitOfWork,
};
use thiserror::Error;

use crate::auth::{AuthSettings, Credential, authenticate};
use crate::identity::{ClientInfo, SessionGrant, UserSummary, open_session};
use crate::secrets::generate;

/// Every way an invitation use case can fail.
#[derive(Debug, Error)]
pub enum InvitationError {
    /// Not allowed to invite (role, scopes, or a role above one's own).
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// Bad input.
    #[error("invalid invitation: {0}")]
    Invalid(FieldErrors),
    /// No such invitation; or, on acceptance, none that is pending and unexpired:
    /// deliberately one answer.
    #[error("invitation not found, already used, revoked or expired")]
    NotFound,
    /// Revoking an invitation that was already accepted or revoked.
    #[error("the invitation was already accepted or revoked")]
    NotPending,
    /// Demo sandboxes invite nobody: an identity made there would outlive the sandbox.
    #[error("nobody can be invited into a demo sandbox")]
    DemoSandbox,
    /// The account is already a member of the inviting tenant.
    #[error("this account is already a member of the tenant")]
    AlreadyMember,
    /// The account exists and the password given is not its password.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// The session presented belongs to another account than the one invited, or the
    /// credential is an API key: only the invited person can accept.
    #[error("this invitation is for another account")]
    WrongAccount,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<IdentityWriteError> for InvitationError {
    fn from(error: IdentityWriteError) -> Self {
        match error {
            // Another acceptance created the account or membership first.
            IdentityWriteError::EmailTaken | IdentityWriteError::AlreadyMember => {
                Self::AlreadyMember
            }
            IdentityWriteError::Repo(repo) => Self::Repo(repo),
        }
    }
}

/// An invitation to create, unchecked.
#[derive(Clone, Debug)]
pub struct InviteInput {
    /// The address to invite.
    pub email: String,
    /// The role the invitee gets.
    pub role: Role,
}

/// A created invitation and its token, shown once.
#[derive(Debug)]
pub struct CreatedInvitation {
    /// As listed.
    pub invitation: Invitation,
    /// The token in clear, for the invitee only.
    pub token: SecretToken,
}

/// Role rules for handing out a role: members management, never above one's own role,
/// and admin or owner power only from a full-scope credential.
///
/// # Errors
/// [`Forbidden`] naming `members:manage`.
pub fn require_may_grant(principal: &Principal, role: Role) -> Result<(), Forbidden> {
    principal.require(Permission::MembersManage)?;
    let full_scope_needed = role.rank() >= Role::Admin.rank();
    if !principal.role.can_assign(role) || (full_scope_needed && !principal.has_full_scopes()) {
        return Err(Forbidden(Permission::MembersManage));
    }
    Ok(())
}

/// Invites `input.email` with `input.role`. Answers the same whether or not the address
/// has an account; nothing is looked up.
///
/// # Errors
/// [`InvitationError::Forbidden`], [`InvitationError::Invalid`],
/// [`InvitationError::DemoSandbox`], storage.
pub async fn create_invitation<
    U: UnitOfWork + Clock + IdentityRepository + InvitationRepository,
>(
    mut uow: U,
    principal: &Principal,
    input: InviteInput,
) -> Result<CreatedInvitation, InvitationError> {
    require_may_grant(principal, input.role)?;
    let email = Email::parse(&input.email).map_err(|e| {
        let mut errors = FieldErrors::new();
        errors.add("email", e.to_string());
        InvitationError::Invalid(errors)
    })?;
    if uow.tenant().await?.expires_at.is_some() {
        return Err(InvitationError::DemoSandbox);
    }
    let token =
        generate(TokenKind::Invitation).map_err(|e| RepoError::Unexpected(e.to_string()))?;
    let invitation = uow
        .insert_invitation(&NewInvitation {
            id: InvitationId::new(),
            email,
            role: input.role,
            token_hash: token.hash(),
            invited_by: principal.acting_for(),
            expires_at: uow.now() + INVITATION_TTL,
        })
        .await?;
    uow.commit().await?;
    Ok(CreatedInvitation { invitation, token })
}

/// Every invitation of the tenant, newest first.
///
/// # Errors
/// [`InvitationError::Forbidden`], storage.
pub async fn list_invitations<U: UnitOfWork + InvitationRepository>(
    mut uow: U,
    principal: &Principal,
) -> Result<Vec<Invitation>, InvitationError> {
    principal.require(Permission::MembersManage)?;
    let invitations = uow.list_invitations().await?;
    uow.commit().await?;
    Ok(invitations)
}

/// Revokes a pending invitation: its token stops working at once.
///
/// # Errors
/// [`InvitationError::Forbidden`], [`InvitationError::NotFound`],
/// [`InvitationError::NotPending`], storage.
pub async fn revoke_invitation<U: UnitOfWork + InvitationRepository>(
    mut uow: U,
    principal: &Principal,
    id: InvitationId,
) -> Result<(), InvitationError> {
    principal.require(Permission::MembersManage)?;
    match uow.revoke_invitation(id).await? {
        None => Err(InvitationError::NotFound),
        Some(false) => Err(InvitationError::NotPending),
        Some(true) => {
            uow.commit().await?;
            Ok(())
        }
    }
}

/// What the person accepting sends.
#[derive(Clone, Debug)]
pub struct AcceptInput {
    /// The `crm_inv_…` token.
    pub token: String,
    /// A name for a new account (default: the address's local part).
    pub name: Option<String>,
    /// A new account's password; or an existing account's current password.
    pub password: Option<String>,
}

/// Who is accepting: an existing account (proved), or a new one to create.
enum Acceptor {
    Existing(UserSummary),
    New(NewUser),
}

fn password_required() -> InvitationError {
    let mut errors = FieldErrors::new();
    errors.add(
        "password",
        "is required: the account's current password, or a new one for a new account",
    );
    InvitationError::Invalid(errors)
}

/// Proves the accepting person controls the invited address's account, or prepares the
/// new account: all before any transaction is open (password hashing is slow).
async fn acceptor<S: TenantStore + PreAuthStore>(
    store: &S,
    hasher: &dyn PasswordHasher,
    settings: &AuthSettings,
    invitation: &InvitationLookup,
    input: &AcceptInput,
    session: Option<&Credential>,
) -> Result<Acceptor, InvitationError> {
    let account = store.find_login(&invitation.email).await?;
    if let Some(credential) = session {
        let Credential::Session(_) = credential else {
            return Err(InvitationError::WrongAccount);
        };
        let (principal, uow) = authenticate(store, settings, credential)
            .await
            .map_err(|_| InvitationError::InvalidCredentials)?;
        // Only the session's identity was needed; nothing is done in its tenant.
        drop(uow);
        return match (&principal.actor, account) {
            (
                Actor::User {
                    id, email, name, ..
                },
                Some(account),
            ) if *id == account.user_id => Ok(Acceptor::Existing(UserSummary {
                id: *id,
                email: email.clone(),
                name: name.clone(),
            })),
            _ => Err(InvitationError::WrongAccount),
        };
    }
    let raw = input.password.as_deref().ok_or_else(password_required)?;
    match account {
        Some(account) => {
            let presented = Password::presented(raw).ok_or(InvitationError::InvalidCredentials)?;
            let stored = account
                .password_hash
                .as_deref()
                .unwrap_or_else(|| hasher.dummy_hash());
            let verified = hasher.verify(&presented, stored).await;
            if !verified || account.password_hash.is_none() {
                return Err(InvitationError::InvalidCredentials);
            }
            Ok(Acceptor::Existing(UserSummary {
                id: account.user_id,
                email: account.email,
                name: account.name,
            }))
        }
        None => {
            let mut errors = FieldErrors::new();
            let email = errors.check("email", Email::parse(&invitation.email));
            let default_name = invitation
                .email
                .split('@')
                .next()
                .unwrap_or(&invitation.email);
            let name = errors.check(
                "name",
                display_name(input.name.as_deref().unwrap_or(default_name)),
            );
            let password = errors.check("password", Password::new(raw));
            let (Some(email), Some(name), Some(password)) = (email, name, password) else {
                return Err(InvitationError::Invalid(errors));
            };
            let password_hash = hasher.hash(&password).await?;
            Ok(Acceptor::New(NewUser {
                id: UserId::new(),
                email,
                name,
                password_hash: Some(password_hash),
            }))
        }
    }
}

/// Accepts an invitation: the account (existing and proved, or new with its own
/// password) becomes a member with the invited role, and gets a session there, answered
/// like a login. The token works once.
///
/// # Errors
/// [`InvitationError::NotFound`] for any token that is not a live invitation,
/// [`InvitationError::Invalid`], [`InvitationError::InvalidCredentials`],
/// [`InvitationError::WrongAccount`], [`InvitationError::AlreadyMember`], storage.
pub async fn accept_invitation<S: TenantStore + PreAuthStore>(
    store: &S,
    hasher: &dyn PasswordHasher,
    settings: &AuthSettings,
    input: AcceptInput,
    session: Option<&Credential>,
    client: &ClientInfo,
) -> Result<SessionGrant, InvitationError> {
    let token = SecretToken::parse(TokenKind::Invitation, input.token.trim())
        .map_err(|_| InvitationError::NotFound)?;
    let invitation = store
        .find_invitation(&token.hash())
        .await?
        .ok_or(InvitationError::NotFound)?;
    let acceptor = acceptor(store, hasher, settings, &invitation, &input, session).await?;
    let mut uow = store.begin_for_tenant(invitation.tenant_id).await?;
    let user = match acceptor {
        Acceptor::Existing(user) => user,
        Acceptor::New(new_user) => {
            uow.insert_user(&new_user).await?;
            UserSummary {
                id: new_user.id,
                email: new_user.email.as_str().to_owned(),
                name: new_user.name,
            }
        }
    };
    let claimed = uow
        .claim_invitation(invitation.id, user.id)
        .await?
        .ok_or(InvitationError::NotFound)?;
    uow.insert_membership(user.id, claimed.role).await?;
    let tenant = uow.tenant().await?;
    let (token, expires_at) = open_session(&mut uow, user.id, settings, client)
        .await
        .map_err(|error| match error {
            crate::identity::IdentityError::Repo(repo) => InvitationError::Repo(repo),
            other => InvitationError::Repo(RepoError::Unexpected(other.to_string())),
        })?;
    uow.commit().await?;
    Ok(SessionGrant {
        tenant,
        user,
        token,
        expires_at,
    })
}
