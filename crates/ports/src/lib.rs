//! The traits the core needs from the outside world, and nothing else.
//!
//! Every tenant-scoped operation runs inside a [`UnitOfWork`], opened by a [`TenantStore`]
//! for exactly one tenant: the PostgreSQL adapter makes that a transaction with
//! `app.tenant_id` set (so row-level security scopes every statement), the in-memory
//! adapter a staged copy of one tenant's data. Use cases never see which one they got.
//!
//! Traits use `impl Future + Send` rather than `async fn` so the futures are `Send` and can
//! run on any executor thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use domain::activity::{Activity, ActivityDraft, ActivityId, ActivityPage, ActivityQuery};
use domain::company::{Company, CompanyDraft, CompanyPage, CompanyQuery};
use domain::contact::{Contact, ContactDraft, ContactPage, ContactQuery};
use domain::identity::{
    ApiKeyRecord, Invitation, InvitationLookup, LoginCandidate, Member, NewApiKey, NewInvitation,
    NewQrSession, NewSession, NewUser, QrRequester, QrStatus, TenantInfo,
};
use domain::ids::{
    ApiKeyId, CompanyId, ContactId, DeliveryId, InvitationId, QrSessionId, SessionId,
    SubscriptionId, TenantId, UserId,
};
use domain::lead::{Lead, LeadDraft, LeadId, LeadPage, LeadQuery};
use domain::password::Password;
use domain::pipeline::{Pipeline, PipelineDraft, PipelineId, StageDraft, StageId};
use domain::principal::{Principal, Role, Scopes};
use domain::token::TokenHash;
use domain::webhook::{Delivery, DeliveryAttempt, NextStep, Subscription, SubscriptionDraft};
use thiserror::Error;
use time::OffsetDateTime;
use uuid::Uuid;

mod events;
pub use events::{EventRenderError, EventRenderer};

/// A failure of the storage itself, not of the caller's request.
#[derive(Debug, Error)]
pub enum RepoError {
    /// The store cannot be reached or is shutting down; worth retrying later (503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A concurrent change won (deadlock or serialization failure); the whole request may
    /// be retried (409).
    #[error("concurrent change: {0}")]
    Contention(String),
    /// Anything else: a bug or a broken invariant. The message is for logs only.
    #[error("unexpected storage error: {0}")]
    Unexpected(String),
}

/// Why a contact could not be written.
#[derive(Debug, Error)]
pub enum ContactWriteError {
    /// Another contact of the tenant has this e-mail address.
    #[error("a contact with this e-mail address already exists")]
    DuplicateEmail,
    /// `ownerId` is not a member of the tenant.
    #[error("the owner is not a member of this tenant")]
    UnknownOwner,
    /// `companyId` is not a company of the tenant.
    #[error("the company does not exist in this tenant")]
    UnknownCompany,
    /// The contact does not exist in this tenant.
    #[error("contact not found")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Contacts of the unit of work's tenant. There is no tenant parameter: the unit of work
/// is bound to one tenant and cannot reach another.
pub trait ContactRepository {
    /// One page of contacts matching `query`.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_contacts(
        &mut self,
        query: &ContactQuery,
    ) -> impl Future<Output = Result<ContactPage, RepoError>> + Send;

    /// One contact, `None` when it does not exist in this tenant. With `for_update` the
    /// row is locked until the unit of work ends, so a read-check-write cannot race.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_contact(
        &mut self,
        id: ContactId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Contact>, RepoError>> + Send;

