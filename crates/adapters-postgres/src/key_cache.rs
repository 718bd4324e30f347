//! Which tenant an API key belongs to, remembered per process, and checked again by every
//! statement that relies on it (issue 14, SPEC §9: "a credential cache whose revocation is
//! still immediate on every instance").
//!
//! Resolving a key through `crm_authenticate_api_key` is the only way to learn its tenant
//! without reading across tenants: the application role may not read `api_keys.key_hash`,
//! and the function is `SECURITY DEFINER` PL/pgSQL with a `SET search_path`, which costs
//! PostgreSQL a configuration save and restore and a tuplestore on every call. What it
//! answers, though, never changes for a given hash: a key's hash, id and tenant are written
//! once (the application role may update only `revoked_at`). So a process may remember
//! `hash -> (tenant, key id)` from the function's answers and, next time, set that tenant
//! itself and read the key's row **through row-level security**, in the same statement as
//! the work: is it still unrevoked and unexpired, is its tenant unexpired, is the member it
//! acts for still a member, with which role. That is every check the function makes, made
//! again on every request, so a revocation, a role change, a removal or an expiry takes
//! effect on the very next request on every instance. Nothing is trusted from memory but
//! which tenant to look in (and the tenant's name, which nothing changes), and a wrong
//! tenant could only make the look-up find nothing.
//!
//! The check reads one row: since migration 0025 the key's row carries its member's role
//! and its tenant's expiry, copied by triggers in the same transaction as any change to
//! either (a removal deletes the member's keys), so the joins of `tenants` and
//! `memberships` that cost PostgreSQL as much as a request's own read are gone. A key whose
//! copies are missing fails the check and takes the function, which still joins the
//! tables themselves.
//!
//! Only the function's answers are remembered (an unknown hash is never stored), for at
//! most [`KeyCache::TTL`]; after that the next request resolves through the function again,
//! which also keeps `last_used_at` current to within a minute or two. When the check finds
//! nothing, the entry is forgotten and the request falls back to the function in the same
//! transaction, so an answer is never worse than without the cache.
//!
//! Ordering, the part that keeps row-level security exact: the tenant is set by
//! `set_config` in a `MATERIALIZED` CTE, and every table read depends on that CTE's row
//! through a `LATERAL` subquery fenced with `OFFSET 0`. The fence matters: flattened, the
//! planner equates the tenant column of `api_keys` (and of any table joined) with its
//! policy's `current_setting` sub-select and hoists the comparison into a gate evaluated
//! before the CTE runs (it then reads an unset tenant and finds nothing: closed, but
//! useless). Fenced, each policy's sub-select is evaluated inside the subquery, after the
//! tenant is set. The tests hold it to both: a cached key reads its tenant's rows, and a
//! revoked, narrowed or removed one is refused at once (`tests/api/api_keys.rs`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use domain::principal::{Actor, Principal};
use domain::token::TokenHash;
use uuid::Uuid;

/// The statement that checks a remembered key in its tenant and yields what
/// `crm_authenticate_api_key` yields but the tenant's name, which never changes and the
/// caller takes from memory (`$1`: the tenant as text, `$2`: the key id), with the tenant
/// set for the rest of the transaction or statement. Used as a CTE named `auth`. One
/// index probe of `api_keys`: the key's row carries its member's current role and its
/// tenant's expiry, kept there by triggers in the same transaction as any change to them
/// (migration 0025).
pub(crate) const CHECKED_KEY_CTE: &str = "\
scope AS MATERIALIZED (SELECT set_config('app.tenant_id', $1, true)::uuid AS tenant_id),
auth AS MATERIALIZED (
    SELECT checked.* FROM scope CROSS JOIN LATERAL (
        SELECT k.tenant_id, NULL::text AS tenant_name, k.id AS key_id, k.name AS key_name,
               k.prefix AS key_prefix,
               CASE WHEN array_position(ARRAY['viewer', 'member', 'admin', 'owner'], k.member_role)
                         < array_position(ARRAY['viewer', 'member', 'admin', 'owner'], k.role)
                    THEN k.member_role ELSE k.role END AS role,
               k.scopes, k.acts_for
          FROM api_keys k
         WHERE k.tenant_id = scope.tenant_id AND k.id = $2
           AND k.member_role IS NOT NULL
           AND k.revoked_at IS NULL
           AND (k.expires_at IS NULL OR k.expires_at > now())
           AND (k.tenant_expires_at IS NULL OR k.tenant_expires_at > now())
        OFFSET 0) checked)";

/// A key's tenant and id, which the statements check the key in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KnownKey {
    pub(crate) tenant_id: Uuid,
    pub(crate) key_id: Uuid,
}

