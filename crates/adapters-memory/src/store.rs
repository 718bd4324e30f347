//! The store and its unit of work: every tenant's data behind one mutex; a unit of work
//! takes a copy of its tenant's data, works on it, and writes it back on commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use domain::company::Company;
use domain::contact::Contact;
use domain::identity::{ApiKeyRecord, TenantInfo};
use domain::ids::{ApiKeyId, CompanyId, ContactId, QrSessionId, SessionId, TenantId, UserId};
use domain::principal::{Actor, Principal, Role, Scopes};
use domain::token::TokenHash;
use ports::{
    Clock, NewTenant, ProvisionedTenant, RepoError, SystemClock, TenantProvisioning, TenantStore,
    UnitOfWork,
};
use time::OffsetDateTime;

use crate::events::PendingPipelineEvent;
use crate::pipelines::default_pipeline;
use crate::qr::QrRecord;
use crate::{invitations, webhooks};

/// One tenant's data.
#[derive(Clone, Debug)]
pub(crate) struct TenantData {
    pub(crate) info: TenantInfo,
    /// Members: role and when they joined.
    pub(crate) members: BTreeMap<UserId, (Role, OffsetDateTime)>,
    pub(crate) contacts: BTreeMap<ContactId, Contact>,
    pub(crate) companies: BTreeMap<CompanyId, Company>,
    pub(crate) pipelines: BTreeMap<domain::pipeline::PipelineId, domain::pipeline::Pipeline>,
    pub(crate) leads: BTreeMap<domain::lead::LeadId, domain::lead::Lead>,
    pub(crate) activities: BTreeMap<domain::activity::ActivityId, domain::activity::Activity>,
    pub(crate) keys: BTreeMap<ApiKeyId, (ApiKeyRecord, [u8; 32])>,
    pub(crate) sessions: BTreeMap<SessionId, StoredSession>,
    /// Idempotency keys: request hash and, once completed, the stored response.
    /// Idempotency records by (credential, key): request hash, response, when stored.
    pub(crate) idempotency:
        HashMap<(uuid::Uuid, String), ([u8; 32], ports::StoredResponse, OffsetDateTime)>,
    /// Webhooks: subscriptions with their secrets, deliveries, and the event log.
    pub(crate) webhooks: webhooks::WebhookData,
    /// Invitations with their token hashes.
    pub(crate) invitations: invitations::InvitationData,
}

impl TenantData {
    /// A new tenant with its default pipeline, whose `pipeline.created` is the tenant's
    /// first event (PostgreSQL's tenant trigger makes the pipeline in the tenant's context).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] if the event cannot be built.
    pub(crate) fn new(
        id: TenantId,
        name: String,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<Self, RepoError> {
        let default = default_pipeline(id, now);
        let mut data = Self {
            pipelines: BTreeMap::from([(default.id, default.clone())]),
            leads: BTreeMap::new(),
            activities: BTreeMap::new(),
            info: TenantInfo {
                id,
                name,
                expires_at,
            },
            members: BTreeMap::new(),
            contacts: BTreeMap::new(),
            companies: BTreeMap::new(),
            keys: BTreeMap::new(),
            sessions: BTreeMap::new(),
            idempotency: HashMap::new(),
            webhooks: webhooks::WebhookData::default(),
            invitations: invitations::InvitationData::default(),
        };
        data.record_change(now, None, Some(&default))?;
        Ok(data)
    }

    /// Not past its expiry (only demo tenants have one).
    pub(crate) fn live(&self, now: OffsetDateTime) -> bool {
        self.info.expires_at.is_none_or(|at| at > now)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct StoredSession {
    pub(crate) user_id: UserId,
    pub(crate) token_hash: [u8; 32],
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) last_seen_at: OffsetDateTime,
    pub(crate) revoked: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct UserRecord {
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) password_hash: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) tenants: HashMap<TenantId, TenantData>,
    pub(crate) users: HashMap<UserId, UserRecord>,
    pub(crate) qr: HashMap<QrSessionId, QrRecord>,
}

impl State {
    pub(crate) fn email_taken(&self, email: &str) -> Option<UserId> {
        self.users
            .iter()
            .find(|(_, u)| u.email.eq_ignore_ascii_case(email))
            .map(|(id, _)| *id)
    }
}

/// The whole store: cheap to clone, shared by every unit of work.
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    /// Whose "now" every expiry, lifetime and timestamp of this store follows, the use
    /// cases' included (they read it from the unit of work).
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

impl MemoryStore {
    /// An empty store on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose time is `clock`'s: give it a [`crate::ManualClock`] to move
    /// time in a test instead of sleeping.
    #[must_use]
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::default(),
            clock,
        }
    }

    /// Now, to the microsecond, as PostgreSQL stores timestamps.
    pub(crate) fn now(&self) -> OffsetDateTime {
        let now = self.clock.now();
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, State>, RepoError> {
        self.state
            .lock()
            .map_err(|_| RepoError::Unexpected("memory store lock poisoned".into()))
    }

    /// Adds an API key with the given role and scopes to an existing tenant (test set-up).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] if the tenant does not exist.
    pub fn add_api_key(
        &self,
        tenant_id: TenantId,
        hash: TokenHash,
        role: Role,
        scopes: &[&str],
    ) -> Result<ApiKeyId, RepoError> {
        let now = self.now();
        let mut state = self.lock()?;
        let tenant = state
            .tenants
            .get_mut(&tenant_id)
            .ok_or_else(|| RepoError::Unexpected("no such tenant".into()))?;
        // Like every key, it answers to a person: the tenant's first owner.
        let owner = tenant
            .members
            .iter()
            .filter(|(_, (r, _))| *r == Role::Owner)
            .map(|(id, _)| *id)
            .min_by_key(UserId::as_uuid)
            .ok_or_else(|| RepoError::Unexpected("the tenant has no owner".into()))?;
        let id = ApiKeyId::new();
        let record = ApiKeyRecord {
            id,
            name: "test key".into(),
            prefix: "crm_sk_test".into(),
            role,
            scopes: Scopes::from_names(scopes.iter().map(|s| (*s).to_owned()).collect()),
            created_by: None,
            acts_for: Some(owner),
            created_at: now,
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        };
        tenant.keys.insert(id, (record, hash.0));
        Ok(id)
    }

    /// Revokes every key with this hash (test set-up).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] if the lock is poisoned.
    pub fn revoke_api_key(&self, hash: &TokenHash) -> Result<(), RepoError> {
        let now = self.now();
        let mut state = self.lock()?;
        for tenant in state.tenants.values_mut() {
            for (record, stored) in tenant.keys.values_mut() {
                if *stored == hash.0 {
                    record.revoked_at = Some(now);
                }
            }
        }
        Ok(())
    }

    /// How many contacts a tenant has, committed (test assertions).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] if the lock is poisoned.
    pub fn contact_count(&self, tenant_id: TenantId) -> Result<usize, RepoError> {
        Ok(self
            .lock()?
            .tenants
            .get(&tenant_id)
            .map_or(0, |t| t.contacts.len()))
    }

    /// Sets a tenant's expiry (test set-up for the demo sweep).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] if the lock is poisoned.
    pub fn set_tenant_expiry(
        &self,
        tenant_id: TenantId,
        at: OffsetDateTime,
    ) -> Result<(), RepoError> {
        if let Some(tenant) = self.lock()?.tenants.get_mut(&tenant_id) {
            tenant.info.expires_at = Some(at);
        }
        Ok(())
    }

    /// Whether a tenant exists (test assertions).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] if the lock is poisoned.
    pub fn has_tenant(&self, tenant_id: TenantId) -> Result<bool, RepoError> {
        Ok(self.lock()?.tenants.contains_key(&tenant_id))
    }
}