    /// The contact with this (normalised) e-mail, locked for update: the key of batch upserts.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn find_contact_by_email(
        &mut self,
        email: &domain::contact::Email,
    ) -> impl Future<Output = Result<Option<Contact>, RepoError>> + Send;

    /// The contacts having any of these (normalised) e-mails: one look-up for a batch.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn find_contacts_by_emails(
        &mut self,
        emails: &[domain::contact::Email],
    ) -> impl Future<Output = Result<Vec<Contact>, RepoError>> + Send;

    /// Stores many new contacts at once (a few statements in PostgreSQL), in order, and
    /// returns the ids of those written, in order. A row whose e-mail another contact already holds is skipped,
    /// not an error, so the caller learns every conflicting row from one call (without a
    /// look-up first) and decides whether to commit what was written.
    ///
    /// # Errors
    /// As [`ContactRepository::insert_contact`] (but for a taken e-mail), for the batch as
    /// a whole.
    fn insert_contacts(
        &mut self,
        rows: &[(ContactId, ContactDraft)],
    ) -> impl Future<Output = Result<Vec<ContactId>, ContactWriteError>> + Send;

    /// Stores a new contact at version 1.
    ///
    /// # Errors
    /// [`ContactWriteError::DuplicateEmail`], [`ContactWriteError::UnknownOwner`], or storage.
    fn insert_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> impl Future<Output = Result<Contact, ContactWriteError>> + Send;

    /// Replaces a contact's fields and bumps its version.
    ///
    /// # Errors
    /// As insert, plus [`ContactWriteError::NotFound`].
    fn update_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> impl Future<Output = Result<Contact, ContactWriteError>> + Send;

    /// Deletes a contact.
    ///
    /// # Errors
    /// [`ContactWriteError::NotFound`], or storage.
    fn delete_contact(
        &mut self,
        id: ContactId,
    ) -> impl Future<Output = Result<(), ContactWriteError>> + Send;
}

/// Why an identity record could not be written.
#[derive(Debug, Error)]
pub enum IdentityWriteError {
    /// Another user already has this e-mail address.
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    /// The user is already a member of the tenant.
    #[error("already a member of this tenant")]
    AlreadyMember,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The unit of work's tenant, its members, sessions and API keys.
pub trait IdentityRepository {
    /// The tenant itself.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn tenant(&mut self) -> impl Future<Output = Result<TenantInfo, RepoError>> + Send;

    /// Creates the unit of work's own tenant (sign-up, demo).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_tenant(
        &mut self,
        name: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<TenantInfo, RepoError>> + Send;

    /// Creates a user (a global identity).
    ///
    /// # Errors
    /// [`IdentityWriteError::EmailTaken`], or storage.
    fn insert_user(
        &mut self,
        user: &NewUser,
    ) -> impl Future<Output = Result<(), IdentityWriteError>> + Send;

    /// Makes a user a member of this tenant.
    ///
    /// # Errors
    /// [`IdentityWriteError::AlreadyMember`], or storage.
    fn insert_membership(
        &mut self,
        user: UserId,
        role: Role,
    ) -> impl Future<Output = Result<(), IdentityWriteError>> + Send;

    /// Stores a login session for a member of this tenant.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_session(
        &mut self,
        session: &NewSession,
    ) -> impl Future<Output = Result<(), RepoError>> + Send;

    /// Revokes a session of this tenant.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn revoke_session(
        &mut self,
        id: SessionId,
    ) -> impl Future<Output = Result<(), RepoError>> + Send;

    /// Stores an API key and returns it as listed.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_api_key(
        &mut self,
        key: &NewApiKey,
    ) -> impl Future<Output = Result<ApiKeyRecord, RepoError>> + Send;

    /// Every API key of the tenant, newest first.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_api_keys(
        &mut self,
    ) -> impl Future<Output = Result<Vec<ApiKeyRecord>, RepoError>> + Send;

    /// One API key.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_api_key(
        &mut self,
        id: ApiKeyId,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, RepoError>> + Send;

    /// Revokes an API key (idempotent: an already revoked key keeps its first revocation
    /// time). `None` when no such key.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn revoke_api_key(
        &mut self,
        id: ApiKeyId,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, RepoError>> + Send;

    /// Every member, oldest first.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_members(&mut self) -> impl Future<Output = Result<Vec<Member>, RepoError>> + Send;

    /// One member; `for_update` locks the membership until the unit of work ends.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_member(
        &mut self,
        user: UserId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Member>, RepoError>> + Send;

    /// Changes a member's role.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn set_member_role(
        &mut self,
        user: UserId,
        role: Role,
    ) -> impl Future<Output = Result<Option<Member>, RepoError>> + Send;

    /// Removes a member (their sessions go with the membership).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn delete_member(
        &mut self,
        user: UserId,
    ) -> impl Future<Output = Result<bool, RepoError>> + Send;

    /// Locks and returns the owners, so "the last owner" checks cannot race.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn lock_owners(&mut self) -> impl Future<Output = Result<Vec<UserId>, RepoError>> + Send;
}

