//! Members of a tenant: list, change role, remove. Admins and owners only; nobody hands
//! out more than their own role; the last owner can be neither removed nor demoted.
//! People join by invitation only (`crate::invitations`).

use domain::identity::Member;
use domain::ids::UserId;
use domain::principal::{Forbidden, Permission, Principal, Role};
use ports::{IdentityRepository, RepoError, UnitOfWork};
use thiserror::Error;

/// Every way a member use case can fail.
#[derive(Debug, Error)]
pub enum MemberError {
    /// Not an admin or owner, or giving/touching a role above one's own.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// No such member in this tenant.
    #[error("member not found")]
    NotFound,
    /// The change would leave the tenant without an owner.
    #[error("the last owner can be neither removed nor demoted")]
    LastOwner,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

fn require_assignable(principal: &Principal, role: Role) -> Result<(), MemberError> {
    if principal.role.can_assign(role) {
        Ok(())
    } else {
        Err(MemberError::Forbidden(Forbidden(Permission::MembersManage)))
    }
}

/// Every member, oldest first.
///
/// # Errors
/// [`MemberError::Forbidden`], storage.
pub async fn list_members<U: UnitOfWork + IdentityRepository>(
    mut uow: U,
    principal: &Principal,
) -> Result<Vec<Member>, MemberError> {
    principal.require(Permission::MembersManage)?;
    let members = uow.list_members().await?;
    uow.commit().await?;
    Ok(members)
}

async fn ensure_not_last_owner<U: UnitOfWork + IdentityRepository>(
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
pub async fn change_member_role<U: UnitOfWork + IdentityRepository>(
    mut uow: U,
    principal: &Principal,
    user: UserId,
    role: Role,
) -> Result<Member, MemberError> {
    // The same rules as inviting with that role: admin power only from a full-scope
    // credential, never above one's own role.
    crate::invitations::require_may_grant(principal, role)?;
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
pub async fn remove_member<U: UnitOfWork + IdentityRepository>(
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
