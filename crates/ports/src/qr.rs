//! QR-code device login: the scanning device's side (inside its tenant) and what the
//! pre-authentication side of a poll finds.

use std::future::Future;

use domain::identity::{QrRequester, QrStatus};
use domain::ids::{QrSessionId, SessionId, TenantId, UserId};
use domain::token::TokenHash;
use time::OffsetDateTime;

use crate::errors::RepoError;

/// What scanning a QR code found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QrScan {
    /// Now scanned by the caller; here is who asks.
    Scanned(QrRequester),
    /// No such code.
    NotFound,
    /// Past its expiry.
    Expired,
    /// Already scanned, linked, consumed or cancelled: codes are single-use.
    AlreadyUsed(QrStatus),
}

/// What confirming or cancelling a scanned request found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QrDecision {
    /// Done.
    Done,
    /// No such request, or not scanned by the caller.
    NotFound,
    /// Past its expiry.
    Expired,
    /// Not in the scanned state any more.
    AlreadyUsed(QrStatus),
}

/// The scanning device's side of QR login, run inside the scanner's unit of work: the
/// request is bound to this tenant and to the given member of it.
pub trait QrRepository {
    /// Scans a code: pending -> scanned by `user`.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn qr_scan(
        &mut self,
        code: &TokenHash,
        user: UserId,
    ) -> impl Future<Output = Result<QrScan, RepoError>> + Send;

    /// Confirms: scanned by `user` -> linked.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn qr_link(
        &mut self,
        id: QrSessionId,
        user: UserId,
    ) -> impl Future<Output = Result<QrDecision, RepoError>> + Send;

    /// Refuses: scanned by `user` -> cancelled.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn qr_cancel(
        &mut self,
        id: QrSessionId,
        user: UserId,
    ) -> impl Future<Output = Result<QrDecision, RepoError>> + Send;
}

/// What a poll of a QR login request found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QrPoll {
    /// Not linked yet, or over: the status to show.
    Status(QrStatus),
    /// Linked: the session was created now, for this tenant and user; this is the only
    /// poll that will ever see it.
    Collected {
        /// The session's tenant.
        tenant_id: TenantId,
        /// The session's user.
        user_id: UserId,
    },
    /// Polled sooner than the interval allows.
    SlowDown,
    /// No such request.
    NotFound,
    /// The poll token is not this request's.
    WrongPollToken,
}

/// The session a QR poll creates if the request is linked.
#[derive(Clone, Debug)]
pub struct NewQrLoginSession {
    /// New session id.
    pub id: SessionId,
    /// SHA-256 of the new token.
    pub token_hash: TokenHash,
    /// Absolute expiry.
    pub expires_at: OffsetDateTime,
}
