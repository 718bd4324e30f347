//! QR-code device login (SPEC §6), modelled on the OAuth device flow (RFC 8628).
//!
//! The waiting device `generate`s a request and shows its code as a QR image; a logged-in
//! device `scan`s the code (and sees who asks), then `link`s or `cancel`s; the waiting
//! device `poll`s with its poll token, no faster than the interval, and collects the new
//! session exactly once.

use domain::identity::{NewQrSession, QrRequester, QrStatus};
use domain::ids::{QrSessionId, SessionId};
use domain::principal::{Actor, Principal};
use domain::token::{SecretToken, TokenKind};
use ports::{
    Clock, NewQrLoginSession, PreAuthStore, QrDecision, QrPoll, QrRepository, QrScan, RepoError,
    UnitOfWork,
};
use qrcode::QrCode;
use qrcode::render::svg;
use thiserror::Error;
use time::OffsetDateTime;

use crate::auth::AuthSettings;
use crate::identity::ClientInfo;
use crate::secrets::generate;

/// Every way a QR step can fail.
#[derive(Debug, Error)]
pub enum QrError {
    /// Scanning, linking and cancelling need a person's session, not an API key.
    #[error("scanning a QR code needs a user session")]
    SessionRequired,
    /// No such code or request (or not scanned by the caller).
    #[error("no such QR login request")]
    NotFound,
    /// The code expired.
    #[error("this QR code has expired")]
    Expired,
    /// The code was already used.
    #[error("this QR code was already used (status {})", .0.as_str())]
    AlreadyUsed(QrStatus),
    /// The poll token is not this request's.
    #[error("this poll token does not belong to the QR login request")]
    WrongPollToken,
    /// Polled faster than the interval.
    #[error("polling too fast: wait {0} seconds between polls")]
    SlowDown(i32),
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<crate::secrets::SecretGenerationFailed> for QrError {
    fn from(error: crate::secrets::SecretGenerationFailed) -> Self {
        Self::Repo(RepoError::Unexpected(error.to_string()))
    }
}

/// A new QR login request, for the waiting device.
#[derive(Debug)]
pub struct QrGenerated {
    /// The request.
    pub session_id: QrSessionId,
    /// What the QR image carries (also shown as text, for typing in).
    pub code: SecretToken,
    /// The QR image, SVG.
    pub qr_svg: String,
    /// The waiting device's secret for polling.
    pub poll_token: SecretToken,
    /// When the code stops working.
    pub expires_at: OffsetDateTime,
    /// Slowest allowed polling, seconds.
    pub interval: i32,
}

/// The result of a poll.
#[derive(Debug)]
pub struct QrPollResult {
    /// The status now.
    pub status: QrStatus,
    /// The session, on the one poll that collects it.
    pub session: Option<(SecretToken, OffsetDateTime)>,
}

/// Renders `text` as a scannable QR code in SVG.
///
/// # Errors
/// [`QrError::Repo`] if the text cannot be encoded (it always can: it is 47 ASCII bytes).
pub fn qr_svg(text: &str) -> Result<String, QrError> {
    let code = QrCode::new(text.as_bytes())
        .map_err(|e| RepoError::Unexpected(format!("QR encoding: {e}")))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// Starts a QR login request.
///
/// # Errors
/// Storage failures.
pub async fn generate_qr<P: PreAuthStore + Clock>(
    store: &P,
    settings: &AuthSettings,
    client: &ClientInfo,
) -> Result<QrGenerated, QrError> {
    let code = generate(TokenKind::QrCode)?;
    let poll_token = generate(TokenKind::QrPoll)?;
    let session_id = QrSessionId::new();
    let expires_at = store.now() + settings.qr_ttl;
    store
        .qr_create(&NewQrSession {
            id: session_id,
            code_hash: code.hash(),
            poll_token_hash: poll_token.hash(),
            user_agent: client.user_agent.clone(),
            ip: client.ip.clone(),
            expires_at,
            interval_seconds: settings.qr_poll_interval_seconds,
        })
        .await?;
    let qr_svg = qr_svg(code.expose())?;
    Ok(QrGenerated {
        session_id,
        code,
        qr_svg,
        poll_token,
        expires_at,
        interval: settings.qr_poll_interval_seconds,
    })
}

fn scanning_user(principal: &Principal) -> Result<domain::ids::UserId, QrError> {
    match &principal.actor {
        Actor::User { id, .. } => Ok(*id),
        Actor::ApiKey { .. } => Err(QrError::SessionRequired),
    }
}

/// The logged-in device scans a code and learns who asks.
///
/// # Errors
/// [`QrError::NotFound`], [`QrError::Expired`], [`QrError::AlreadyUsed`], [`QrError::SessionRequired`].
pub async fn scan_qr<U: UnitOfWork + QrRepository>(
    mut uow: U,
    principal: &Principal,
    code: &str,
) -> Result<QrRequester, QrError> {
    let user = scanning_user(principal)?;
    let Ok(code) = SecretToken::parse(TokenKind::QrCode, code.trim()) else {
        return Err(QrError::NotFound);
    };
    let outcome = uow.qr_scan(&code.hash(), user).await?;
    let requester = match outcome {
        QrScan::Scanned(requester) => requester,
        QrScan::NotFound => return Err(QrError::NotFound),
        QrScan::Expired => return Err(QrError::Expired),
        QrScan::AlreadyUsed(status) => return Err(QrError::AlreadyUsed(status)),
    };
    uow.commit().await?;
    Ok(requester)
}

fn decided(outcome: QrDecision) -> Result<(), QrError> {
    match outcome {
        QrDecision::Done => Ok(()),
        QrDecision::NotFound => Err(QrError::NotFound),
        QrDecision::Expired => Err(QrError::Expired),
        QrDecision::AlreadyUsed(status) => Err(QrError::AlreadyUsed(status)),
    }
}

/// The scanner confirms: the waiting device's next poll gets a session for the scanner.
///
/// # Errors
/// As [`scan_qr`].
pub async fn link_qr<U: UnitOfWork + QrRepository>(
    mut uow: U,
    principal: &Principal,
    id: QrSessionId,
) -> Result<(), QrError> {
    let user = scanning_user(principal)?;
    decided(uow.qr_link(id, user).await?)?;
    uow.commit().await?;
    Ok(())
}

/// The scanner refuses.
///
/// # Errors
/// As [`scan_qr`].
pub async fn cancel_qr<U: UnitOfWork + QrRepository>(
    mut uow: U,
    principal: &Principal,
    id: QrSessionId,
) -> Result<(), QrError> {
    let user = scanning_user(principal)?;
    decided(uow.qr_cancel(id, user).await?)?;
    uow.commit().await?;
    Ok(())
}

/// The waiting device polls.
///
/// # Errors
/// [`QrError::NotFound`], [`QrError::WrongPollToken`], [`QrError::SlowDown`], storage.
pub async fn poll_qr<P: PreAuthStore + Clock>(
    store: &P,
    settings: &AuthSettings,
    id: QrSessionId,
    poll_token: &str,
) -> Result<QrPollResult, QrError> {
    let Ok(poll_token) = SecretToken::parse(TokenKind::QrPoll, poll_token.trim()) else {
        return Err(QrError::WrongPollToken);
    };
    let token = generate(TokenKind::Session)?;
    let expires_at = store.now() + settings.session_ttl;
    let session = NewQrLoginSession {
        id: SessionId::new(),
        token_hash: token.hash(),
        expires_at,
    };
    match store.qr_poll(id, &poll_token.hash(), &session).await? {
        QrPoll::Status(status) => Ok(QrPollResult {
            status,
            session: None,
        }),
        QrPoll::Collected { .. } => Ok(QrPollResult {
            status: QrStatus::Linked,
            session: Some((token, expires_at)),
        }),
        QrPoll::SlowDown => Err(QrError::SlowDown(settings.qr_poll_interval_seconds)),
        QrPoll::NotFound => Err(QrError::NotFound),
        QrPoll::WrongPollToken => Err(QrError::WrongPollToken),
    }
}