/// A unit of work over one tenant's copied data.
#[derive(Debug)]
pub struct MemoryUnitOfWork {
    pub(crate) store: MemoryStore,
    pub(crate) tenant_id: TenantId,
    /// `None` until the tenant exists (sign-up creates it inside the unit of work).
    pub(crate) data: Option<TenantData>,
    pub(crate) new_users: Vec<(UserId, UserRecord)>,
    /// Where `commit` parks it instead, for an idempotent request's stored response.
    pub(crate) parked: Option<ports::CommitSlot<MemoryUnitOfWork>>,
    /// Pipeline changes whose events are written at commit, in order.
    pub(crate) pending_pipelines: Vec<PendingPipelineEvent>,
}

impl MemoryStore {
    /// The caller a live API key acts as, with its tenant's data, as it is now.
    pub(crate) fn api_key_caller(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(Principal, TenantData)>, RepoError> {
        let state = self.lock()?;
        let now = self.now();
        let found = state
            .tenants
            .values()
            .filter(|t| t.live(now))
            .find_map(|tenant| {
                tenant
                    .keys
                    .values()
                    .find(|(record, stored)| {
                        *stored == hash.0
                            && record.revoked_at.is_none()
                            && record.expires_at.is_none_or(|at| at > now)
                    })
                    .map(|(record, _)| (tenant.clone(), record.clone()))
            });
        drop(state);
        let Some((tenant, key)) = found else {
            return Ok(None);
        };
        // The key works only while its person is a member, never above their role.
        let Some((acts_for, member_role)) = key
            .acts_for
            .and_then(|user| tenant.members.get(&user).map(|(role, _)| (user, *role)))
        else {
            return Ok(None);
        };
        let role = if member_role.rank() < key.role.rank() {
            member_role
        } else {
            key.role
        };
        let principal = Principal {
            tenant_id: tenant.info.id,
            tenant_name: tenant.info.name.clone(),
            actor: Actor::ApiKey {
                id: key.id,
                name: key.name,
                prefix: key.prefix,
                acts_for,
            },
            role,
            scopes: key.scopes,
        };
        Ok(Some((principal, tenant)))
    }

    pub(crate) fn unit(&self, tenant_id: TenantId, data: Option<TenantData>) -> MemoryUnitOfWork {
        MemoryUnitOfWork {
            store: self.clone(),
            tenant_id,
            data,
            new_users: Vec::new(),
            parked: None,
            pending_pipelines: Vec::new(),
        }
    }
}

impl TenantStore for MemoryStore {
    type Uow = MemoryUnitOfWork;