/// Invitations into the unit of work's tenant (membership is by invitation only).
pub trait InvitationRepository {
    /// Stores an invitation (its token only as a hash).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_invitation(
        &mut self,
        invitation: &NewInvitation,
    ) -> impl Future<Output = Result<Invitation, RepoError>> + Send;

    /// Every invitation of the tenant, newest first.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_invitations(
        &mut self,
    ) -> impl Future<Output = Result<Vec<Invitation>, RepoError>> + Send;

    /// Revokes a pending invitation; `None` when there is no such invitation, `Some(false)`
    /// when it was already accepted or revoked.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn revoke_invitation(
        &mut self,
        id: InvitationId,
    ) -> impl Future<Output = Result<Option<bool>, RepoError>> + Send;

    /// Marks a live (pending, unexpired) invitation accepted by `user`, once: of two
    /// concurrent acceptances, one gets it and the other `None`.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn claim_invitation(
        &mut self,
        id: InvitationId,
        user: UserId,
    ) -> impl Future<Output = Result<Option<Invitation>, RepoError>> + Send;
}

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

/// Why a company could not be written.
#[derive(Debug, Error)]
pub enum CompanyWriteError {
    /// Another company of the tenant has this domain.
    #[error("a company with this domain already exists")]
    DuplicateDomain,
    /// The company does not exist in this tenant.
    #[error("company not found")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Companies of the unit of work's tenant.
pub trait CompanyRepository {
    /// One page of companies.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_companies(
        &mut self,
        query: &CompanyQuery,
    ) -> impl Future<Output = Result<CompanyPage, RepoError>> + Send;

    /// One company; `for_update` locks it until the unit of work ends.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_company(
        &mut self,
        id: CompanyId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Company>, RepoError>> + Send;

    /// The company with this (normalised) domain, locked for update.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn find_company_by_domain(
        &mut self,
        domain: &domain::company::Domain,
    ) -> impl Future<Output = Result<Option<Company>, RepoError>> + Send;

    /// Stores a new company at version 1.
    ///
    /// # Errors
    /// [`CompanyWriteError::DuplicateDomain`], or storage.
    fn insert_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> impl Future<Output = Result<Company, CompanyWriteError>> + Send;

    /// Replaces a company's fields and bumps its version.
    ///
    /// # Errors
    /// As insert, plus [`CompanyWriteError::NotFound`].
    fn update_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> impl Future<Output = Result<Company, CompanyWriteError>> + Send;

    /// Deletes a company; its contacts keep existing without a company.
    ///
    /// # Errors
    /// [`CompanyWriteError::NotFound`], or storage.
    fn delete_company(
        &mut self,
        id: CompanyId,
    ) -> impl Future<Output = Result<(), CompanyWriteError>> + Send;
}

/// Why a pipeline change could not be made.
#[derive(Debug, Error)]
pub enum PipelineWriteError {
    /// No such pipeline or stage in this tenant.
    #[error("not found")]
    NotFound,
    /// The stage or pipeline still holds leads.
    #[error("still in use by leads")]
    InUse,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Pipelines and their stages, of the unit of work's tenant.
pub trait PipelineRepository {
    /// Every pipeline, default first, with stages in order.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_pipelines(&mut self) -> impl Future<Output = Result<Vec<Pipeline>, RepoError>> + Send;

    /// One pipeline; `for_update` locks it (and so its stage list) until the end.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_pipeline(
        &mut self,
        id: PipelineId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Pipeline>, RepoError>> + Send;

    /// Stores a new (non-default) pipeline with its stages.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_pipeline(
        &mut self,
        id: PipelineId,
        draft: &PipelineDraft,
    ) -> impl Future<Output = Result<Pipeline, RepoError>> + Send;

    /// Renames a pipeline and bumps its version.
    ///
    /// # Errors
    /// [`PipelineWriteError::NotFound`], storage.
    fn rename_pipeline(
        &mut self,
        id: PipelineId,
        name: &str,
    ) -> impl Future<Output = Result<Pipeline, PipelineWriteError>> + Send;

    /// Deletes a pipeline with its stages.
    ///
    /// # Errors
    /// [`PipelineWriteError::NotFound`], [`PipelineWriteError::InUse`], storage.
    fn delete_pipeline(
        &mut self,
        id: PipelineId,
    ) -> impl Future<Output = Result<(), PipelineWriteError>> + Send;

