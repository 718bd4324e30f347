//! Who is calling, inside which tenant, and what they may do.
//!
//! A [`Principal`] is produced once per request by authentication and handed to every use
//! case, which asks it for a [`Permission`] before touching data.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::ids::{ApiKeyId, SessionId, TenantId, UserId};

/// A member's role in a tenant. Ordered from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including the tenant itself.
    Owner,
    /// CRM data plus API keys, webhooks and members.
    Admin,
    /// Reads and writes CRM data.
    Member,
    /// Reads CRM data.
    Viewer,
}

impl Role {
    /// The stored and serialised name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }

    /// Whether the role by itself allows `permission`.
    #[must_use]
    pub const fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::ContactsRead => true,
            Permission::ContactsWrite => !matches!(self, Self::Viewer),
            Permission::ApiKeysManage | Permission::MembersManage | Permission::WebhooksManage => {
                matches!(self, Self::Owner | Self::Admin)
            }
        }
    }

    /// Higher is more powerful.
    #[must_use]
    pub const fn rank(self) -> u8 {
        match self {
            Self::Owner => 3,
            Self::Admin => 2,
            Self::Member => 1,
            Self::Viewer => 0,
        }
    }

    /// Whether someone with this role may give `target` to somebody: never more than one
    /// holds, and only owners make owners.
    #[must_use]
    pub const fn can_assign(self, target: Role) -> bool {
        target.rank() <= self.rank()
    }
}

/// A role name that is not one of ours.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown role `{0}`")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            "viewer" => Ok(Self::Viewer),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a use case needs to be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// List and read contacts.
    ContactsRead,
    /// Create, change and delete contacts.
    ContactsWrite,
    /// Create, list and revoke API keys.
    ApiKeysManage,
    /// Add, change and remove members.
    MembersManage,
    /// Manage webhook subscriptions.
    WebhooksManage,
}

impl Permission {
    /// The API key scope that grants this permission.
    #[must_use]
    pub const fn scope(self) -> &'static str {
        match self {
            Self::ContactsRead => "contacts:read",
            Self::ContactsWrite => "contacts:write",
            Self::ApiKeysManage => "api_keys:manage",
            Self::MembersManage => "members:manage",
            Self::WebhooksManage => "webhooks:manage",
        }
    }
}

/// Every scope an API key may carry.
pub const KNOWN_SCOPES: &[&str] = &[
    "*",
    "contacts:read",
    "contacts:write",
    "api_keys:manage",
    "members:manage",
    "webhooks:manage",
];

/// The scopes of an API key: `*`, or a list such as `contacts:read`. A `:write` scope
/// implies the matching `:read`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Every scope: what a session or an owner key has.
    #[must_use]
    pub fn all() -> Self {
        Self(vec!["*".to_owned()])
    }

    /// Wraps stored scope names.
    #[must_use]
    pub fn from_names(names: Vec<String>) -> Self {
        Self(names)
    }

    /// The scope names.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Parses requested scopes: known names only, at least one, de-duplicated.
    ///
    /// # Errors
    /// The first unknown scope, or an empty list.
    pub fn parse(requested: &[String]) -> Result<Self, UnknownScope> {
        if requested.is_empty() {
            return Err(UnknownScope(String::new()));
        }
        let mut scopes: Vec<String> = Vec::with_capacity(requested.len());
        for scope in requested {
            if !KNOWN_SCOPES.contains(&scope.as_str()) {
                return Err(UnknownScope(scope.clone()));
            }
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        Ok(Self(scopes))
    }

    /// Whether every scope of `other` is already granted by these scopes: a key may only
    /// hand out what it holds.
    #[must_use]
    pub fn covers(&self, other: &Scopes) -> bool {
        if self.0.iter().any(|s| s == "*") {
            return true;
        }
        other.0.iter().all(|scope| {
            scope != "*"
                && (self.0.contains(scope)
                    || scope.strip_suffix(":read").is_some_and(|resource| {
                        self.0
                            .iter()
                            .any(|s| s.strip_suffix(":write") == Some(resource))
                    }))
        })
    }

    /// Whether these scopes include `permission`.
    #[must_use]
    pub fn grant(&self, permission: Permission) -> bool {
        let wanted = permission.scope();
        let (resource, action) = wanted.split_once(':').unwrap_or((wanted, ""));
        self.0.iter().any(|scope| {
            scope == "*"
                || scope == wanted
                || (action == "read" && scope.strip_suffix(":write").is_some_and(|r| r == resource))
        })
    }
}

/// A requested scope that does not exist (empty when none was requested).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "unknown scope `{0}`; known scopes: *, contacts:read, contacts:write, api_keys:manage, members:manage, webhooks:manage"
)]
pub struct UnknownScope(pub String);

/// How the caller authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// An API key of the tenant.
    ApiKey {
        /// The key's id.
        id: ApiKeyId,
        /// Its human name.
        name: String,
        /// Its public, greppable prefix (`crm_sk_…`).
        prefix: String,
        /// The member the key ultimately acts for, through any chain of keys: it works
        /// only while they are a member, and never above their current role.
        acts_for: UserId,
    },
    /// A person, through a login session.
    User {
        /// The user.
        id: UserId,
        /// Their e-mail address.
        email: String,
        /// Their display name.
        name: String,
        /// The session the request came with.
        session_id: SessionId,
    },
}

