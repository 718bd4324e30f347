-- Idempotency that is safe to replay (issue 11):
--
--  * a record belongs to one tenant and one credential (the API key or session that sent
--    the request): another credential with the same key runs its own request;
--  * it is written by the same transaction as the change it answers for, just before
--    that transaction commits: a crash leaves both or neither, so a retry never writes
--    twice; while that transaction runs, a transaction-scoped advisory lock on the key
--    makes a concurrent retry answer 409 at once instead of waiting;
--  * it keeps the role and scopes the credential had, so a replay is served only while
--    the credential still holds at least as much (the API checks before replaying);
--  * the application role has no privilege on the table at all: the stored responses
--    (which hold secrets shown once, e.g. a created API key) are reached only through
--    `crm_idempotency_begin`, which needs the credential, the key and the SHA-256 of the
--    very request, as a replay does;
--  * records older than 24 hours are swept (`crm_sweep_idempotency_records`), and ignored
--    before that.
--
-- The old table (claim in one transaction, store in a third) goes: its rows are at most
-- a day of replays, and an in-flight row of it could not be trusted anyway.

SET LOCAL ROLE crm_owner;

DROP TABLE idempotency_keys;

CREATE TABLE idempotency_records (
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    credential_id     uuid NOT NULL,
    key               text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash      bytea NOT NULL CHECK (octet_length(request_hash) = 32),
    role              text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    scopes            text[] NOT NULL,
    status            integer NOT NULL CHECK (status BETWEEN 200 AND 299),
    response_headers  jsonb NOT NULL,
    response_body     bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, credential_id, key)
);
CREATE INDEX idempotency_records_created_idx ON idempotency_records (created_at);
ALTER TABLE idempotency_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_records FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_records_isolation ON idempotency_records
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, DELETE ON idempotency_records TO crm_definer;

SET LOCAL ROLE crm_definer;

-- Before the request runs, in its own transaction (the tenant already set): takes the
-- key's lock for this transaction and says what to do. `outcome` is 'new' (run it),
-- 'in_flight' (another transaction holds the key), 'mismatch' (the key answered another
-- request) or 'replay' (here is the stored answer, and the power it was given with).
-- Outside a tenant's context it answers 'new' and touches nothing: the store that
-- follows would fail the same way.
CREATE FUNCTION crm_idempotency_begin(p_credential uuid, p_key text, p_hash bytea)
RETURNS TABLE (outcome text, role text, scopes text[], status integer,
               response_headers jsonb, response_body bytea)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    existing record;
BEGIN
    IF tenant IS NULL THEN
        RETURN QUERY SELECT 'new'::text, NULL::text, NULL::text[], NULL::integer, NULL::jsonb, NULL::bytea;
        RETURN;
    END IF;
    IF NOT pg_try_advisory_xact_lock(
            hashtextextended(tenant::text || '/' || p_credential::text || '/' || p_key, 0)) THEN
        RETURN QUERY SELECT 'in_flight'::text, NULL::text, NULL::text[], NULL::integer, NULL::jsonb, NULL::bytea;
        RETURN;
    END IF;
    -- An expired record is forgotten now, so this request may store its own.
    DELETE FROM public.idempotency_records r
     WHERE r.tenant_id = tenant AND r.credential_id = p_credential AND r.key = p_key
       AND r.created_at < now() - interval '24 hours';
    SELECT r.request_hash, r.role, r.scopes, r.status, r.response_headers, r.response_body
      INTO existing
      FROM public.idempotency_records r
     WHERE r.tenant_id = tenant AND r.credential_id = p_credential AND r.key = p_key;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'new'::text, NULL::text, NULL::text[], NULL::integer, NULL::jsonb, NULL::bytea;
    ELSIF existing.request_hash <> p_hash THEN
        RETURN QUERY SELECT 'mismatch'::text, NULL::text, NULL::text[], NULL::integer, NULL::jsonb, NULL::bytea;
    ELSE
        RETURN QUERY SELECT 'replay'::text, existing.role, existing.scopes, existing.status,
                            existing.response_headers, existing.response_body;
    END IF;
END
$$;

-- After the request's change, in the same transaction, just before it commits.
CREATE FUNCTION crm_idempotency_store(p_credential uuid, p_key text, p_hash bytea,
                                      p_role text, p_scopes text[], p_status integer,
                                      p_headers jsonb, p_body bytea)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant in context' USING ERRCODE = '42501';
    END IF;
    INSERT INTO public.idempotency_records
        (tenant_id, credential_id, key, request_hash, role, scopes, status,
         response_headers, response_body)
    VALUES (tenant, p_credential, p_key, p_hash, p_role, p_scopes, p_status, p_headers, p_body);
END
$$;

-- The retention sweep: at most 5 000 records a call (the caller repeats while it gets a
-- full chunk), each call its own short transaction. The age is fixed here.
CREATE FUNCTION crm_sweep_idempotency_records()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed bigint;
BEGIN
    DELETE FROM public.idempotency_records r
     WHERE (r.tenant_id, r.credential_id, r.key) IN (
           SELECT o.tenant_id, o.credential_id, o.key FROM public.idempotency_records o
            WHERE o.created_at < now() - interval '24 hours'
            LIMIT 5000);
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$$;

REVOKE ALL ON FUNCTION crm_idempotency_begin(uuid, text, bytea),
                       crm_idempotency_store(uuid, text, bytea, text, text[], integer, jsonb, bytea),
                       crm_sweep_idempotency_records() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_idempotency_begin(uuid, text, bytea),
                          crm_idempotency_store(uuid, text, bytea, text, text[], integer, jsonb, bytea),
                          crm_sweep_idempotency_records() TO crm_app;