    /// Replaces the pipeline's stages with `stages`: existing ids are updated and moved to
    /// their new position, new ids inserted, absent ones deleted. Bumps the version.
    ///
    /// # Errors
    /// [`PipelineWriteError::NotFound`], [`PipelineWriteError::InUse`] (a deleted stage
    /// holds leads), storage.
    fn set_stages(
        &mut self,
        id: PipelineId,
        stages: &[(StageId, StageDraft)],
    ) -> impl Future<Output = Result<Pipeline, PipelineWriteError>> + Send;
}

/// Why a lead or activity could not be written: a reference outside the tenant (or
/// inconsistent, like a stage of another pipeline), named by its API field, or storage.
#[derive(Debug, Error)]
pub enum CrmWriteError {
    /// A referenced record does not exist in this tenant: the API field that names it.
    #[error("{0} does not refer to a record of this tenant")]
    UnknownReference(&'static str),
    /// The row does not exist in this tenant.
    #[error("not found")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Leads of the unit of work's tenant.
pub trait LeadRepository {
    /// One page of leads.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_leads(
        &mut self,
        query: &LeadQuery,
    ) -> impl Future<Output = Result<LeadPage, RepoError>> + Send;

    /// One lead; `for_update` locks it.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_lead(
        &mut self,
        id: LeadId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Lead>, RepoError>> + Send;

    /// Stores a new lead (its status follows its stage).
    ///
    /// # Errors
    /// [`CrmWriteError::UnknownReference`] (`stageId` for a stage outside the pipeline), storage.
    fn insert_lead(
        &mut self,
        id: LeadId,
        draft: &LeadDraft,
    ) -> impl Future<Output = Result<Lead, CrmWriteError>> + Send;

    /// Replaces a lead's fields and bumps its version.
    ///
    /// # Errors
    /// As insert, plus [`CrmWriteError::NotFound`].
    fn update_lead(
        &mut self,
        id: LeadId,
        draft: &LeadDraft,
    ) -> impl Future<Output = Result<Lead, CrmWriteError>> + Send;

    /// Deletes a lead and the activities linked to it.
    ///
    /// # Errors
    /// [`CrmWriteError::NotFound`], storage.
    fn delete_lead(&mut self, id: LeadId)
    -> impl Future<Output = Result<(), CrmWriteError>> + Send;
}

/// Activities of the unit of work's tenant.
pub trait ActivityRepository {
    /// One page of activities (a timeline when a link filter is set).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_activities(
        &mut self,
        query: &ActivityQuery,
    ) -> impl Future<Output = Result<ActivityPage, RepoError>> + Send;

    /// One activity; `for_update` locks it.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_activity(
        &mut self,
        id: ActivityId,
        for_update: bool,
    ) -> impl Future<Output = Result<Option<Activity>, RepoError>> + Send;

    /// Stores a new activity.
    ///
    /// # Errors
    /// [`CrmWriteError::UnknownReference`], storage.
    fn insert_activity(
        &mut self,
        id: ActivityId,
        draft: &ActivityDraft,
    ) -> impl Future<Output = Result<Activity, CrmWriteError>> + Send;

    /// Replaces an activity's fields and bumps its version.
    ///
    /// # Errors
    /// As insert, plus [`CrmWriteError::NotFound`].
    fn update_activity(
        &mut self,
        id: ActivityId,
        draft: &ActivityDraft,
    ) -> impl Future<Output = Result<Activity, CrmWriteError>> + Send;

    /// Deletes an activity.
    ///
    /// # Errors
    /// [`CrmWriteError::NotFound`], storage.
    fn delete_activity(
        &mut self,
        id: ActivityId,
    ) -> impl Future<Output = Result<(), CrmWriteError>> + Send;
}

/// A response kept for idempotent replay, with the power it was given with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status (2xx: only requests whose change committed are stored).
    pub status: u16,
    /// The headers worth replaying (`Location`, `ETag`), as (name, value).
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// The credential's role when it ran: a replay needs at least as much.
    pub role: Role,
    /// The credential's scopes when it ran: a replay needs them still.
    pub scopes: Scopes,
}

/// What one idempotency record is about: one credential's request under one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyScope {
    /// The API key or session that sent it; no other credential sees its record.
    pub credential: Uuid,
    /// The `Idempotency-Key`.
    pub key: String,
    /// SHA-256 of method, path and body.
    pub request_hash: [u8; 32],
}

