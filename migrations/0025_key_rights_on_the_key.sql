-- What checking a remembered API key needs, on the key's own row (issue 14).
--
-- Every request with a key this process resolved a moment ago checks the key again in its
-- tenant (`adapters-postgres/src/key_cache.rs`): unrevoked, unexpired, its tenant
-- unexpired, the member it acts for still a member, with which role. Joining `tenants` and
-- `memberships` for that cost PostgreSQL about as much as the request's own read. So the
-- two facts that live elsewhere are kept on the key, in the same transaction as whatever
-- changes them, by triggers:
--
--  * `member_role`: the role of the member the key acts for (`acts_for`). A role change
--    (`PATCH /v1/members/{id}`) rewrites it on every key of that member's chain in the
--    same statement; a removal deletes those keys already (foreign key, cascade).
--  * `tenant_expires_at`: the tenant's `expires_at` (a sandbox's end). The application
--    cannot change it (no UPDATE on tenants); an operator's change is copied all the same.
--
-- A key is written with both by a BEFORE trigger, whatever the INSERT said, after taking a
-- share lock on the member's and the tenant's rows: a role change committing at the same
-- moment either waits for the new key (and its own trigger, a fresh statement under READ
-- COMMITTED, then finds it) or is waited for (and the lock's re-read finds the new role).
-- Without the lock a key inserted beside a demotion could keep the old, higher role.
--
-- Fail-closed by construction: a key whose copies are missing (NULL role) fails the quick
-- check, and the request falls back to `crm_authenticate_api_key`, which still joins the
-- tables themselves and stays the authority for a key not seen recently.

SET LOCAL ROLE crm_owner;

ALTER TABLE api_keys
    ADD COLUMN member_role text CHECK (member_role IN ('owner', 'admin', 'member', 'viewer')),
    ADD COLUMN tenant_expires_at timestamptz;
GRANT SELECT (member_role, tenant_expires_at) ON api_keys TO crm_app;
-- The copies are written by the triggers below only: the application role's INSERT is
-- overwritten by the BEFORE trigger, and it may UPDATE `revoked_at` alone.
GRANT UPDATE (member_role, tenant_expires_at) ON api_keys TO crm_definer;

-- The back-fill runs as crm_definer (BYPASSRLS: a migration has no tenant).
SET LOCAL ROLE crm_definer;
UPDATE public.api_keys k SET member_role = m.role
  FROM public.memberships m
 WHERE m.tenant_id = k.tenant_id AND m.user_id = k.acts_for;
UPDATE public.api_keys k SET tenant_expires_at = t.expires_at
  FROM public.tenants t
 WHERE t.id = k.tenant_id AND t.expires_at IS NOT NULL;
SET LOCAL ROLE crm_owner;

-- A new (or re-pointed) key takes its member's role and its tenant's expiry. It runs as
-- the owner, under row-level security like any caller: the rows it reads are the ones the
-- inserting transaction's tenant can see, which are the key's own tenant's (the policy's
-- WITH CHECK refuses the key otherwise); finding none leaves the copies NULL, closed.
CREATE FUNCTION crm_api_key_copy_rights()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT m.role INTO NEW.member_role
      FROM public.memberships m
     WHERE m.tenant_id = NEW.tenant_id AND m.user_id = NEW.acts_for
       FOR SHARE;
    SELECT t.expires_at INTO NEW.tenant_expires_at
      FROM public.tenants t
     WHERE t.id = NEW.tenant_id
       FOR SHARE;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION crm_api_key_copy_rights() FROM PUBLIC;
CREATE TRIGGER api_keys_copy_rights BEFORE INSERT OR UPDATE OF tenant_id, acts_for ON api_keys
    FOR EACH ROW EXECUTE FUNCTION crm_api_key_copy_rights();

-- A role change or a sandbox's new end reaches every key at once. These run as
-- crm_definer (BYPASSRLS), so the copy never depends on which tenant the changing
-- transaction has set (an operator's session may have none).
SET LOCAL ROLE crm_definer;

CREATE FUNCTION crm_member_role_to_keys()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.api_keys k SET member_role = NEW.role
     WHERE k.tenant_id = NEW.tenant_id AND k.acts_for = NEW.user_id
       AND k.member_role IS DISTINCT FROM NEW.role;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION crm_member_role_to_keys() FROM PUBLIC;

CREATE FUNCTION crm_tenant_expiry_to_keys()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.api_keys k SET tenant_expires_at = NEW.expires_at
     WHERE k.tenant_id = NEW.id
       AND k.tenant_expires_at IS DISTINCT FROM NEW.expires_at;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION crm_tenant_expiry_to_keys() FROM PUBLIC;
-- The tables' owner attaches them (CREATE TRIGGER needs EXECUTE; firing checks none).
GRANT EXECUTE ON FUNCTION crm_member_role_to_keys(), crm_tenant_expiry_to_keys() TO crm_owner;

SET LOCAL ROLE crm_owner;

CREATE TRIGGER memberships_role_to_keys AFTER UPDATE OF role ON memberships
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role)
    EXECUTE FUNCTION crm_member_role_to_keys();
CREATE TRIGGER tenants_expiry_to_keys AFTER UPDATE OF expires_at ON tenants
    FOR EACH ROW WHEN (OLD.expires_at IS DISTINCT FROM NEW.expires_at)
    EXECUTE FUNCTION crm_tenant_expiry_to_keys();