/// The authenticated caller: the tenant it acts in, its role there and its scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The tenant every data access of this request is scoped to.
    pub tenant_id: TenantId,
    /// The tenant's display name.
    pub tenant_name: String,
    /// How the caller authenticated.
    pub actor: Actor,
    /// The caller's role in the tenant.
    pub role: Role,
    /// Further narrowing for API keys (`*` for sessions).
    pub scopes: Scopes,
}

/// The caller may not do what it asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("this credential is not allowed to {}", .0.scope())]
pub struct Forbidden(pub Permission);

impl Principal {
    /// The user behind the request, when it is a person.
    #[must_use]
    pub fn user_id(&self) -> Option<UserId> {
        match &self.actor {
            Actor::User { id, .. } => Some(id.to_owned()),
            Actor::ApiKey { .. } => None,
        }
    }

    /// The person every action of this request answers to: the session's user, or the
    /// member at the root of the API key's chain.
    #[must_use]
    pub fn acting_for(&self) -> UserId {
        match &self.actor {
            Actor::User { id, .. } => *id,
            Actor::ApiKey { acts_for, .. } => *acts_for,
        }
    }

    /// The id of the credential the request came with (the API key's or the session's):
    /// what an idempotency record is bound to.
    #[must_use]
    pub fn credential_id(&self) -> uuid::Uuid {
        match &self.actor {
            Actor::User { session_id, .. } => session_id.as_uuid(),
            Actor::ApiKey { id, .. } => id.as_uuid(),
        }
    }

    /// Whether this credential still holds at least `role` and `scopes`: replaying a
    /// response made with that power needs it.
    #[must_use]
    pub fn holds(&self, role: Role, scopes: &Scopes) -> bool {
        self.role.rank() >= role.rank() && self.scopes.covers(scopes)
    }

    /// Whether the credential carries every scope, as a session does. Handing out power
    /// (admin or owner roles) needs it: a narrowly scoped key must not mint a wider one.
    #[must_use]
    pub fn has_full_scopes(&self) -> bool {
        self.scopes.covers(&Scopes::all())
    }

    /// Checks role and scopes together.
    ///
    /// # Errors
    /// [`Forbidden`] naming the missing permission.
    pub fn require(&self, permission: Permission) -> Result<(), Forbidden> {
        if self.role.allows(permission) && self.scopes.grant(permission) {
            Ok(())
        } else {
            Err(Forbidden(permission))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_principal(role: Role, scopes: &[&str]) -> Principal {
        Principal {
            tenant_id: TenantId::new(),
            tenant_name: "Acme".into(),
            actor: Actor::ApiKey {
                id: ApiKeyId::new(),
                name: "ci".into(),
                prefix: "crm_sk_abc".into(),
                acts_for: UserId::new(),
            },
            role,
            scopes: Scopes::from_names(scopes.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn viewers_read_but_do_not_write() {
        let viewer = key_principal(Role::Viewer, &["*"]);
        assert!(viewer.require(Permission::ContactsRead).is_ok());
        assert_eq!(
            viewer.require(Permission::ContactsWrite),
            Err(Forbidden(Permission::ContactsWrite))
        );
    }

    #[test]
    fn scopes_narrow_a_powerful_role() {
        let reader = key_principal(Role::Owner, &["contacts:read"]);
        assert!(reader.require(Permission::ContactsRead).is_ok());
        assert!(reader.require(Permission::ContactsWrite).is_err());
    }

    #[test]
    fn write_scope_implies_read_of_the_same_resource_only() {
        let writer = Scopes::from_names(vec!["contacts:write".into()]);
        assert!(writer.grant(Permission::ContactsRead));
        let other = Scopes::from_names(vec!["companies:write".into()]);
        assert!(!other.grant(Permission::ContactsRead));
    }

    #[test]
    fn only_admins_and_owners_manage_keys_and_members() {
        for (role, allowed) in [
            (Role::Owner, true),
            (Role::Admin, true),
            (Role::Member, false),
            (Role::Viewer, false),
        ] {
            assert_eq!(role.allows(Permission::ApiKeysManage), allowed, "{role}");
            assert_eq!(role.allows(Permission::MembersManage), allowed, "{role}");
        }
    }

    #[test]
    fn admins_cannot_make_owners() {
        assert!(Role::Owner.can_assign(Role::Owner));
        assert!(Role::Admin.can_assign(Role::Admin));
        assert!(!Role::Admin.can_assign(Role::Owner));
        assert!(!Role::Member.can_assign(Role::Admin));
    }

    #[test]
    fn scopes_parse_known_names_only() {
        assert!(Scopes::parse(&["contacts:read".into(), "contacts:read".into()]).is_ok());
        assert!(Scopes::parse(&["root".into()]).is_err());
        assert!(Scopes::parse(&[]).is_err());
    }

    #[test]
    fn a_key_hands_out_only_what_it_holds() {
        let writer = Scopes::from_names(vec!["contacts:write".into()]);
        assert!(writer.covers(&Scopes::from_names(vec!["contacts:read".into()])));
        assert!(!writer.covers(&Scopes::from_names(vec!["api_keys:manage".into()])));
        assert!(!writer.covers(&Scopes::all()));
        assert!(Scopes::all().covers(&Scopes::all()));
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in [Role::Owner, Role::Admin, Role::Member, Role::Viewer] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