impl KnownKey {
    /// The tenant and key of a caller authenticated by an API key.
    pub(crate) fn of(caller: &Principal) -> Option<Self> {
        match &caller.actor {
            Actor::ApiKey { id, .. } => Some(Self {
                tenant_id: caller.tenant_id.as_uuid(),
                key_id: id.as_uuid(),
            }),
            Actor::User { .. } => None,
        }
    }
}

/// `hash -> caller` for the keys this process resolved recently: the caller as the key was
/// last found to be (by the function, or by a later check), and when the function answered.
#[derive(Debug)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
    capacity: usize,
}

impl KeyCache {
    /// How long an answer of the function is used before asking it again.
    pub(crate) const TTL: Duration = Duration::from_secs(60);

    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The remembered caller for `hash`, if the function answered recently.
    pub(crate) fn get(&self, hash: &TokenHash) -> Option<Principal> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(&hash.0) {
            Some((caller, at)) if at.elapsed() < Self::TTL => Some(caller.clone()),
            Some(_) => {
                entries.remove(&hash.0);
                None
            }
            None => None,
        }
    }

    /// Remembers what the function answered for `hash` (an API key's caller only).
    pub(crate) fn learn(&self, hash: &TokenHash, caller: &Principal) {
        if KnownKey::of(caller).is_none() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&hash.0) {
            entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
            if entries.len() >= self.capacity {
                // Bounded: more live keys than room start over rather than grow.
                entries.clear();
            }
        }
        entries.insert(hash.0, (caller.clone(), Instant::now()));
    }

    /// Records what a check of a remembered key found (its role or scopes may have
    /// changed since), keeping the time of the function's answer: the entry still
    /// expires [`Self::TTL`] after the function last answered.
    pub(crate) fn confirm(&self, hash: &TokenHash, caller: &Principal) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((remembered, _)) = entries.get_mut(&hash.0)
            && remembered != caller
            && KnownKey::of(remembered) == KnownKey::of(caller)
        {
            *remembered = caller.clone();
        }
    }

    /// Forgets `hash` (its check found nothing: revoked, expired, or no longer a member).
    pub(crate) fn forget(&self, hash: &TokenHash) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&hash.0);
    }
}

#[cfg(test)]
mod tests {
    use domain::ids::{ApiKeyId, TenantId, UserId};
    use domain::principal::{Role, Scopes};

    use super::*;

    fn caller(n: u128, role: Role) -> Principal {
        Principal {
            tenant_id: TenantId::from_uuid(Uuid::from_u128(n)),
            tenant_name: "Acme".into(),
            actor: Actor::ApiKey {
                id: ApiKeyId::from_uuid(Uuid::from_u128(n + 1)),
                name: "ci".into(),
                prefix: "crm_sk_abc".into(),
                acts_for: UserId::from_uuid(Uuid::from_u128(n + 2)),
            },
            role,
            scopes: Scopes::all(),
        }
    }

    #[test]
    fn a_learned_key_is_found_until_forgotten() {
        let cache = KeyCache::new(4);
        let hash = TokenHash([7; 32]);
        assert_eq!(
            cache.get(&hash),
            None,
            "nothing is known before the function answers"
        );
        cache.learn(&hash, &caller(1, Role::Admin));
        assert_eq!(cache.get(&hash), Some(caller(1, Role::Admin)));
        assert_eq!(
            cache.get(&hash).as_ref().and_then(KnownKey::of),
            Some(KnownKey {
                tenant_id: Uuid::from_u128(1),
                key_id: Uuid::from_u128(2)
            })
        );
        assert_eq!(cache.get(&TokenHash([8; 32])), None, "only that hash");
        cache.forget(&hash);
        assert_eq!(cache.get(&hash), None);
    }

    #[test]
    fn a_check_updates_the_remembered_rights_of_that_key_only() {
        let cache = KeyCache::new(4);
        let hash = TokenHash([7; 32]);
        cache.confirm(&hash, &caller(1, Role::Admin));
        assert_eq!(cache.get(&hash), None, "a check never adds a key");
        cache.learn(&hash, &caller(1, Role::Admin));
        cache.confirm(&hash, &caller(1, Role::Viewer));
        assert_eq!(cache.get(&hash), Some(caller(1, Role::Viewer)), "demoted");
        cache.confirm(&hash, &caller(5, Role::Owner));
        assert_eq!(
            cache.get(&hash),
            Some(caller(1, Role::Viewer)),
            "another key's or tenant's answer is not taken for this hash"
        );
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = KeyCache::new(3);
        for n in 0..10u8 {
            cache.learn(
                &TokenHash([n; 32]),
                &caller(u128::from(n) * 10, Role::Member),
            );
            let held = cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
            assert!(held <= 3, "held {held}");
        }
        assert_eq!(
            cache.get(&TokenHash([9; 32])),
            Some(caller(90, Role::Member)),
            "the newest answer is kept"
        );
    }
}
