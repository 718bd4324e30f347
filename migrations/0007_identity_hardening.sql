-- Hardening after review of the identity migration:
--  * an API key never acts above its creator's current role, and goes when its creator
--    leaves the tenant (a demoted or removed admin cannot keep admin power through a key);
--  * the application role reads users' names and e-mails, never their password hashes;
--  * the sweep also removes identities left without any tenant.

SET LOCAL ROLE crm_owner;

ALTER TABLE api_keys DROP CONSTRAINT api_keys_tenant_id_created_by_fkey;
ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_created_by_fkey FOREIGN KEY (tenant_id, created_by)
        REFERENCES memberships (tenant_id, user_id) ON DELETE CASCADE;

REVOKE SELECT ON users FROM crm_app;
GRANT SELECT (id, email, name, created_at) ON users TO crm_app;

SET LOCAL ROLE crm_definer;

CREATE OR REPLACE FUNCTION crm_authenticate_api_key(p_key_hash bytea)
RETURNS TABLE (tenant_id uuid, tenant_name text, key_id uuid, key_name text,
               key_prefix text, role text, scopes text[])
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    found_key record;
BEGIN
    -- The effective role is the lower of the key's and its creator's current role.
    SELECT k.tenant_id, t.name AS tenant_name, k.id, k.name, k.prefix, k.scopes, k.last_used_at,
           CASE WHEN m.role IS NULL THEN k.role
                WHEN array_position(ARRAY['viewer', 'member', 'admin', 'owner'], m.role)
                     < array_position(ARRAY['viewer', 'member', 'admin', 'owner'], k.role)
                THEN m.role
                ELSE k.role
           END AS effective_role
      INTO found_key
      FROM public.api_keys k
      JOIN public.tenants t ON t.id = k.tenant_id
      LEFT JOIN public.memberships m ON m.tenant_id = k.tenant_id AND m.user_id = k.created_by
     WHERE k.key_hash = p_key_hash
       AND k.revoked_at IS NULL
       AND (k.expires_at IS NULL OR k.expires_at > now())
       AND (t.expires_at IS NULL OR t.expires_at > now());
    IF NOT FOUND THEN
        RETURN;
    END IF;

    PERFORM set_config('app.tenant_id', found_key.tenant_id::text, true);

    IF found_key.last_used_at IS NULL OR found_key.last_used_at < now() - interval '1 minute' THEN
        UPDATE public.api_keys k SET last_used_at = now()
         WHERE (k.tenant_id, k.id) IN (
               SELECT l.tenant_id, l.id FROM public.api_keys l
                WHERE l.tenant_id = found_key.tenant_id AND l.id = found_key.id
                  FOR UPDATE SKIP LOCKED);
    END IF;

    RETURN QUERY SELECT found_key.tenant_id, found_key.tenant_name, found_key.id,
                        found_key.name, found_key.prefix, found_key.effective_role, found_key.scopes;
END
$$;

CREATE OR REPLACE FUNCTION crm_sweep_expired_tenants()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed bigint;
BEGIN
    DELETE FROM public.tenants t WHERE t.expires_at IS NOT NULL AND t.expires_at <= now();
    GET DIAGNOSTICS removed = ROW_COUNT;
    -- Identities without any tenant cannot log in anywhere; keeping them would let a
    -- password chosen in a deleted sandbox follow the e-mail address into a real tenant.
    DELETE FROM public.users u
     WHERE NOT EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = u.id);
    DELETE FROM public.qr_sessions q WHERE q.expires_at < now() - interval '1 day';
    RETURN removed;
END
$$;
