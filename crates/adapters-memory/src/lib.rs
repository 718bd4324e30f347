//! An in-memory implementation of every port, for fast use-case tests.
//!
//! A unit of work takes a copy of its tenant's data, works on the copy, and writes it back
//! on commit: dropping it discards every change, like a rolled-back transaction. Units of
//! work of one tenant that overlap in time are last-writer-wins, which is enough for tests
//! that run use cases one after another; the PostgreSQL adapter is the one with real
//! isolation and locking.

mod invitations;
pub mod rate_limit;
mod webhooks;

pub use rate_limit::GovernorRateLimiter;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use domain::company::{Company, CompanyDraft, CompanyPage, CompanyQuery};
use domain::contact::{Contact, ContactDraft, ContactPage, ContactQuery};
use domain::identity::{
    ApiKeyRecord, LoginCandidate, Member, NewApiKey, NewQrSession, NewSession, NewUser,
    QrRequester, QrStatus, TenantInfo,
};
use domain::ids::{ApiKeyId, CompanyId, ContactId, QrSessionId, SessionId, TenantId, UserId};
use domain::list::{Cursor, Page, SortValue};
use domain::principal::{Actor, Principal, Role, Scopes};
use domain::token::TokenHash;
use ports::{
    CompanyRepository, CompanyWriteError, ContactRepository, ContactWriteError, IdentityRepository,
    IdentityWriteError, NewQrLoginSession, NewTenant, PreAuthStore, ProvisionedTenant, QrDecision,
    QrPoll, QrRepository, QrScan, RepoError, TenantProvisioning, TenantStore, UnitOfWork,
};
use time::OffsetDateTime;

/// One tenant's data.
#[derive(Clone, Debug)]
struct TenantData {
    info: TenantInfo,
    /// Members: role and when they joined.
    members: BTreeMap<UserId, (Role, OffsetDateTime)>,
    contacts: BTreeMap<ContactId, Contact>,
    companies: BTreeMap<CompanyId, Company>,
    pipelines: BTreeMap<domain::pipeline::PipelineId, domain::pipeline::Pipeline>,
    leads: BTreeMap<domain::lead::LeadId, domain::lead::Lead>,
    activities: BTreeMap<domain::activity::ActivityId, domain::activity::Activity>,
    keys: BTreeMap<ApiKeyId, (ApiKeyRecord, [u8; 32])>,
    sessions: BTreeMap<SessionId, StoredSession>,
    /// Idempotency keys: request hash and, once completed, the stored response.
    /// Idempotency records by (credential, key): request hash, response, when stored.
    idempotency: HashMap<(uuid::Uuid, String), ([u8; 32], ports::StoredResponse, OffsetDateTime)>,
    /// Webhooks: subscriptions with their secrets, deliveries, and the event log.
    webhooks: webhooks::WebhookData,
    /// Invitations with their token hashes.
    invitations: invitations::InvitationData,
}

impl TenantData {
    fn new(id: TenantId, name: String, expires_at: Option<OffsetDateTime>) -> Self {
        let default = default_pipeline(id);
        Self {
            pipelines: BTreeMap::from([(default.id, default)]),
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
        }
    }

    fn live(&self) -> bool {
        self.info
            .expires_at
            .is_none_or(|at| at > OffsetDateTime::now_utc())
    }
}

#[derive(Clone, Debug)]
struct StoredSession {
    user_id: UserId,
    token_hash: [u8; 32],
    expires_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
    revoked: bool,
}

#[derive(Clone, Debug)]
struct UserRecord {
    email: String,
    name: String,
    password_hash: Option<String>,
}

#[derive(Clone, Debug)]
struct QrRecord {
    code_hash: [u8; 32],
    poll_hash: [u8; 32],
    status: QrStatus,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    interval_seconds: i32,
    last_polled_at: Option<OffsetDateTime>,
    scanner: Option<(TenantId, UserId)>,
}

impl QrRecord {
    fn expired(&self) -> bool {
        matches!(
            self.status,
            QrStatus::Pending | QrStatus::Scanned | QrStatus::Linked
        ) && self.expires_at <= OffsetDateTime::now_utc()
    }
}

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<TenantId, TenantData>,
    users: HashMap<UserId, UserRecord>,
    qr: HashMap<QrSessionId, QrRecord>,
}

impl State {
    fn email_taken(&self, email: &str) -> Option<UserId> {
        self.users
            .iter()
            .find(|(_, u)| u.email.eq_ignore_ascii_case(email))
            .map(|(id, _)| *id)
    }
}

