//! An in-memory implementation of every port, for fast use-case tests.
//!
//! A unit of work takes a copy of its tenant's data, works on the copy, and writes it back
//! on commit: dropping it discards every change, like a rolled-back transaction. Units of
//! work of one tenant that overlap in time are last-writer-wins, which is enough for tests
//! that run use cases one after another; the PostgreSQL adapter is the one with real
//! isolation and locking.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use domain::token::TokenHash;
use domain::contact::{Contact, ContactDraft, ContactPage, ContactQuery};
use domain::ids::{ApiKeyId, ContactId, TenantId, UserId};
use domain::list::{Cursor, Page, SortValue};
use domain::principal::{Actor, Principal, Role, Scopes};
use ports::{
    ContactRepository, ContactWriteError, NewTenant, ProvisionedTenant, RepoError,
    TenantProvisioning, TenantStore, UnitOfWork,
};
use time::OffsetDateTime;

/// One tenant's data.
#[derive(Clone, Debug, Default)]
struct TenantData {
    name: String,
    members: BTreeSet<UserId>,
    contacts: BTreeMap<ContactId, Contact>,
}

#[derive(Clone, Debug)]
struct KeyRecord {
    id: ApiKeyId,
    tenant_id: TenantId,
    name: String,
    prefix: String,
    role: Role,
    scopes: Vec<String>,
    revoked: bool,
}

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<TenantId, TenantData>,
    keys: HashMap<[u8; 32], KeyRecord>,
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
        if !state.tenants.contains_key(&tenant_id) {
            return Err(RepoError::Unexpected("no such tenant".into()));
        }
        let id = ApiKeyId::new();
        state.keys.insert(
            hash.0,
            KeyRecord {
                id,
                tenant_id,
                name: "test key".into(),
                prefix: "crm_sk_test".into(),
                role,
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                revoked: false,
            },
        );
        Ok(id)
    }

    /// Revokes every key with this hash (test set-up).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] if the lock is poisoned.
    pub fn revoke_api_key(&self, hash: &TokenHash) -> Result<(), RepoError> {
        if let Some(key) = self.lock()?.keys.get_mut(&hash.0) {
            key.revoked = true;
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
}

/// A unit of work over one tenant's copied data.
#[derive(Debug)]
pub struct MemoryUnitOfWork {
    store: MemoryStore,
    tenant_id: TenantId,
    data: TenantData,
}

/// Timestamps as PostgreSQL stores them: microseconds.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

impl TenantStore for MemoryStore {
    type Uow = MemoryUnitOfWork;

    async fn begin_with_api_key(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(Principal, MemoryUnitOfWork)>, RepoError> {
        let state = self.lock()?;
        let Some(key) = state.keys.get(&hash.0).filter(|k| !k.revoked).cloned() else {
            return Ok(None);
        };
        let Some(data) = state.tenants.get(&key.tenant_id).cloned() else {
            return Ok(None);
        };
        drop(state);
        let principal = Principal {
            tenant_id: key.tenant_id,
            tenant_name: data.name.clone(),
            actor: Actor::ApiKey {
                id: key.id,
                name: key.name,
                prefix: key.prefix,
            },
            role: key.role,
            scopes: Scopes::from_names(key.scopes),
        };
        Ok(Some((
            principal,
            MemoryUnitOfWork {
                store: self.clone(),
                tenant_id: key.tenant_id,
                data,
            },
        )))
    }

    async fn begin_for_tenant(&self, tenant: TenantId) -> Result<MemoryUnitOfWork, RepoError> {
        let data = self
            .lock()?
            .tenants
            .get(&tenant)
            .cloned()
            .unwrap_or_default();
        Ok(MemoryUnitOfWork {
            store: self.clone(),
            tenant_id: tenant,
            data,
        })
    }
}

impl TenantProvisioning for MemoryStore {
    async fn provision_tenant(&self, tenant: NewTenant) -> Result<ProvisionedTenant, RepoError> {
        let tenant_id = TenantId::new();
        let owner_id = UserId::new();
        let mut state = self.lock()?;
        state.tenants.insert(
            tenant_id,
            TenantData {
                name: tenant.name,
                members: BTreeSet::from([owner_id]),
                contacts: BTreeMap::new(),
            },
        );
        state.keys.insert(
            tenant.key_hash.0,
            KeyRecord {
                id: ApiKeyId::new(),
                tenant_id,
                name: tenant.key_name,
                prefix: tenant.key_prefix,
                role: Role::Owner,
                scopes: vec!["*".into()],
                revoked: false,
            },
        );
        Ok(ProvisionedTenant {
            tenant_id,
            owner_id,
        })
    }
}

impl MemoryUnitOfWork {
    fn check_write(&self, id: ContactId, draft: &ContactDraft) -> Result<(), ContactWriteError> {
        if let Some(email) = &draft.email {
            let taken = self
                .data
                .contacts
                .values()
                .any(|c| c.id != id && c.fields.email.as_ref() == Some(email));
            if taken {
                return Err(ContactWriteError::DuplicateEmail);
            }
        }
        if let Some(owner) = draft.owner_id
            && !self.data.members.contains(&owner)
        {
            return Err(ContactWriteError::UnknownOwner);
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

fn sort_key(contact: &Contact, query: &ContactQuery) -> (SortValue, uuid::Uuid) {
    (query.sort.field.value_of(contact), contact.id.as_uuid())
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
        let mut rows: Vec<&Contact> = self
            .data
            .contacts
            .values()
            .filter(|c| matches(c, query))
            .collect();
        rows.sort_by(|a, b| {
            let order = compare(&sort_key(a, query), &sort_key(b, query));
            if query.sort.descending {
                order.reverse()
            } else {
                order
            }
        });
        if let Some(cursor) = &query.cursor {
            let after = (cursor.value.clone(), cursor.id);
            rows.retain(|c| {
                let order = compare(&sort_key(c, query), &after);
                if query.sort.descending {
                    order.is_lt()
                } else {
                    order.is_gt()
                }
            });
        }
        let limit = usize::from(query.limit.get());
        let has_more = rows.len() > limit;
        let items: Vec<Contact> = rows.into_iter().take(limit).cloned().collect();
        let next = if has_more {
            items.last().map(|last| Cursor {
                sort: query.sort,
                value: query.sort.field.value_of(last),
                id: last.id.as_uuid(),
            })
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn get_contact(
        &mut self,
        id: ContactId,
        _for_update: bool,
    ) -> Result<Option<Contact>, RepoError> {
        Ok(self.data.contacts.get(&id).cloned())
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
        self.data.contacts.insert(id, contact.clone());
        Ok(contact)
    }

    async fn update_contact(
        &mut self,
        id: ContactId,
        draft: &ContactDraft,
    ) -> Result<Contact, ContactWriteError> {
        self.check_write(id, draft)?;
        let contact = self
            .data
            .contacts
            .get_mut(&id)
            .ok_or(ContactWriteError::NotFound)?;
        contact.fields = draft.clone();
        contact.updated_at = now().max(contact.updated_at);
        contact.version += 1;
        Ok(contact.clone())
    }

    async fn delete_contact(&mut self, id: ContactId) -> Result<(), ContactWriteError> {
        self.data
            .contacts
            .remove(&id)
            .map(|_| ())
            .ok_or(ContactWriteError::NotFound)
    }
}

impl UnitOfWork for MemoryUnitOfWork {
    async fn commit(self) -> Result<(), RepoError> {
        let mut state = self.store.lock()?;
        state.tenants.insert(self.tenant_id, self.data);
        Ok(())
    }
}

impl ports::HealthCheck for MemoryStore {
    async fn check(&self) -> Result<(), RepoError> {
        self.lock().map(|_| ())
    }
}
