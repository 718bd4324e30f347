//! People, memberships, sessions and API keys: the records identity use cases read and
//! write, and the rules for names.

use time::OffsetDateTime;

use crate::contact::Email;
use crate::ids::{ApiKeyId, InvitationId, QrSessionId, SessionId, TenantId, UserId};
use crate::principal::{Role, Scopes};
use crate::text::{TextError, single_line};
use crate::token::TokenHash;

/// Longest display name of a person or a tenant, an API key's name.
pub const DISPLAY_NAME_MAX: usize = 200;

/// Checks a display name (a person's, a tenant's, a key's).
///
/// # Errors
/// [`TextError`] when blank, too long or holding control characters.
pub fn display_name(raw: &str) -> Result<String, TextError> {
    single_line(raw, DISPLAY_NAME_MAX)
}

/// A tenant as its members see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantInfo {
    /// Its id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// When a demo sandbox is deleted; `None` for real tenants.
    pub expires_at: Option<OffsetDateTime>,
}

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// New id.
    pub id: UserId,
    /// Login e-mail, unique across all users.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Argon2id PHC string; `None` for users who cannot log in with a password.
    pub password_hash: Option<String>,
}

/// A member of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The user.
    pub user_id: UserId,
    /// Their e-mail.
    pub email: String,
    /// Their name.
    pub name: String,
    /// Their role here.
    pub role: Role,
    /// When they joined the tenant.
    pub created_at: OffsetDateTime,
}

/// A session to store (the token itself is only ever hashed).
#[derive(Clone, Debug)]
pub struct NewSession {
    /// New id.
    pub id: SessionId,
    /// Whose session.
    pub user_id: UserId,
    /// SHA-256 of the token.
    pub token_hash: TokenHash,
    /// Absolute expiry.
    pub expires_at: OffsetDateTime,
    /// The device's user agent, for the owner's session list.
    pub user_agent: Option<String>,
    /// The device's address.
    pub ip: Option<String>,
}

/// An API key as listed (never the secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Its id.
    pub id: ApiKeyId,
    /// Human name.
    pub name: String,
    /// Public prefix (`crm_sk_AbCd…`).
    pub prefix: String,
    /// The role it acts with.
    pub role: Role,
    /// What it may do.
    pub scopes: Scopes,
    /// The member who made it (`None` for operator-made keys); the key acts at most with
    /// this member's current role and is deleted when they leave the tenant.
    pub created_by: Option<UserId>,
    /// The member the key answers to through its whole chain (`None` only for keys
    /// revoked because they answered to nobody).
    pub acts_for: Option<UserId>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last authenticated use (refreshed at most once a minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// Optional expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Revocation time.
    pub revoked_at: Option<OffsetDateTime>,
}

/// An API key to store.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    /// New id.
    pub id: ApiKeyId,
    /// Human name.
    pub name: String,
    /// Public prefix.
    pub prefix: String,
    /// SHA-256 of the key.
    pub key_hash: TokenHash,
    /// The role it acts with (the creator's).
    pub role: Role,
    /// What it may do.
    pub scopes: Scopes,
    /// Who made it, when a person did (a session; `None` for a key made by a key).
    pub created_by: Option<UserId>,
    /// The member at the root of the chain: the session user, or the creating key's own.
    pub acts_for: UserId,
    /// Optional expiry.
    pub expires_at: Option<OffsetDateTime>,
}

/// How long an invitation can be accepted, unless the inviter says otherwise.
pub const INVITATION_TTL: time::Duration = time::Duration::days(7);

/// An invitation into a tenant, as its admins see it (never its token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// Its id.
    pub id: InvitationId,
    /// The address invited (as given: it is matched case-insensitively on acceptance).
    pub email: String,
    /// The role the invitee gets.
    pub role: Role,
    /// The member who invited; the invitation goes when they leave.
    pub invited_by: UserId,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this it cannot be accepted.
    pub expires_at: OffsetDateTime,
    /// When it was accepted (once), if it was.
    pub accepted_at: Option<OffsetDateTime>,
    /// When an admin revoked it, if one did.
    pub revoked_at: Option<OffsetDateTime>,
}

/// An invitation to store.
#[derive(Clone, Debug)]
pub struct NewInvitation {
    /// New id.
    pub id: InvitationId,
    /// The address invited.
    pub email: Email,
    /// The role the invitee gets.
    pub role: Role,
    /// SHA-256 of the `crm_inv_…` token.
    pub token_hash: TokenHash,
    /// The member it answers to.
    pub invited_by: UserId,
    /// Last moment it can be accepted.
    pub expires_at: OffsetDateTime,
}

/// A live invitation found by its token before any tenant is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvitationLookup {
    /// The inviting tenant.
    pub tenant_id: TenantId,
    /// The invitation.
    pub id: InvitationId,
    /// The address invited: the account that accepts must be this one.
    pub email: String,
}

/// What login needs to know about an e-mail address, found before any tenant is known.
#[derive(Clone, Debug)]
pub struct LoginCandidate {
    /// The user.
    pub user_id: UserId,
    /// Their e-mail.
    pub email: String,
    /// Their name.
    pub name: String,
    /// Their password hash, if they have one.
    pub password_hash: Option<String>,
    /// Their tenants and roles, oldest membership first.
    pub memberships: Vec<(TenantId, String, Role)>,
}

/// The state of a QR login request, as its devices see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QrStatus {
    /// Shown, not scanned yet.
    Pending,
    /// Scanned by a logged-in device, waiting for its confirmation.
    Scanned,
    /// Confirmed; the next poll collects the session.
    Linked,
    /// The session was collected.
    Consumed,
    /// Past its two minutes.
    Expired,
    /// Refused by the scanning device.
    Cancelled,
}

impl QrStatus {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scanned => "scanned",
            Self::Linked => "linked",
            Self::Consumed => "consumed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Scanned,
            Self::Linked,
            Self::Consumed,
            Self::Expired,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// A QR login request to store.
#[derive(Clone, Debug)]
pub struct NewQrSession {
    /// New id.
    pub id: QrSessionId,
    /// SHA-256 of the code the QR image carries.
    pub code_hash: TokenHash,
    /// SHA-256 of the waiting device's poll token.
    pub poll_token_hash: TokenHash,
    /// The waiting device's user agent (shown to the scanner).
    pub user_agent: Option<String>,
    /// The waiting device's address (shown to the scanner).
    pub ip: Option<String>,
    /// When it stops being usable.
    pub expires_at: OffsetDateTime,
    /// Slowest allowed polling, in seconds.
    pub interval_seconds: i32,
}

/// Who is asking to log in, as the scanning device is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrRequester {
    /// The request.
    pub session_id: QrSessionId,
    /// The waiting device's user agent.
    pub user_agent: Option<String>,
    /// The waiting device's address.
    pub ip: Option<String>,
    /// When it asked.
    pub created_at: OffsetDateTime,
}
