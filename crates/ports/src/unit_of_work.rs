//! The transaction and how it is opened: [`UnitOfWork`] (commit or park, nothing else),
//! [`CommitSlot`], [`Repositories`] (a unit of work with every repository and its clock),
//! [`TenantStore`] (opens one for one tenant) and [`PreAuthStore`] (the few look-ups made
//! before any tenant is known).

use std::future::Future;
use std::sync::{Arc, Mutex};

use domain::identity::{InvitationLookup, LoginCandidate, NewQrSession};
use domain::ids::{QrSessionId, TenantId};
use domain::principal::Principal;
use domain::token::TokenHash;

use crate::activities::ActivityRepository;
use crate::companies::CompanyRepository;
use crate::contacts::ContactRepository;
use crate::errors::RepoError;
use crate::idempotency::IdempotencyRepository;
use crate::identity::IdentityRepository;
use crate::invitations::InvitationRepository;
use crate::leads::LeadRepository;
use crate::pipelines::PipelineRepository;
use crate::qr::{NewQrLoginSession, QrPoll, QrRepository};
use crate::services::Clock;
use crate::webhooks::WebhookRepository;

/// Where a unit of work waits when its use case commits while an idempotent request
/// still has to add its stored response to the same transaction: the idempotency layer
/// takes it back, stores the response, and commits both at once. A unit of work never
/// taken back is dropped, which rolls everything back.
#[derive(Debug)]
pub struct CommitSlot<U>(Arc<Mutex<Option<U>>>);

impl<U> Clone for CommitSlot<U> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<U> Default for CommitSlot<U> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(None)))
    }
}

impl<U> CommitSlot<U> {
    /// Parks a unit of work whose use case asked to commit.
    pub fn park(&self, uow: U) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(uow);
        }
    }

    /// The parked unit of work, if its use case committed.
    #[must_use]
    pub fn take(&self) -> Option<U> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// One tenant-scoped, all-or-nothing piece of work: the transaction, nothing more. What a
/// use case reads and writes through it is said by the repository traits it also bounds
/// (`U: UnitOfWork + ContactRepository`). Dropping it without [`UnitOfWork::commit`]
/// discards every change.
pub trait UnitOfWork: Send {
    /// Makes every change of this unit of work durable at once; or, once
    /// [`UnitOfWork::park_commit`] was called, parks it in that slot uncommitted.
    ///
    /// # Errors
    /// [`RepoError`] when the commit fails; nothing was changed then.
    fn commit(self) -> impl Future<Output = Result<(), RepoError>> + Send;

    /// Makes the next [`UnitOfWork::commit`] park this unit of work in `slot` instead of
    /// committing, for whoever must add to the same transaction after the use case.
    fn park_commit(&mut self, slot: CommitSlot<Self>)
    where
        Self: Sized;
}

/// Everything a store's unit of work offers: the transaction, every repository, and the
/// store's [`Clock`]. The bound of [`TenantStore::Uow`], so that a caller generic over the
/// store (the HTTP layer) can hand its unit of work to any use case; the use cases
/// themselves bound only what they touch. Implemented for every type that has them all.
pub trait Repositories:
    UnitOfWork
    + Clock
    + ContactRepository
    + CompanyRepository
    + PipelineRepository
    + LeadRepository
    + ActivityRepository
    + IdentityRepository
    + InvitationRepository
    + QrRepository
    + IdempotencyRepository
    + WebhookRepository
{
}

impl<T> Repositories for T where
    T: UnitOfWork
        + Clock
        + ContactRepository
        + CompanyRepository
        + PipelineRepository
        + LeadRepository
        + ActivityRepository
        + IdentityRepository
        + InvitationRepository
        + QrRepository
        + IdempotencyRepository
        + WebhookRepository
{
}

/// Opens units of work. Implementations are cheap to clone (a pool handle).
pub trait TenantStore: Clone + Send + Sync + 'static {
    /// The unit of work this store opens.
    type Uow: Repositories;

    /// Resolves an API key by its hash and opens a unit of work scoped to the key's
    /// tenant, in one step: authentication costs no round trip of its own. `None` when
    /// no live key (unrevoked, unexpired) has this hash.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn begin_with_api_key(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<(Principal, Self::Uow)>, RepoError>> + Send;

    /// Resolves a live session (unrevoked, unexpired, used within `idle_timeout_seconds`) by
    /// the hash of its token and opens a unit of work scoped to its tenant, in one step.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn begin_with_session(
        &self,
        hash: &TokenHash,
        idle_timeout_seconds: i64,
    ) -> impl Future<Output = Result<Option<(Principal, Self::Uow)>, RepoError>> + Send;

    /// Opens a unit of work for a tenant already known to the caller (trusted callers
    /// only: sign-up, login after the password check, background jobs).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn begin_for_tenant(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Self::Uow, RepoError>> + Send;
}

/// Look-ups that must happen before any tenant is known, and sweeps across tenants. The
/// PostgreSQL adapter answers each through one narrow SECURITY DEFINER function.
///
/// A [`Clock`] too: the expiries it checks (QR requests, invitations, demo tenants) and
/// the ones the use cases compute for it follow the same time.
pub trait PreAuthStore: Clock + Clone + Send + Sync + 'static {
    /// The user with this e-mail and their memberships, for login.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn find_login(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<LoginCandidate>, RepoError>> + Send;

    /// The live invitation with this token hash: its tenant, id and address, nothing more.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn find_invitation(
        &self,
        token_hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<InvitationLookup>, RepoError>> + Send;

    /// Deletes expired demo tenants with everything in them (returns how many), and
    /// idempotency records past their 24 hours.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn sweep_expired_tenants(&self) -> impl Future<Output = Result<u64, RepoError>> + Send;

    /// Stores a new QR login request.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn qr_create(
        &self,
        request: &NewQrSession,
    ) -> impl Future<Output = Result<(), RepoError>> + Send;

    /// Polls a QR login request with its poll token; when it is linked, creates the
    /// session described by `session` (for the linked tenant and user) and marks the
    /// request consumed, atomically.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn qr_poll(
        &self,
        id: QrSessionId,
        poll_token: &TokenHash,
        session: &NewQrLoginSession,
    ) -> impl Future<Output = Result<QrPoll, RepoError>> + Send;
}
