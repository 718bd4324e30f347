-- Idempotency keys (SPEC §3): a POST carrying `Idempotency-Key` is recorded per tenant with
-- the SHA-256 of its method, path and body; a retry with the same key and body within
-- 24 hours gets the stored response again, another body gets 422, a retry while the
-- first is still running gets 409. Rows older than 24 hours are swept.

SET LOCAL ROLE crm_owner;

CREATE TABLE idempotency_keys (
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key               text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash      bytea NOT NULL CHECK (octet_length(request_hash) = 32),
    state             text NOT NULL CHECK (state IN ('in_flight', 'completed')),
    status            integer CHECK (status BETWEEN 100 AND 599),
    response_headers  jsonb,
    response_body     bytea,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_isolation ON idempotency_keys
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO crm_app;
GRANT SELECT, DELETE ON idempotency_keys TO crm_definer;

SET LOCAL ROLE crm_definer;

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
    DELETE FROM public.idempotency_keys k WHERE k.created_at < now() - interval '24 hours';
    RETURN removed;
END
$$;
