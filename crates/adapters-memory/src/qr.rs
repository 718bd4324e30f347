//! QR-code login requests in memory: they live outside any tenant, so the scanner's steps
//! act on the shared state directly (not staged with the unit of work).

use domain::identity::{QrRequester, QrStatus};
use domain::ids::{QrSessionId, TenantId, UserId};
use domain::token::TokenHash;
use ports::{QrDecision, QrRepository, QrScan, RepoError};
use time::OffsetDateTime;

use crate::store::{MemoryStore, MemoryUnitOfWork};

#[derive(Clone, Debug)]
pub(crate) struct QrRecord {
    pub(crate) code_hash: [u8; 32],
    pub(crate) poll_hash: [u8; 32],
    pub(crate) status: QrStatus,
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: Option<String>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) interval_seconds: i32,
    pub(crate) last_polled_at: Option<OffsetDateTime>,
    pub(crate) scanner: Option<(TenantId, UserId)>,
}

impl QrRecord {
    pub(crate) fn expired(&self, now: OffsetDateTime) -> bool {
        matches!(
            self.status,
            QrStatus::Pending | QrStatus::Scanned | QrStatus::Linked
        ) && self.expires_at <= now
    }
}

/// QR requests live outside any tenant, so these steps act on the shared state directly
/// (not staged with the unit of work).
impl QrRepository for MemoryUnitOfWork {
    async fn qr_scan(&mut self, code: &TokenHash, user: UserId) -> Result<QrScan, RepoError> {
        let now = self.now();
        if !self.data()?.members.contains_key(&user) {
            return Ok(QrScan::NotFound);
        }
        let tenant = self.tenant_id;
        let mut state = self.store.lock()?;
        let Some((id, request)) = state.qr.iter_mut().find(|(_, q)| q.code_hash == code.0) else {
            return Ok(QrScan::NotFound);
        };
        if request.expired(now) {
            return Ok(QrScan::Expired);
        }
        if request.status != QrStatus::Pending {
            return Ok(QrScan::AlreadyUsed(request.status));
        }
        request.status = QrStatus::Scanned;
        request.scanner = Some((tenant, user));
        Ok(QrScan::Scanned(QrRequester {
            session_id: *id,
            user_agent: request.user_agent.clone(),
            ip: request.ip.clone(),
            created_at: request.created_at,
        }))
    }

    async fn qr_link(&mut self, id: QrSessionId, user: UserId) -> Result<QrDecision, RepoError> {
        decide(&self.store, self.tenant_id, id, user, QrStatus::Linked)
    }

    async fn qr_cancel(&mut self, id: QrSessionId, user: UserId) -> Result<QrDecision, RepoError> {
        decide(&self.store, self.tenant_id, id, user, QrStatus::Cancelled)
    }
}

fn decide(
    store: &MemoryStore,
    tenant: TenantId,
    id: QrSessionId,
    user: UserId,
    decision: QrStatus,
) -> Result<QrDecision, RepoError> {
    let now = store.now();
    let mut state = store.lock()?;
    let Some(request) = state
        .qr
        .get_mut(&id)
        .filter(|q| q.scanner == Some((tenant, user)))
    else {
        return Ok(QrDecision::NotFound);
    };
    if request.expired(now) {
        return Ok(QrDecision::Expired);
    }
    if request.status != QrStatus::Scanned {
        return Ok(QrDecision::AlreadyUsed(request.status));
    }
    request.status = decision;
    Ok(QrDecision::Done)
}