/// The whole store: cheap to clone, shared by every unit of work.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, RepoError> {
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
            created_at: now(),
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
        let mut state = self.lock()?;
        for tenant in state.tenants.values_mut() {
            for (record, stored) in tenant.keys.values_mut() {
                if *stored == hash.0 {
                    record.revoked_at = Some(now());
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
    store: MemoryStore,
    tenant_id: TenantId,
    /// `None` until the tenant exists (sign-up creates it inside the unit of work).
    data: Option<TenantData>,
    new_users: Vec<(UserId, UserRecord)>,
    /// Where `commit` parks it instead, for an idempotent request's stored response.
    parked: Option<ports::CommitSlot<MemoryUnitOfWork>>,
}

/// Timestamps as PostgreSQL stores them: microseconds.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

impl MemoryStore {
    fn unit(&self, tenant_id: TenantId, data: Option<TenantData>) -> MemoryUnitOfWork {
        MemoryUnitOfWork {
            store: self.clone(),
            tenant_id,
            data,
            new_users: Vec::new(),
            parked: None,
        }
    }
}

impl TenantStore for MemoryStore {
    type Uow = MemoryUnitOfWork;

    async fn begin_with_api_key(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(Principal, MemoryUnitOfWork)>, RepoError> {
        let state = self.lock()?;
        let now = now();
        let found = state
            .tenants
            .values()
            .filter(|t| t.live())
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
        Ok(Some((principal, self.unit(tenant.info.id, Some(tenant)))))
    }

    async fn begin_with_session(
        &self,
        hash: &TokenHash,
        idle_timeout_seconds: i64,
    ) -> Result<Option<(Principal, MemoryUnitOfWork)>, RepoError> {
        let mut state = self.lock()?;
        let now = now();
        let idle = time::Duration::seconds(idle_timeout_seconds);
        let mut found = None;
        for tenant in state.tenants.values_mut().filter(|t| t.live()) {
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
        let mut data = TenantData::new(tenant_id, tenant.name, None);
        data.members.insert(owner_id, (Role::Owner, now()));
        let key_id = ApiKeyId::new();
        let record = ApiKeyRecord {
            id: key_id,
            name: tenant.key_name,
            prefix: tenant.key_prefix,
            role: Role::Owner,
            created_by: Some(owner_id),
            acts_for: Some(owner_id),
            scopes: Scopes::all(),
            created_at: now(),
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
    fn data(&self) -> Result<&TenantData, RepoError> {
        self.data
            .as_ref()
            .ok_or_else(|| RepoError::Unexpected("no such tenant".into()))
    }

    fn data_mut(&mut self) -> Result<&mut TenantData, RepoError> {
        self.data
            .as_mut()
            .ok_or_else(|| RepoError::Unexpected("no such tenant".into()))
    }

    fn check_write(&self, id: ContactId, draft: &ContactDraft) -> Result<(), ContactWriteError> {
        let data = self.data()?;
        if let Some(email) = &draft.email {
            let taken = data
                .contacts
                .values()
                .any(|c| c.id != id && c.fields.email.as_ref() == Some(email));
            if taken {
                return Err(ContactWriteError::DuplicateEmail);
            }
        }
        if let Some(owner) = draft.owner_id
            && !data.members.contains_key(&owner)
        {
            return Err(ContactWriteError::UnknownOwner);
        }
        if let Some(company) = draft.company_id
            && !data.companies.contains_key(&company)
        {
            return Err(ContactWriteError::UnknownCompany);
        }
        Ok(())
    }
}

fn matches(contact: &Contact, query: &ContactQuery) -> bool {
    let fields = &contact.fields;
    let q_ok = query.q.as_deref().is_none_or(|q| {
        let q = q.to_lowercase();
        [&fields.first_name, &fields.last_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .chain(fields.email.as_ref().map(|e| e.as_str()))
            .chain(fields.phone.as_ref().map(|p| p.as_str()))
            .any(|text| text.to_lowercase().contains(&q))
    });
    q_ok && query
        .email
        .as_ref()
        .is_none_or(|e| fields.email.as_ref() == Some(e))
        && query
            .company_id
            .is_none_or(|c| fields.company_id == Some(c))
        && query.owner_id.is_none_or(|o| fields.owner_id == Some(o))
        && query
            .tag
            .as_ref()
            .is_none_or(|t| fields.tags.as_slice().contains(t))
        && query.created_after.is_none_or(|t| contact.created_at > t)
        && query.updated_after.is_none_or(|t| contact.updated_at > t)
}

/// Sorts, applies the keyset cursor and cuts one page, like the SQL adapters do.
fn page_of<T: Clone, F: Copy>(
    mut rows: Vec<&T>,
    key: impl Fn(&T) -> (SortValue, uuid::Uuid),
    sort: domain::list::Sort<F>,
    cursor: Option<&Cursor<F>>,
    limit: domain::list::Limit,
) -> Page<T, F> {
    let directed = |order: std::cmp::Ordering| {
        if sort.descending {
            order.reverse()
        } else {
            order
        }
    };
    rows.sort_by(|a, b| directed(compare(&key(a), &key(b))));
    if let Some(cursor) = cursor {
        let after = (cursor.value.clone(), cursor.id);
        rows.retain(|row| directed(compare(&key(row), &after)).is_gt());
    }
    let limit = usize::from(limit.get());
    let has_more = rows.len() > limit;
    let items: Vec<T> = rows.into_iter().take(limit).cloned().collect();
    let next = if has_more {
        items.last().map(|last| {
            let (value, id) = key(last);
            Cursor { sort, value, id }
        })
    } else {
        None
    };
    Page { items, next }
}

fn compare(a: &(SortValue, uuid::Uuid), b: &(SortValue, uuid::Uuid)) -> std::cmp::Ordering {
    let values = match (&a.0, &b.0) {
        (SortValue::Timestamp(x), SortValue::Timestamp(y)) => x.cmp(y),
        (SortValue::Text(x), SortValue::Text(y)) => x.cmp(y),
        (SortValue::Timestamp(_), SortValue::Text(_)) => std::cmp::Ordering::Less,
        (SortValue::Text(_), SortValue::Timestamp(_)) => std::cmp::Ordering::Greater,
    };
    values.then(a.1.cmp(&b.1))
}

impl ContactRepository for MemoryUnitOfWork {
    async fn list_contacts(&mut self, query: &ContactQuery) -> Result<ContactPage, RepoError> {
        let rows: Vec<&Contact> = self
            .data()?
            .contacts
            .values()
            .filter(|c| matches(c, query))
            .collect();
        let key = |c: &Contact| (query.sort.field.value_of(c), c.id.as_uuid());
        Ok(page_of(
            rows,
            key,
            query.sort,
            query.cursor.as_ref(),
            query.limit,
        ))
    }

    async fn get_contact(
        &mut self,
        id: ContactId,
        _for_update: bool,
    ) -> Result<Option<Contact>, RepoError> {
        Ok(self.data()?.contacts.get(&id).cloned())
    }

    async fn find_contact_by_email(
        &mut self,
        email: &domain::contact::Email,
    ) -> Result<Option<Contact>, RepoError> {
        Ok(self
            .data()?
            .contacts
            .values()
            .find(|c| c.fields.email.as_ref() == Some(email))
            .cloned())
    }

    async fn find_contacts_by_emails(
        &mut self,
        emails: &[domain::contact::Email],
    ) -> Result<Vec<Contact>, RepoError> {
        Ok(self
            .data()?
            .contacts
            .values()
            .filter(|c| c.fields.email.as_ref().is_some_and(|e| emails.contains(e)))
            .cloned()
            .collect())
    }

    async fn insert_contacts(
        &mut self,
        rows: &[(ContactId, ContactDraft)],
    ) -> Result<Vec<ContactId>, ContactWriteError> {
        let mut created = Vec::with_capacity(rows.len());
        for (id, draft) in rows {
            match self.insert_contact(*id, draft).await {
                Ok(contact) => created.push(contact.id),
                // As PostgreSQL's ON CONFLICT DO NOTHING: a taken e-mail skips the row.
                Err(ContactWriteError::DuplicateEmail) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(created)
    }

    async fn insert_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> Result<Contact, ContactWriteError> {
        self.check_write(id, draft)?;
        let now = now();
        let contact = Contact {
            id,
            tenant_id: self.tenant_id,
            fields: draft.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.data_mut()?.contacts.insert(id, contact.clone());
        Ok(contact)
    }

    async fn update_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> Result<Contact, ContactWriteError> {
        self.check_write(id, draft)?;
        let contact = self
            .data_mut()?
            .contacts
            .get_mut(&id)
            .ok_or(ContactWriteError::NotFound)?;
        contact.fields = draft.clone();
        contact.updated_at = now().max(contact.updated_at);
        contact.version += 1;
        Ok(contact.clone())
    }

    async fn delete_contact(&mut self, id: ContactId) -> Result<(), ContactWriteError> {
        let data = self.data_mut()?;
        data.contacts
            .remove(&id)
            .ok_or(ContactWriteError::NotFound)?;
        for lead in data.leads.values_mut() {
            if lead.fields.contact_id == Some(id) {
                lead.fields.contact_id = None;
            }
        }
        data.activities
            .retain(|_, a| a.fields.contact_id != Some(id));
        Ok(())
    }
}

impl UnitOfWork for MemoryUnitOfWork {
    async fn commit(mut self) -> Result<(), RepoError> {
        if let Some(slot) = self.parked.take() {
            slot.park(self);
            return Ok(());
        }
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

impl MemoryUnitOfWork {
    fn member(&self, user: UserId) -> Result<Option<Member>, RepoError> {
        let data = self.data()?;
        let Some((role, created_at)) = data.members.get(&user) else {
            return Ok(None);
        };
        let record = self
            .new_users
            .iter()
            .find(|(id, _)| *id == user)
            .map(|(_, u)| u.clone())
            .or_else(|| {
                self.store
                    .lock()
                    .ok()
                    .and_then(|s| s.users.get(&user).cloned())
            })
            .ok_or_else(|| RepoError::Unexpected("member without user".into()))?;
        Ok(Some(Member {
            user_id: user,
            email: record.email,
            name: record.name,
            role: *role,
            created_at: *created_at,
        }))
    }
}

impl IdentityRepository for MemoryUnitOfWork {
    async fn tenant(&mut self) -> Result<TenantInfo, RepoError> {
        Ok(self.data()?.info.clone())
    }

    async fn insert_tenant(
        &mut self,
        name: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<TenantInfo, RepoError> {
        if self.data.is_some() {
            return Err(RepoError::Unexpected("tenant exists".into()));
        }
        let data = TenantData::new(self.tenant_id, name.to_owned(), expires_at);
        let info = data.info.clone();
        self.data = Some(data);
        Ok(info)
    }

    async fn insert_user(&mut self, user: &NewUser) -> Result<(), IdentityWriteError> {
        let taken = self
            .store
            .lock()?
            .email_taken(user.email.as_str())
            .is_some()
            || self
                .new_users
                .iter()
                .any(|(_, u)| u.email.eq_ignore_ascii_case(user.email.as_str()));
        if taken {
            return Err(IdentityWriteError::EmailTaken);
        }
        self.new_users.push((
            user.id,
            UserRecord {
                email: user.email.as_str().to_owned(),
                name: user.name.clone(),
                password_hash: user.password_hash.clone(),
            },
        ));
        Ok(())
    }

    async fn insert_membership(
        &mut self,
        user: UserId,
        role: Role,
    ) -> Result<(), IdentityWriteError> {
        let data = self.data_mut()?;
        if data.members.contains_key(&user) {
            return Err(IdentityWriteError::AlreadyMember);
        }
        data.members.insert(user, (role, now()));
        Ok(())
    }

    async fn insert_session(&mut self, session: &NewSession) -> Result<(), RepoError> {
        let data = self.data_mut()?;
        data.sessions.insert(
            session.id,
            StoredSession {
                user_id: session.user_id,
                token_hash: session.token_hash.0,
                expires_at: session.expires_at,
                last_seen_at: now(),
                revoked: false,
            },
        );
        Ok(())
    }

    async fn revoke_session(&mut self, id: SessionId) -> Result<(), RepoError> {
        if let Some(session) = self.data_mut()?.sessions.get_mut(&id) {
            session.revoked = true;
        }
        Ok(())
    }

    async fn insert_api_key(&mut self, key: &NewApiKey) -> Result<ApiKeyRecord, RepoError> {
        let record = ApiKeyRecord {
            id: key.id,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            role: key.role,
            created_by: key.created_by,
            acts_for: Some(key.acts_for),
            scopes: key.scopes.clone(),
            created_at: now(),
            last_used_at: None,
            expires_at: key.expires_at,
            revoked_at: None,
        };
        self.data_mut()?
            .keys
            .insert(key.id, (record.clone(), key.key_hash.0));
        Ok(record)
    }

    async fn list_api_keys(&mut self) -> Result<Vec<ApiKeyRecord>, RepoError> {
        let mut keys: Vec<ApiKeyRecord> =
            self.data()?.keys.values().map(|(r, _)| r.clone()).collect();
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(keys)
    }

    async fn get_api_key(&mut self, id: ApiKeyId) -> Result<Option<ApiKeyRecord>, RepoError> {
        Ok(self.data()?.keys.get(&id).map(|(r, _)| r.clone()))
    }

    async fn revoke_api_key(&mut self, id: ApiKeyId) -> Result<Option<ApiKeyRecord>, RepoError> {
        Ok(self.data_mut()?.keys.get_mut(&id).map(|(record, _)| {
            record.revoked_at = record.revoked_at.or_else(|| Some(now()));
            record.clone()
        }))
    }

    async fn list_members(&mut self) -> Result<Vec<Member>, RepoError> {
        let ids: Vec<UserId> = self.data()?.members.keys().copied().collect();
        let mut members = Vec::with_capacity(ids.len());
        for id in ids {
            members.extend(self.member(id)?);
        }
        members.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then(a.user_id.cmp(&b.user_id))
        });
        Ok(members)
    }

    async fn get_member(
        &mut self,
        user: UserId,
        _for_update: bool,
    ) -> Result<Option<Member>, RepoError> {
        self.member(user)
    }

    async fn set_member_role(
        &mut self,
        user: UserId,
        role: Role,
    ) -> Result<Option<Member>, RepoError> {
        match self.data_mut()?.members.get_mut(&user) {
            Some(entry) => entry.0 = role,
            None => return Ok(None),
        }
        self.member(user)
    }

    async fn delete_member(&mut self, user: UserId) -> Result<bool, RepoError> {
        let data = self.data_mut()?;
        data.sessions.retain(|_, s| s.user_id != user);
        data.keys
            .retain(|_, (record, _)| record.acts_for != Some(user));
        data.invitations.forget_inviter(user);
        Ok(data.members.remove(&user).is_some())
    }

    async fn lock_owners(&mut self) -> Result<Vec<UserId>, RepoError> {
        Ok(self
            .data()?
            .members
            .iter()
            .filter(|(_, (r, _))| *r == Role::Owner)
            .map(|(id, _)| *id)
            .collect())
    }
}

/// QR requests live outside any tenant, so these steps act on the shared state directly
/// (not staged with the unit of work).
impl QrRepository for MemoryUnitOfWork {
    async fn qr_scan(&mut self, code: &TokenHash, user: UserId) -> Result<QrScan, RepoError> {
        if !self.data()?.members.contains_key(&user) {
            return Ok(QrScan::NotFound);
        }
        let tenant = self.tenant_id;
        let mut state = self.store.lock()?;
        let Some((id, request)) = state.qr.iter_mut().find(|(_, q)| q.code_hash == code.0) else {
            return Ok(QrScan::NotFound);
        };
        if request.expired() {
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
    let mut state = store.lock()?;
    let Some(request) = state
        .qr
        .get_mut(&id)
        .filter(|q| q.scanner == Some((tenant, user)))
    else {
        return Ok(QrDecision::NotFound);
    };
    if request.expired() {
        return Ok(QrDecision::Expired);
    }
    if request.status != QrStatus::Scanned {
        return Ok(QrDecision::AlreadyUsed(request.status));
    }
    request.status = decision;
    Ok(QrDecision::Done)
}

impl PreAuthStore for MemoryStore {
    async fn find_login(&self, email: &str) -> Result<Option<LoginCandidate>, RepoError> {
        let state = self.lock()?;
        let Some(user_id) = state.email_taken(email) else {
            return Ok(None);
        };
        let Some(user) = state.users.get(&user_id) else {
            return Ok(None);
        };
        let mut memberships: Vec<(OffsetDateTime, TenantId, String, Role)> = state
            .tenants
            .values()
            .filter(|t| t.live())
            .filter_map(|t| {
                t.members
                    .get(&user_id)
                    .map(|(role, at)| (*at, t.info.id, t.info.name.clone(), *role))
            })
            .collect();
        memberships.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        Ok(Some(LoginCandidate {
            user_id,
            email: user.email.clone(),
            name: user.name.clone(),
            password_hash: user.password_hash.clone(),
            memberships: memberships
                .into_iter()
                .map(|(_, id, name, role)| (id, name, role))
                .collect(),
        }))
    }

    async fn find_invitation(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<domain::identity::InvitationLookup>, RepoError> {
        let state = self.lock()?;
        Ok(state
            .tenants
            .values()
            .filter(|t| t.live())
            .find_map(|tenant| tenant.invitations.find(tenant.info.id, token_hash)))
    }

    async fn sweep_expired_tenants(&self) -> Result<u64, RepoError> {
        let mut state = self.lock()?;
        let before = state.tenants.len();
        state.tenants.retain(|_, t| t.live());
        let removed = before - state.tenants.len();
        let members: std::collections::HashSet<UserId> = state
            .tenants
            .values()
            .flat_map(|t| t.members.keys().copied())
            .collect();
        state
            .users
            .retain(|id, u| !u.email.ends_with("@demo.crm.invalid") || members.contains(id));
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }

    async fn qr_create(&self, request: &NewQrSession) -> Result<(), RepoError> {
        self.lock()?.qr.insert(
            request.id,
            QrRecord {
                code_hash: request.code_hash.0,
                poll_hash: request.poll_token_hash.0,
                status: QrStatus::Pending,
                user_agent: request.user_agent.clone(),
                ip: request.ip.clone(),
                created_at: now(),
                expires_at: request.expires_at,
                interval_seconds: request.interval_seconds,
                last_polled_at: None,
                scanner: None,
            },
        );
        Ok(())
    }

    async fn qr_poll(
        &self,
        id: QrSessionId,
        poll_token: &TokenHash,
        session: &NewQrLoginSession,
    ) -> Result<QrPoll, RepoError> {
        let mut state = self.lock()?;
        let Some(request) = state.qr.get_mut(&id) else {
            return Ok(QrPoll::NotFound);
        };
        if request.poll_hash != poll_token.0 {
            return Ok(QrPoll::WrongPollToken);
        }
        let now = OffsetDateTime::now_utc();
        let min_gap = time::Duration::milliseconds(i64::from(request.interval_seconds) * 800);
        if request.last_polled_at.is_some_and(|at| at > now - min_gap) {
            return Ok(QrPoll::SlowDown);
        }
        request.last_polled_at = Some(now);
        if request.expired() {
            return Ok(QrPoll::Status(QrStatus::Expired));
        }
        if request.status != QrStatus::Linked {
            return Ok(QrPoll::Status(request.status));
        }
        let Some((tenant_id, user_id)) = request.scanner else {
            return Err(RepoError::Unexpected(
                "linked QR request without scanner".into(),
            ));
        };
        request.status = QrStatus::Consumed;
        let tenant = state
            .tenants
            .get_mut(&tenant_id)
            .ok_or_else(|| RepoError::Unexpected("QR tenant vanished".into()))?;
        tenant.sessions.insert(
            session.id,
            StoredSession {
                user_id,
                token_hash: session.token_hash.0,
                expires_at: session.expires_at,
                last_seen_at: now,
                revoked: false,
            },
        );
        Ok(QrPoll::Collected { tenant_id, user_id })
    }
}

fn company_matches(company: &Company, query: &CompanyQuery) -> bool {
    let fields = &company.fields;
    let q_ok = query.q.as_deref().is_none_or(|q| {
        let q = q.to_lowercase();
        fields.name.to_lowercase().contains(&q)
            || fields
                .domain
                .as_ref()
                .is_some_and(|d| d.as_str().contains(&q))
    });
    q_ok && query
        .domain
        .as_ref()
        .is_none_or(|d| fields.domain.as_ref() == Some(d))
        && query
            .tag
            .as_ref()
            .is_none_or(|t| fields.tags.as_slice().contains(t))
        && query
            .industry
            .as_ref()
            .is_none_or(|i| fields.industry.as_ref() == Some(i))
        && query.created_after.is_none_or(|t| company.created_at > t)
        && query.updated_after.is_none_or(|t| company.updated_at > t)
}

impl MemoryUnitOfWork {
    fn check_company(&self, id: CompanyId, draft: &CompanyDraft) -> Result<(), CompanyWriteError> {
        let taken = draft.domain.as_ref().is_some_and(|domain| {
            self.data.as_ref().is_some_and(|data| {
                data.companies
                    .values()
                    .any(|c| c.id != id && c.fields.domain.as_ref() == Some(domain))
            })
        });
        if taken {
            Err(CompanyWriteError::DuplicateDomain)
        } else {
            Ok(())
        }
    }
}

impl CompanyRepository for MemoryUnitOfWork {
    async fn list_companies(&mut self, query: &CompanyQuery) -> Result<CompanyPage, RepoError> {
        let rows: Vec<&Company> = self
            .data()?
            .companies
            .values()
            .filter(|c| company_matches(c, query))
            .collect();
        let key = |c: &Company| (query.sort.field.value_of(c), c.id.as_uuid());
        Ok(page_of(
            rows,
            key,
            query.sort,
            query.cursor.as_ref(),
            query.limit,
        ))
    }

    async fn get_company(
        &mut self,
        id: CompanyId,
        _for_update: bool,
    ) -> Result<Option<Company>, RepoError> {
        Ok(self.data()?.companies.get(&id).cloned())
    }

    async fn find_company_by_domain(
        &mut self,
        domain: &domain::company::Domain,
    ) -> Result<Option<Company>, RepoError> {
        Ok(self
            .data()?
            .companies
            .values()
            .find(|c| c.fields.domain.as_ref() == Some(domain))
            .cloned())
    }

    async fn insert_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> Result<Company, CompanyWriteError> {
        self.check_company(id, draft)?;
        let now = now();
        let company = Company {
            id,
            tenant_id: self.tenant_id,
            fields: draft.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.data_mut()?.companies.insert(id, company.clone());
        Ok(company)
    }

    async fn update_company(
        &mut self,
        id: CompanyId,
        draft: &CompanyDraft,
    ) -> Result<Company, CompanyWriteError> {
        self.check_company(id, draft)?;
        let company = self
            .data_mut()?
            .companies
            .get_mut(&id)
            .ok_or(CompanyWriteError::NotFound)?;
        company.fields = draft.clone();
        company.updated_at = now().max(company.updated_at);
        company.version += 1;
        Ok(company.clone())
    }

    async fn delete_company(&mut self, id: CompanyId) -> Result<(), CompanyWriteError> {
        let data = self.data_mut()?;
        data.companies
            .remove(&id)
            .ok_or(CompanyWriteError::NotFound)?;
        for contact in data.contacts.values_mut() {
            if contact.fields.company_id == Some(id) {
                contact.fields.company_id = None;
            }
        }
        for lead in data.leads.values_mut() {
            if lead.fields.company_id == Some(id) {
                lead.fields.company_id = None;
            }
        }
        data.activities
            .retain(|_, a| a.fields.company_id != Some(id));
        Ok(())
    }
}

impl ports::IdempotencyRepository for MemoryUnitOfWork {
    async fn begin_idempotent(
        &mut self,
        scope: &ports::IdempotencyScope,
    ) -> Result<ports::IdempotencyClaim, RepoError> {
        // One unit of work at a time per tenant in tests: nothing is ever in flight here.
        let data = self.data_mut()?;
        let id = (scope.credential, scope.key.clone());
        let expired = data
            .idempotency
            .get(&id)
            .is_some_and(|(_, _, at)| *at < now() - time::Duration::hours(24));
        if expired {
            data.idempotency.remove(&id);
        }
        Ok(match data.idempotency.get(&id) {
            None => ports::IdempotencyClaim::Claimed,
            Some((hash, _, _)) if *hash != scope.request_hash => ports::IdempotencyClaim::Mismatch,
            Some((_, stored, _)) => ports::IdempotencyClaim::Replay(stored.clone()),
        })
    }

    async fn store_idempotent(
        &mut self,
        scope: &ports::IdempotencyScope,
        response: &ports::StoredResponse,
    ) -> Result<(), RepoError> {
        self.data_mut()?.idempotency.insert(
            (scope.credential, scope.key.clone()),
            (scope.request_hash, response.clone(), now()),
        );
        Ok(())
    }
}

/// The pipeline every tenant starts with (the PostgreSQL adapter makes it in a trigger).
fn default_pipeline(tenant_id: TenantId) -> domain::pipeline::Pipeline {
    use domain::pipeline::{Pipeline, PipelineId, Stage, StageId, StageKind};
    let stages = [
        ("Qualified", 10, StageKind::Open),
        ("Contact made", 20, StageKind::Open),
        ("Proposal sent", 50, StageKind::Open),
        ("Negotiation", 75, StageKind::Open),
        ("Won", 100, StageKind::Won),
        ("Lost", 0, StageKind::Lost),
    ];
    let now = now();
    Pipeline {
        id: PipelineId::new(),
        tenant_id,
        name: "Sales".into(),
        is_default: true,
        stages: stages
            .iter()
            .zip(0..)
            .map(|((name, probability, kind), position)| Stage {
                id: StageId::new(),
                name: (*name).into(),
                position,
                probability: *probability,
                kind: *kind,
            })
            .collect(),
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

impl ports::PipelineRepository for MemoryUnitOfWork {
    async fn list_pipelines(&mut self) -> Result<Vec<domain::pipeline::Pipeline>, RepoError> {
        let mut pipelines: Vec<domain::pipeline::Pipeline> =
            self.data()?.pipelines.values().cloned().collect();
        pipelines.sort_by(|a, b| {
            b.is_default
                .cmp(&a.is_default)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(pipelines)
    }

    async fn get_pipeline(
        &mut self,
        id: domain::pipeline::PipelineId,
        _for_update: bool,
    ) -> Result<Option<domain::pipeline::Pipeline>, RepoError> {
        Ok(self.data()?.pipelines.get(&id).cloned())
    }

    async fn insert_pipeline(
        &mut self,
        id: domain::pipeline::PipelineId,
        draft: &domain::pipeline::PipelineDraft,
    ) -> Result<domain::pipeline::Pipeline, RepoError> {
        let now = now();
        let pipeline = domain::pipeline::Pipeline {
            id,
            tenant_id: self.tenant_id,
            name: draft.name.clone(),
            is_default: false,
            stages: draft
                .stages
                .iter()
                .zip(0..)
                .map(|(s, position)| domain::pipeline::Stage {
                    id: domain::pipeline::StageId::new(),
                    name: s.name.clone(),
                    position,
                    probability: s.probability,
                    kind: s.kind,
                })
                .collect(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.data_mut()?.pipelines.insert(id, pipeline.clone());
        Ok(pipeline)
    }

    async fn rename_pipeline(
        &mut self,
        id: domain::pipeline::PipelineId,
        name: &str,
    ) -> Result<domain::pipeline::Pipeline, ports::PipelineWriteError> {
        let pipeline = self
            .data_mut()?
            .pipelines
            .get_mut(&id)
            .ok_or(ports::PipelineWriteError::NotFound)?;
        pipeline.name = name.to_owned();
        pipeline.version += 1;
        pipeline.updated_at = now().max(pipeline.updated_at);
        Ok(pipeline.clone())
    }

    async fn delete_pipeline(
        &mut self,
        id: domain::pipeline::PipelineId,
    ) -> Result<(), ports::PipelineWriteError> {
        self.data_mut()?
            .pipelines
            .remove(&id)
            .map(|_| ())
            .ok_or(ports::PipelineWriteError::NotFound)
    }

    async fn set_stages(
        &mut self,
        id: domain::pipeline::PipelineId,
        stages: &[(domain::pipeline::StageId, domain::pipeline::StageDraft)],
    ) -> Result<domain::pipeline::Pipeline, ports::PipelineWriteError> {
        let pipeline = self
            .data_mut()?
            .pipelines
            .get_mut(&id)
            .ok_or(ports::PipelineWriteError::NotFound)?;
        pipeline.stages = stages
            .iter()
            .zip(0..)
            .map(|((stage, draft), position)| domain::pipeline::Stage {
                id: *stage,
                name: draft.name.clone(),
                position,
                probability: draft.probability,
                kind: draft.kind,
            })
            .collect();
        pipeline.version += 1;
        pipeline.updated_at = now().max(pipeline.updated_at);
        let pipeline = pipeline.clone();
        // A lead's status follows its stage's kind, also when the kind is edited.
        let in_pipeline = |lead: &&mut domain::lead::Lead| lead.fields.pipeline_id == id;
        for lead in self.data_mut()?.leads.values_mut().filter(in_pipeline) {
            let kind = pipeline
                .stages
                .iter()
                .find(|s| s.id == lead.fields.stage_id)
                .map(|s| s.kind);
            if let Some(kind) = kind.filter(|kind| *kind != lead.status) {
                lead.status = kind;
                lead.version += 1;
                lead.updated_at = now().max(lead.updated_at);
            }
        }
        Ok(pipeline)
    }
}

impl MemoryUnitOfWork {
    /// The kind of the lead's stage, or the field naming the broken reference.
    fn check_lead(
        &self,
        draft: &domain::lead::LeadDraft,
    ) -> Result<domain::pipeline::StageKind, ports::CrmWriteError> {
        let data = self.data()?;
        let stage = data
            .pipelines
            .get(&draft.pipeline_id)
            .and_then(|p| p.stages.iter().find(|s| s.id == draft.stage_id))
            .ok_or(ports::CrmWriteError::UnknownReference("stageId"))?;
        if draft
            .contact_id
            .is_some_and(|c| !data.contacts.contains_key(&c))
        {
            return Err(ports::CrmWriteError::UnknownReference("contactId"));
        }
        if draft
            .company_id
            .is_some_and(|c| !data.companies.contains_key(&c))
        {
            return Err(ports::CrmWriteError::UnknownReference("companyId"));
        }
        if draft
            .owner_id
            .is_some_and(|o| !data.members.contains_key(&o))
        {
            return Err(ports::CrmWriteError::UnknownReference("ownerId"));
        }
        Ok(stage.kind)
    }

    fn check_activity(
        &self,
        draft: &domain::activity::ActivityDraft,
    ) -> Result<(), ports::CrmWriteError> {
        let data = self.data()?;
        if draft
            .contact_id
            .is_some_and(|c| !data.contacts.contains_key(&c))
        {
            return Err(ports::CrmWriteError::UnknownReference("contactId"));
        }
        if draft
            .company_id
            .is_some_and(|c| !data.companies.contains_key(&c))
        {
            return Err(ports::CrmWriteError::UnknownReference("companyId"));
        }
        if draft.lead_id.is_some_and(|l| !data.leads.contains_key(&l)) {
            return Err(ports::CrmWriteError::UnknownReference("leadId"));
        }
        Ok(())
    }
}

impl ports::LeadRepository for MemoryUnitOfWork {
    async fn list_leads(
        &mut self,
        query: &domain::lead::LeadQuery,
    ) -> Result<domain::lead::LeadPage, RepoError> {
        let data = self.data()?;
        let q = query.q.as_deref().map(str::to_lowercase);
        // As in PostgreSQL: the title, the source, and the linked contact's and company's
        // searchable text.
        let found = |l: &domain::lead::Lead, q: &str| {
            let f = &l.fields;
            let contact = f.contact_id.and_then(|id| data.contacts.get(&id));
            let company = f.company_id.and_then(|id| data.companies.get(&id));
            std::iter::once(f.title.as_str())
                .chain(f.source.as_deref())
                .map(str::to_lowercase)
                .any(|text| text.contains(q))
                || contact.is_some_and(|c| {
                    matches(
                        c,
                        &ContactQuery {
                            q: Some(q.to_owned()),
                            ..ContactQuery::default()
                        },
                    )
                })
                || company.is_some_and(|c| {
                    company_matches(
                        c,
                        &CompanyQuery {
                            q: Some(q.to_owned()),
                            ..CompanyQuery::default()
                        },
                    )
                })
        };
        let rows: Vec<&domain::lead::Lead> = data
            .leads
            .values()
            .filter(|l| {
                let f = &l.fields;
                q.as_deref().is_none_or(|q| found(l, q))
                    && query.pipeline_id.is_none_or(|v| f.pipeline_id == v)
                    && query.stage_id.is_none_or(|v| f.stage_id == v)
                    && query.status.is_none_or(|v| l.status == v)
                    && query.owner_id.is_none_or(|v| f.owner_id == Some(v))
                    && query.contact_id.is_none_or(|v| f.contact_id == Some(v))
                    && query.company_id.is_none_or(|v| f.company_id == Some(v))
                    && query
                        .min_value
                        .is_none_or(|v| f.value.as_ref().is_some_and(|m| m.minor >= v))
                    && query
                        .max_value
                        .is_none_or(|v| f.value.as_ref().is_some_and(|m| m.minor <= v))
            })
            .collect();
        let key = |l: &domain::lead::Lead| (query.sort.field.value_of(l), l.id.as_uuid());
        Ok(page_of(
            rows,
            key,
            query.sort,
            query.cursor.as_ref(),
            query.limit,
        ))
    }

    async fn get_lead(
        &mut self,
        id: domain::lead::LeadId,
        _for_update: bool,
    ) -> Result<Option<domain::lead::Lead>, RepoError> {
        Ok(self.data()?.leads.get(&id).cloned())
    }

    async fn insert_lead(
        &mut self,
        id: domain::lead::LeadId,
        draft: &domain::lead::LeadDraft,
    ) -> Result<domain::lead::Lead, ports::CrmWriteError> {
        let status = self.check_lead(draft)?;
        let now = now();
        let lead = domain::lead::Lead {
            id,
            tenant_id: self.tenant_id,
            fields: draft.clone(),
            status,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.data_mut()?.leads.insert(id, lead.clone());
        Ok(lead)
    }

    async fn update_lead(
        &mut self,
        id: domain::lead::LeadId,
        draft: &domain::lead::LeadDraft,
    ) -> Result<domain::lead::Lead, ports::CrmWriteError> {
        let status = self.check_lead(draft)?;
        let lead = self
            .data_mut()?
            .leads
            .get_mut(&id)
            .ok_or(ports::CrmWriteError::NotFound)?;
        lead.fields = draft.clone();
        lead.status = status;
        lead.updated_at = now().max(lead.updated_at);
        lead.version += 1;
        Ok(lead.clone())
    }

    async fn delete_lead(&mut self, id: domain::lead::LeadId) -> Result<(), ports::CrmWriteError> {
        let data = self.data_mut()?;
        data.leads
            .remove(&id)
            .ok_or(ports::CrmWriteError::NotFound)?;
        data.activities.retain(|_, a| a.fields.lead_id != Some(id));
        Ok(())
    }
}

impl ports::ActivityRepository for MemoryUnitOfWork {
    async fn list_activities(
        &mut self,
        query: &domain::activity::ActivityQuery,
    ) -> Result<domain::activity::ActivityPage, RepoError> {
        let rows: Vec<&domain::activity::Activity> = self
            .data()?
            .activities
            .values()
            .filter(|a| {
                let f = &a.fields;
                let q_ok = query.q.as_deref().is_none_or(|q| {
                    let q = q.to_lowercase();
                    std::iter::once(f.subject.as_str())
                        .chain(f.body.as_deref())
                        .any(|text| text.to_lowercase().contains(&q))
                });
                q_ok && query.kind.is_none_or(|v| f.kind == v)
                    && query.contact_id.is_none_or(|v| f.contact_id == Some(v))
                    && query.company_id.is_none_or(|v| f.company_id == Some(v))
                    && query.lead_id.is_none_or(|v| f.lead_id == Some(v))
            })
            .collect();
        let key = |a: &domain::activity::Activity| (query.sort.field.value_of(a), a.id.as_uuid());
        Ok(page_of(
            rows,
            key,
            query.sort,
            query.cursor.as_ref(),
            query.limit,
        ))
    }

    async fn get_activity(
        &mut self,
        id: domain::activity::ActivityId,
        _for_update: bool,
    ) -> Result<Option<domain::activity::Activity>, RepoError> {
        Ok(self.data()?.activities.get(&id).cloned())
    }

    async fn insert_activity(
        &mut self,
        id: domain::activity::ActivityId,
        draft: &domain::activity::ActivityDraft,
    ) -> Result<domain::activity::Activity, ports::CrmWriteError> {
        self.check_activity(draft)?;
        let now = now();
        let activity = domain::activity::Activity {
            id,
            tenant_id: self.tenant_id,
            fields: draft.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.data_mut()?.activities.insert(id, activity.clone());
        Ok(activity)
    }

    async fn update_activity(
        &mut self,
        id: domain::activity::ActivityId,
        draft: &domain::activity::ActivityDraft,
    ) -> Result<domain::activity::Activity, ports::CrmWriteError> {
        self.check_activity(draft)?;
        let activity = self
            .data_mut()?
            .activities
            .get_mut(&id)
            .ok_or(ports::CrmWriteError::NotFound)?;
        activity.fields = draft.clone();
        activity.updated_at = now().max(activity.updated_at);
        activity.version += 1;
        Ok(activity.clone())
    }

    async fn delete_activity(
        &mut self,
        id: domain::activity::ActivityId,
    ) -> Result<(), ports::CrmWriteError> {
        self.data_mut()?
            .activities
            .remove(&id)
            .map(|_| ())
            .ok_or(ports::CrmWriteError::NotFound)
    }
}