    async fn begin_with_api_key(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(Principal, MemoryUnitOfWork)>, RepoError> {
        let Some((principal, tenant)) = self.api_key_caller(hash)? else {
            return Ok(None);
        };
        Ok(Some((principal, self.unit(tenant.info.id, Some(tenant)))))
    }

    async fn begin_with_session(
        &self,
        hash: &TokenHash,
        idle_timeout_seconds: i64,
    ) -> Result<Option<(Principal, MemoryUnitOfWork)>, RepoError> {
        let mut state = self.lock()?;
        let now = self.now();
        let idle = time::Duration::seconds(idle_timeout_seconds);
        let mut found = None;
        for tenant in state.tenants.values_mut().filter(|t| t.live(now)) {
            let hit = tenant.sessions.iter_mut().find(|(_, s)| {
                s.token_hash == hash.0
                    && !s.revoked
                    && s.expires_at > now
                    && s.last_seen_at > now - idle
            });
            if let Some((id, session)) = hit {
                session.last_seen_at = now;
                let (id, user_id) = (*id, session.user_id);
                if let Some((role, _)) = tenant.members.get(&user_id) {
                    found = Some((tenant.clone(), id, user_id, *role));
                }
                break;
            }
        }
        let Some((tenant, session_id, user_id, role)) = found else {
            return Ok(None);
        };
        let user = state
            .users
            .get(&user_id)
            .cloned()
            .ok_or_else(|| RepoError::Unexpected("session of unknown user".into()))?;
        drop(state);
        let principal = Principal {
            tenant_id: tenant.info.id,
            tenant_name: tenant.info.name.clone(),
            actor: Actor::User {
                id: user_id,
                email: user.email,
                name: user.name,
                session_id,
            },
            role,
            scopes: Scopes::all(),
        };
        Ok(Some((principal, self.unit(tenant.info.id, Some(tenant)))))
    }

    async fn begin_for_tenant(&self, tenant: TenantId) -> Result<MemoryUnitOfWork, RepoError> {
        let data = self.lock()?.tenants.get(&tenant).cloned();
        Ok(self.unit(tenant, data))
    }
}

impl TenantProvisioning for MemoryStore {
    async fn provision_tenant(&self, tenant: NewTenant) -> Result<ProvisionedTenant, RepoError> {
        let now = self.now();
        let tenant_id = TenantId::new();
        let owner_id = UserId::new();
        let mut state = self.lock()?;
        if state.email_taken(&tenant.owner_email).is_some() {
            return Err(RepoError::Unexpected("owner e-mail already used".into()));
        }
        state.users.insert(
            owner_id,
            UserRecord {
                email: tenant.owner_email,
                name: tenant.owner_name,
                password_hash: None,
            },
        );
        let mut data = TenantData::new(tenant_id, tenant.name, None, now)?;
        data.members.insert(owner_id, (Role::Owner, now));
        let key_id = ApiKeyId::new();
        let record = ApiKeyRecord {
            id: key_id,
            name: tenant.key_name,
            prefix: tenant.key_prefix,
            role: Role::Owner,
            created_by: Some(owner_id),
            acts_for: Some(owner_id),
            scopes: Scopes::all(),
            created_at: now,
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        };
        data.keys.insert(key_id, (record, tenant.key_hash.0));
        state.tenants.insert(tenant_id, data);
        Ok(ProvisionedTenant {
            tenant_id,
            owner_id,
        })
    }
}

impl MemoryUnitOfWork {
    pub(crate) fn data(&self) -> Result<&TenantData, RepoError> {
        self.data
            .as_ref()
            .ok_or_else(|| RepoError::Unexpected("no such tenant".into()))
    }

    pub(crate) fn data_mut(&mut self) -> Result<&mut TenantData, RepoError> {
        self.data
            .as_mut()
            .ok_or_else(|| RepoError::Unexpected("no such tenant".into()))
    }
}
impl MemoryUnitOfWork {
    /// Now, by the store's clock (to the microsecond).
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.store.now()
    }
}

impl Clock for MemoryStore {
    fn now(&self) -> OffsetDateTime {
        MemoryStore::now(self)
    }
}

impl Clock for MemoryUnitOfWork {
    fn now(&self) -> OffsetDateTime {
        MemoryUnitOfWork::now(self)
    }
}

impl UnitOfWork for MemoryUnitOfWork {
    async fn commit(mut self) -> Result<(), RepoError> {
        if let Some(slot) = self.parked.take() {
            slot.park(self);
            return Ok(());
        }
        self.record_pending_pipelines()?;
        let mut state = self.store.lock()?;
        for (id, user) in self.new_users {
            state.users.insert(id, user);
        }
        if let Some(data) = self.data {
            state.tenants.insert(self.tenant_id, data);
        }
        Ok(())
    }

    fn park_commit(&mut self, slot: ports::CommitSlot<Self>) {
        self.parked = Some(slot);
    }
}

impl ports::HealthCheck for MemoryStore {
    async fn check(&self) -> Result<(), RepoError> {
        self.lock().map(|_| ())
    }
}
