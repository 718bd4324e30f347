-- Pre-authentication look-ups: the only way the application role reaches rows before it
-- knows the tenant. Each function is SECURITY DEFINER, owned by crm_definer (BYPASSRLS,
-- with just the grants it needs), pins search_path, is revoked from PUBLIC and granted to
-- crm_app alone.

SET LOCAL ROLE crm_definer;

-- Resolves a live API key by the SHA-256 of the presented key and, in the same call, sets
-- app.tenant_id for the caller's transaction: authentication and the transaction prologue
-- cost one round trip together. Returns no row for an unknown, revoked or expired key.
-- last_used_at is refreshed at most once a minute and never waits for a lock.
CREATE FUNCTION crm_authenticate_api_key(p_key_hash bytea)
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
    SELECT k.tenant_id, t.name AS tenant_name, k.id, k.name, k.prefix, k.role, k.scopes,
           k.last_used_at
      INTO found_key
      FROM public.api_keys k
      JOIN public.tenants t ON t.id = k.tenant_id
     WHERE k.key_hash = p_key_hash
       AND k.revoked_at IS NULL
       AND (k.expires_at IS NULL OR k.expires_at > now());
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
                        found_key.name, found_key.prefix, found_key.role, found_key.scopes;
END
$$;

REVOKE ALL ON FUNCTION crm_authenticate_api_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_authenticate_api_key(bytea) TO crm_app;