/// What looking an idempotency key up at the start of a request found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// Not seen (or expired): run the request; the key is held until its transaction ends.
    Claimed,
    /// Done before with the same request: send this again (if still allowed).
    Replay(StoredResponse),
    /// Used before with another request.
    Mismatch,
    /// Another request with this key is running right now.
    InFlight,
}

/// Idempotency records of the unit of work's tenant. Both steps run inside the request's
/// own unit of work, so the record commits with the change it answers for.
pub trait IdempotencyRepository {
    /// Looks the key up and holds it for this unit of work.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn begin_idempotent(
        &mut self,
        scope: &IdempotencyScope,
    ) -> impl Future<Output = Result<IdempotencyClaim, RepoError>> + Send;

    /// Stores the response, to commit with the change.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn store_idempotent(
        &mut self,
        scope: &IdempotencyScope,
        response: &StoredResponse,
    ) -> impl Future<Output = Result<(), RepoError>> + Send;
}

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

/// One tenant-scoped, all-or-nothing piece of work. Dropping it without
/// [`UnitOfWork::commit`] discards every change.
pub trait UnitOfWork:
    ContactRepository
    + CompanyRepository
    + PipelineRepository
    + LeadRepository
    + ActivityRepository
    + IdentityRepository
    + InvitationRepository
    + QrRepository
    + IdempotencyRepository
    + WebhookRepository
    + Send
{
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

/// Opens units of work. Implementations are cheap to clone (a pool handle).
pub trait TenantStore: Clone + Send + Sync + 'static {
    /// The unit of work this store opens.
    type Uow: UnitOfWork;

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

/// Look-ups that must happen before any tenant is known, and sweeps across tenants. The
/// PostgreSQL adapter answers each through one narrow SECURITY DEFINER function.
pub trait PreAuthStore: Clone + Send + Sync + 'static {
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

/// A future that can be stored behind `dyn` (the hasher is shared as a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Password hashing (argon2id in production). Behind a port so use cases can be shown to
/// do the same work for unknown users as for wrong passwords, by counting calls.
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password into a PHC string.
    fn hash<'a>(&'a self, password: &'a Password) -> BoxFuture<'a, Result<String, RepoError>>;

    /// Checks a password against a PHC string; false for any mismatch or malformed hash.
    fn verify<'a>(&'a self, password: &'a Password, stored: &'a str) -> BoxFuture<'a, bool>;

    /// A valid hash of a password nobody knows: verified against when the user does not
    /// exist, so that case costs the same as a wrong password.
    fn dummy_hash(&self) -> &str;
}

/// What provisioning a tenant produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedTenant {
    /// The new tenant.
    pub tenant_id: TenantId,
    /// Its owner.
    pub owner_id: UserId,
}

/// The request to make a tenant: its name, its first owner, and the hash of an owner API
/// key (the clear key is made and shown by the caller).
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// Display name.
    pub name: String,
    /// The owner's e-mail address.
    pub owner_email: String,
    /// The owner's display name.
    pub owner_name: String,
    /// Name of the first API key.
    pub key_name: String,
    /// Public prefix of the first API key.
    pub key_prefix: String,
    /// Hash of the first API key.
    pub key_hash: TokenHash,
}

/// Creates tenants: a privileged operation that crosses tenants by nature, so it runs
/// with the operator's credentials (`crm tenant create`), not the application role's.
pub trait TenantProvisioning: Send + Sync {
    /// Creates the tenant, its owner user and membership, and its first API key, at once.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails; nothing was created then.
    fn provision_tenant(
        &self,
        tenant: NewTenant,
    ) -> impl Future<Output = Result<ProvisionedTenant, RepoError>> + Send;
}

/// Whether the store can serve requests now (readiness probes).
pub trait HealthCheck: Send + Sync {
    /// Succeeds when the store answers.
    ///
    /// # Errors
    /// [`RepoError`] describing why it cannot serve.
    fn check(&self) -> impl Future<Output = Result<(), RepoError>> + Send;
}

/// Counts requests against the named policies (SPEC §7).
///
/// Object-safe on purpose: the server picks the in-process limiter or the Redis one from
/// configuration at start-up, and the HTTP layer holds it as `Arc<dyn RateLimiter>`.
pub trait RateLimiter: Send + Sync {
    /// Counts one request of `key` against `policy` and answers whether it may go on. A
    /// refused request is not counted. Infallible by design: an adapter that depends on
    /// a remote store answers from a local fallback when the store is unreachable, so a
    /// limiter outage never turns into refused or failed requests.
    fn check<'a>(
        &'a self,
        policy: &'a domain::rate_limit::RatePolicy,
        key: &'a str,
    ) -> BoxFuture<'a, domain::rate_limit::RateDecision>;
}

