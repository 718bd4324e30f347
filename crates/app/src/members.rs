//! Members of a tenant: list, add (an existing user by e-mail, or a new one), change role,
//! remove. Admins and owners only; nobody hands out more than their own role; the last
//! owner can be neither removed nor demoted.

use domain::FieldErrors;
use domain::contact::Email;
use domain::identity::{Member, NewUser, display_name};
use domain::ids::UserId;
use domain::password::Password;
use domain::principal::{Forbidden, Permission, Principal, Role, Scopes};
use ports::{IdentityWriteError, PasswordHasher, PreAuthStore, RepoError, UnitOfWork};
use thiserror::Error;

/// Every way a member use case can fail.
#[derive(Debug, Error)]
pub enum MemberError {
    /// Not an admin or owner, or giving/touching a role above one's own.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// Bad input.
    #[error("invalid member: {0}")]
    Invalid(FieldErrors),
    /// No such member in this tenant.
    #[error("member not found")]
    NotFound,
    /// The user is already a member.
    #[error("this user is already a member of the tenant")]
    AlreadyMember,
    /// Demo sandboxes cannot add people: an identity made there would outlive the sandbox.
    #[error("members cannot be added to a demo sandbox")]
    DemoSandbox,
    /// The change would leave the tenant without an owner.
    #[error("the last owner can be neither removed nor demoted")]
    LastOwner,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<IdentityWriteError> for MemberError {
    fn from(error: IdentityWriteError) -> Self {
        match error {
            IdentityWriteError::AlreadyMember => Self::AlreadyMember,
            IdentityWriteError::EmailTaken => Self::AlreadyMember,
            IdentityWriteError::Repo(repo) => Self::Repo(repo),
        }
    }
}

/// A member to add, unchecked.
#[derive(Clone, Debug)]
pub struct AddMemberInput {
    /// Their e-mail address.
    pub email: String,
    /// Their name (used when the user is created).
    pub name: String,
    /// Their role here.
    pub role: Role,
    /// Their password, required when no user has this e-mail yet.
    pub password: Option<String>,
}

fn require_assignable(principal: &Principal, role: Role) -> Result<(), MemberError> {
    if principal.role.can_assign(role) {
        Ok(())
    } else {
        Err(MemberError::Forbidden(Forbidden(Permission::MembersManage)))
    }
}

/// Creating people and handing out admin power are as strong as every scope at once (a new
/// user with a known password is a full session), so a narrowly scoped key cannot do them.
fn require_full_scopes(principal: &Principal) -> Result<(), MemberError> {
    if principal.scopes.covers(&Scopes::all()) {
        Ok(())
    } else {
        Err(MemberError::Forbidden(Forbidden(Permission::MembersManage)))
    }
}

/// Every member, oldest first.
///
/// # Errors
/// [`MemberError::Forbidden`], storage.
pub async fn list_members<U: UnitOfWork>(
    mut uow: U,
    principal: &Principal,
) -> Result<Vec<Member>, MemberError> {
    principal.require(Permission::MembersManage)?;
    let members = uow.list_members().await?;
    uow.commit().await?;
    Ok(members)
}

/// Adds an existing user by e-mail, or creates one with the given password.
///
/// # Errors
/// [`MemberError::Forbidden`], [`MemberError::Invalid`], [`MemberError::AlreadyMember`], storage.
pub async fn add_member<U: UnitOfWork, P: PreAuthStore>(
    mut uow: U,
    users: &P,
    hasher: &dyn PasswordHasher,
    principal: &Principal,
    input: AddMemberInput,
) -> Result<Member, MemberError> {
    principal.require(Permission::MembersManage)?;
    require_full_scopes(principal)?;
    require_assignable(principal, input.role)?;
    if uow.tenant().await?.expires_at.is_some() {
        return Err(MemberError::DemoSandbox);
    }
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&input.email));
    let name = errors.check("name", display_name(&input.name));
    let (Some(email), Some(name)) = (email, name) else {
        return Err(MemberError::Invalid(errors));
    };
    let user_id = match users.find_user_id(email.as_str()).await? {
        Some(existing) => existing,
        None => {
            let Some(raw) = input.password.as_deref() else {
                errors.add("password", "is required to create a new user");
                return Err(MemberError::Invalid(errors));
            };
            let password = Password::new(raw).map_err(|e| {
                let mut fields = FieldErrors::new();
                fields.add("password", e.to_string());
                MemberError::Invalid(fields)
            })?;
            let hash = hasher.hash(&password).await?;
            let id = UserId::new();
            uow.insert_user(&NewUser {
                id,
                email,
                name,
                password_hash: Some(hash),
            })
            .await?;
            id
        }
    };
    uow.insert_membership(user_id, input.role).await?;
    let member = uow
        .get_member(user_id, false)
        .await?
        .ok_or_else(|| RepoError::Unexpected("new member not found".into()))?;
    uow.commit().await?;
    Ok(member)
}

async fn ensure_not_last_owner<U: UnitOfWork>(
    uow: &mut U,
    member: &Member,
) -> Result<(), MemberError> {
    if member.role == Role::Owner {
        let owners = uow.lock_owners().await?;
        if owners.iter().all(|owner| *owner == member.user_id) {
            return Err(MemberError::LastOwner);
        }
    }
    Ok(())
}

/// Changes a member's role.
///
/// # Errors
/// [`MemberError::Forbidden`], [`MemberError::NotFound`], [`MemberError::LastOwner`], storage.
pub async fn change_member_role<U: UnitOfWork>(
    mut uow: U,
    principal: &Principal,
    user: UserId,
    role: Role,
) -> Result<Member, MemberError> {
    principal.require(Permission::MembersManage)?;
    require_assignable(principal, role)?;
    let member = uow
        .get_member(user, true)
        .await?
        .ok_or(MemberError::NotFound)?;
    require_assignable(principal, member.role)?;
    if member.role == role {
        uow.commit().await?;
        return Ok(member);
    }
    ensure_not_last_owner(&mut uow, &member).await?;
    let updated = uow
        .set_member_role(user, role)
        .await?
        .ok_or(MemberError::NotFound)?;
    uow.commit().await?;
    Ok(updated)
}

/// Removes a member (their sessions end with the membership).
///
/// # Errors
/// [`MemberError::Forbidden`], [`MemberError::NotFound`], [`MemberError::LastOwner`], storage.
pub async fn remove_member<U: UnitOfWork>(
    mut uow: U,
    principal: &Principal,
    user: UserId,
) -> Result<(), MemberError> {
    principal.require(Permission::MembersManage)?;
    let member = uow
        .get_member(user, true)
        .await?
        .ok_or(MemberError::NotFound)?;
    require_assignable(principal, member.role)?;
    ensure_not_last_owner(&mut uow, &member).await?;
    if !uow.delete_member(user).await? {
        return Err(MemberError::NotFound);
    }
    uow.commit().await?;
    Ok(())
}
