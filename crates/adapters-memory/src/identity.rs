//! Identity in memory: the tenant, its members, sessions and API keys, and the
//! pre-authentication look-ups (login, invitation, QR requests, the demo sweep) across tenants.

use domain::identity::{
    ApiKeyRecord, LoginCandidate, Member, NewApiKey, NewQrSession, NewSession, NewUser, QrStatus,
    TenantInfo,
};
use domain::ids::{ApiKeyId, QrSessionId, SessionId, TenantId, UserId};
use domain::principal::Role;
use domain::token::TokenHash;
use ports::{
    IdentityRepository, IdentityWriteError, NewQrLoginSession, PreAuthStore, QrPoll, RepoError,
};
use time::OffsetDateTime;

use crate::qr::QrRecord;
use crate::store::{MemoryStore, MemoryUnitOfWork, StoredSession, TenantData, UserRecord};

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
        let data = TenantData::new(self.tenant_id, name.to_owned(), expires_at, self.now())?;
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
        let now = self.now();
        let data = self.data_mut()?;
        if data.members.contains_key(&user) {
            return Err(IdentityWriteError::AlreadyMember);
        }
        data.members.insert(user, (role, now));
        Ok(())
    }

    async fn insert_session(&mut self, session: &NewSession) -> Result<(), RepoError> {
        let now = self.now();
        let data = self.data_mut()?;
        data.sessions.insert(
            session.id,
            StoredSession {
                user_id: session.user_id,
                token_hash: session.token_hash.0,
                expires_at: session.expires_at,
                last_seen_at: now,
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
        let now = self.now();
        let record = ApiKeyRecord {
            id: key.id,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            role: key.role,
            created_by: key.created_by,
            acts_for: Some(key.acts_for),
            scopes: key.scopes.clone(),
            created_at: now,
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
        let now = self.now();
        Ok(self.data_mut()?.keys.get_mut(&id).map(|(record, _)| {
            record.revoked_at = record.revoked_at.or(Some(now));
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
        let now = self.now();
        let data = self.data_mut()?;
        data.sessions.retain(|_, s| s.user_id != user);
        data.keys
            .retain(|_, (record, _)| record.acts_for != Some(user));
        data.invitations.forget_inviter(user);
        if data.members.remove(&user).is_none() {
            return Ok(false);
        }
        // As PostgreSQL's ON DELETE SET NULL (owner_id): what they owned stays, unowned,
        // and each such change is an update event (the version does not move).
        let mut contacts = Vec::new();
        for contact in data.contacts.values_mut() {
            if contact.fields.owner_id == Some(user) {
                let before = contact.clone();
                contact.fields.owner_id = None;
                contacts.push((Some(before), Some(contact.clone())));
            }
        }
        let mut leads = Vec::new();
        for lead in data.leads.values_mut() {
            if lead.fields.owner_id == Some(user) {
                let before = lead.clone();
                lead.fields.owner_id = None;
                leads.push((Some(before), Some(lead.clone())));
            }
        }
        data.record_changes(now, &contacts)?;
        data.record_changes(now, &leads)?;
        Ok(true)
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

impl PreAuthStore for MemoryStore {
    async fn find_login(&self, email: &str) -> Result<Option<LoginCandidate>, RepoError> {
        let now = self.now();
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
            .filter(|t| t.live(now))
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
        let now = self.now();
        let state = self.lock()?;
        Ok(state
            .tenants
            .values()
            .filter(|t| t.live(now))
            .find_map(|tenant| tenant.invitations.find(tenant.info.id, token_hash, now)))
    }

    async fn sweep_expired_tenants(&self) -> Result<u64, RepoError> {
        let now = self.now();
        let mut state = self.lock()?;
        let before = state.tenants.len();
        state.tenants.retain(|_, t| t.live(now));
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
        let now = self.now();
        self.lock()?.qr.insert(
            request.id,
            QrRecord {
                code_hash: request.code_hash.0,
                poll_hash: request.poll_token_hash.0,
                status: QrStatus::Pending,
                user_agent: request.user_agent.clone(),
                ip: request.ip.clone(),
                created_at: now,
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
        let now = self.now();
        let mut state = self.lock()?;
        let Some(request) = state.qr.get_mut(&id) else {
            return Ok(QrPoll::NotFound);
        };
        if request.poll_hash != poll_token.0 {
            return Ok(QrPoll::WrongPollToken);
        }
        let min_gap = time::Duration::milliseconds(i64::from(request.interval_seconds) * 800);
        if request.last_polled_at.is_some_and(|at| at > now - min_gap) {
            return Ok(QrPoll::SlowDown);
        }
        request.last_polled_at = Some(now);
        if request.expired(now) {
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