impl<T: RateLimiter + ?Sized> RateLimiter for std::sync::Arc<T> {
    fn check<'a>(
        &'a self,
        policy: &'a domain::rate_limit::RatePolicy,
        key: &'a str,
    ) -> BoxFuture<'a, domain::rate_limit::RateDecision> {
        (**self).check(policy, key)
    }
}

/// A future that stays on the thread that made it: awc, the webhook client, is
/// single-threaded (one client per actix worker), so the sender's futures are not `Send`.
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One webhook request, fully formed: the sender adds nothing but transport headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingWebhook {
    /// Where to (already vetted at registration; vetted again at connect time).
    pub url: String,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`, `content-type`, ...
    pub headers: Vec<(String, String)>,
    /// The exact bytes that were signed.
    pub body: Vec<u8>,
}

/// What the receiving endpoint answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookReply {
    /// The HTTP status (3xx included: redirects are never followed).
    pub status: u16,
    /// `Retry-After`, in seconds or as an HTTP date, turned into a delay.
    pub retry_after: Option<std::time::Duration>,
    /// The first 1 KiB of the response body, as lossy UTF-8.
    pub body: String,
    /// From the start of the request to the end of the (capped) body.
    pub latency: std::time::Duration,
}

/// Why a webhook was not answered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WebhookSendError {
    /// The destination is not allowed: a private, loopback, link-local or otherwise
    /// reserved address (directly or by DNS), or `http` while only `https` is allowed,
    /// or not a URL at all. Permanent for that URL.
    #[error("destination refused: {0}")]
    Refused(String),
    /// No complete answer within the time limit (15 s).
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// DNS, connection, TLS or protocol failure.
    #[error("delivery failed: {0}")]
    Failed(String),
    /// Too many destination checks (DNS look-ups) are under way at once; nothing was
    /// tried. Temporary: the caller should try again shortly.
    #[error("too many destination checks under way; try again shortly")]
    Busy,
}

/// Delivers webhooks over HTTP, with the SSRF guard.
pub trait WebhookSender {
    /// Checks that `url` may receive webhooks (scheme, and every address its host resolves
    /// to), as at registration.
    ///
    /// # Errors
    /// [`WebhookSendError::Refused`] with the reason, or `Failed` when the name does not
    /// resolve.
    fn vet<'a>(&'a self, url: &'a str) -> LocalBoxFuture<'a, Result<(), WebhookSendError>>;

    /// Sends one webhook (a POST) and reports the answer, whatever its status.
    ///
    /// # Errors
    /// [`WebhookSendError`] when there was no HTTP answer.
    fn send<'a>(
        &'a self,
        webhook: &'a OutgoingWebhook,
    ) -> LocalBoxFuture<'a, Result<WebhookReply, WebhookSendError>>;
}

/// A page of the tenant's event log.
#[derive(Clone, Debug, PartialEq)]
pub struct EventLogPage {
    /// Events in log order.
    pub events: Vec<domain::event::DomainEvent>,
    /// The position of the last event returned: pass it as `after` for the next page.
    pub last_position: Option<i64>,
    /// Whether more events follow.
    pub has_more: bool,
}

/// A subscription, or a delivery, that does not exist in this tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("not found")]
pub struct WebhookNotFound;

/// The tenant's webhook subscriptions, deliveries and event log.
pub trait WebhookRepository {
    /// Stores a new subscription with its signing secret.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn insert_subscription(
        &mut self,
        id: SubscriptionId,
        draft: &SubscriptionDraft,
        secret: &str,
    ) -> impl Future<Output = Result<Subscription, RepoError>> + Send;

    /// Every subscription of the tenant, oldest first.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_subscriptions(
        &mut self,
    ) -> impl Future<Output = Result<Vec<Subscription>, RepoError>> + Send;

    /// One subscription (locked for the rest of the unit of work when `lock`).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_subscription(
        &mut self,
        id: SubscriptionId,
        lock: bool,
    ) -> impl Future<Output = Result<Option<Subscription>, RepoError>> + Send;

    /// Replaces the fields; enabling a disabled subscription clears its reason and its
    /// failure streak.
    ///
    /// # Errors
    /// [`WebhookNotFound`] (as `Ok(None)`) or [`RepoError`].
    fn update_subscription(
        &mut self,
        id: SubscriptionId,
        draft: &SubscriptionDraft,
    ) -> impl Future<Output = Result<Option<Subscription>, RepoError>> + Send;

    /// Deletes a subscription and its deliveries; false when there was none.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn delete_subscription(
        &mut self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<bool, RepoError>> + Send;

    /// Makes `secret` the signing secret; the current one keeps signing beside it until
    /// `previous_until`. False when there is no such subscription.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn rotate_secret(
        &mut self,
        id: SubscriptionId,
        secret: &str,
        previous_until: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, RepoError>> + Send;

    /// The secrets that sign now: the current one, and the previous one during a rotation.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn signing_secrets(
        &mut self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<Option<(String, Option<String>)>, RepoError>> + Send;

    /// A subscription's deliveries, newest first, at most `limit`, before `before` (a
    /// delivery id from the previous page).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_deliveries(
        &mut self,
        subscription: SubscriptionId,
        limit: u32,
        before: Option<DeliveryId>,
    ) -> impl Future<Output = Result<Vec<Delivery>, RepoError>> + Send;

    /// One delivery of a subscription, with its attempts (oldest first).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn get_delivery(
        &mut self,
        subscription: SubscriptionId,
        id: DeliveryId,
    ) -> impl Future<Output = Result<Option<(Delivery, Vec<DeliveryAttempt>)>, RepoError>> + Send;

    /// Schedules a delivery again now (a failed one by hand, or a pending one sooner).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn retry_delivery(
        &mut self,
        subscription: SubscriptionId,
        id: DeliveryId,
    ) -> impl Future<Output = Result<Option<Delivery>, RepoError>> + Send;

    /// The tenant's event log after `after` (a position from an earlier page), oldest
    /// first, only `types` when given. Events of transactions still open are not shown
    /// yet, so paging by position never skips one that commits late.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn list_events(
        &mut self,
        after: Option<i64>,
        types: &[String],
        limit: u32,
    ) -> impl Future<Output = Result<EventLogPage, RepoError>> + Send;

    /// The log position of the tenant's event with this id (the `evt_…` of its payload
    /// and `webhook-id` header), to resume after it.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn event_position(
        &mut self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<i64>, RepoError>> + Send;

    /// Records an attempt of a leased delivery and what follows it. Nothing is written
    /// (false) if the lease token is no longer the delivery's: another worker took it over.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn record_attempt(
        &mut self,
        delivery: DeliveryId,
        lease_token: uuid::Uuid,
        attempt: &DeliveryAttempt,
        next: &NextStep,
    ) -> impl Future<Output = Result<bool, RepoError>> + Send;

    /// Since when the subscription's deliveries have all failed (None: its last attempt
    /// succeeded, or it has made none).
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn failing_since(
        &mut self,
        subscription: SubscriptionId,
    ) -> impl Future<Output = Result<Option<OffsetDateTime>, RepoError>> + Send;
}

/// A delivery the worker leased, with everything sending needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// Whose.
    pub tenant_id: TenantId,
    /// Which.
    pub delivery_id: DeliveryId,
    /// Proves the lease when recording.
    pub lease_token: uuid::Uuid,
    /// Attempts made before this one.
    pub attempts: i32,
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The event to deliver (its id is the `webhook-id` header).
    pub event: domain::event::DomainEvent,
    /// Where to.
    pub url: String,
    /// The signing secret.
    pub secret: String,
    /// The previous secret, during a rotation.
    pub previous_secret: Option<String>,
}

/// The delivery queue, across tenants (the worker's narrow door).
pub trait DeliveryQueue {
    /// Leases up to `limit` due deliveries for `lease`; concurrent callers get disjoint
    /// sets, and a delivery whose lease expired (its worker died) is handed out again.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn claim_deliveries(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, RepoError>> + Send;

    /// Deletes events and attempts older than `age` (deliveries still pending keep their
    /// events); returns how many rows went.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn sweep_history(
        &self,
        age: std::time::Duration,
    ) -> impl Future<Output = Result<u64, RepoError>> + Send;
}
