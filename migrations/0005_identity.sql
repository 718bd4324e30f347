-- Identity: sessions, QR login requests, demo sandboxes, and what the application role
-- may write for sign-up, login, API key and member management.

SET LOCAL ROLE crm_owner;

-- Demo sandboxes expire; real tenants have no expiry.
ALTER TABLE tenants ADD COLUMN expires_at timestamptz;
CREATE INDEX tenants_expiry_idx ON tenants (expires_at) WHERE expires_at IS NOT NULL;

-- Login sessions: opaque bearer tokens (crm_st_…), stored only as SHA-256, bound to one
-- membership (removing the member ends their sessions).
CREATE TABLE sessions (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    user_id       uuid NOT NULL,
    token_hash    bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    user_agent    text CHECK (char_length(user_agent) <= 300),
    ip            text CHECK (char_length(ip) <= 64),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id)
        REFERENCES memberships (tenant_id, user_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);
CREATE INDEX sessions_user_idx ON sessions (tenant_id, user_id);
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY sessions_isolation ON sessions
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

-- QR login requests. Created before any tenant is known (tenant_id and user_id are set
-- when a logged-in member scans the code), so the application role has no privilege on
-- this table at all: every step goes through a SECURITY DEFINER function below. The
-- tenant policy still applies to anything else that might query it.
CREATE TABLE qr_sessions (
    id                    uuid PRIMARY KEY,
    code_hash             bytea NOT NULL CHECK (octet_length(code_hash) = 32),
    poll_token_hash       bytea NOT NULL CHECK (octet_length(poll_token_hash) = 32),
    status                text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'scanned', 'linked', 'consumed', 'cancelled')),
    requester_user_agent  text CHECK (char_length(requester_user_agent) <= 300),
    requester_ip          text CHECK (char_length(requester_ip) <= 64),
    interval_seconds      integer NOT NULL CHECK (interval_seconds BETWEEN 1 AND 60),
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    last_polled_at        timestamptz,
    tenant_id             uuid,
    user_id               uuid,
    FOREIGN KEY (tenant_id, user_id)
        REFERENCES memberships (tenant_id, user_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX qr_sessions_code_hash_key ON qr_sessions (code_hash);
CREATE INDEX qr_sessions_expiry_idx ON qr_sessions (expires_at);
ALTER TABLE qr_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE qr_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY qr_sessions_isolation ON qr_sessions
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

-- What the application role may now write, always within its own tenant (RLS).
GRANT INSERT (id, name, expires_at) ON tenants TO crm_app;
GRANT INSERT ON users TO crm_app;
GRANT INSERT, DELETE ON memberships TO crm_app;
GRANT UPDATE (role) ON memberships TO crm_app;
GRANT INSERT ON api_keys TO crm_app;
GRANT UPDATE (revoked_at) ON api_keys TO crm_app;
GRANT SELECT (tenant_id, id, user_id, user_agent, ip, created_at, last_seen_at, expires_at, revoked_at)
    ON sessions TO crm_app;
GRANT INSERT ON sessions TO crm_app;
GRANT UPDATE (revoked_at) ON sessions TO crm_app;

-- What the pre-authentication functions need.
GRANT SELECT ON users, memberships TO crm_definer;
GRANT SELECT ON sessions TO crm_definer;
GRANT UPDATE (last_seen_at) ON sessions TO crm_definer;
GRANT INSERT ON sessions TO crm_definer;
GRANT SELECT, INSERT, DELETE ON qr_sessions TO crm_definer;
GRANT UPDATE (status, tenant_id, user_id, last_polled_at) ON qr_sessions TO crm_definer;
GRANT DELETE ON tenants, users TO crm_definer;

SET LOCAL ROLE crm_definer;

-- API keys of an expired (demo) tenant stop working before the sweep deletes it.
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
    SELECT k.tenant_id, t.name AS tenant_name, k.id, k.name, k.prefix, k.role, k.scopes,
           k.last_used_at
      INTO found_key
      FROM public.api_keys k
      JOIN public.tenants t ON t.id = k.tenant_id
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
                        found_key.name, found_key.prefix, found_key.role, found_key.scopes;
END
$$;

-- Resolves a live session (unrevoked, unexpired, used within the idle timeout, in a live
-- tenant, of a current member) and sets app.tenant_id for the caller's transaction, in
-- one round trip. last_seen_at is refreshed at most once a minute, never waiting on a lock.
CREATE FUNCTION crm_authenticate_session(p_token_hash bytea, p_idle_seconds bigint)
RETURNS TABLE (tenant_id uuid, tenant_name text, session_id uuid, user_id uuid,
               user_email text, user_name text, role text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    found_session record;
BEGIN
    SELECT s.tenant_id, t.name AS tenant_name, s.id, s.user_id, u.email, u.name AS user_name,
           m.role, s.last_seen_at
      INTO found_session
      FROM public.sessions s
      JOIN public.tenants t ON t.id = s.tenant_id
      JOIN public.memberships m ON m.tenant_id = s.tenant_id AND m.user_id = s.user_id
      JOIN public.users u ON u.id = s.user_id
     WHERE s.token_hash = p_token_hash
       AND s.revoked_at IS NULL
       AND s.expires_at > now()
       AND s.last_seen_at > now() - make_interval(secs => p_idle_seconds::double precision)
       AND (t.expires_at IS NULL OR t.expires_at > now());
    IF NOT FOUND THEN
        RETURN;
    END IF;

    PERFORM set_config('app.tenant_id', found_session.tenant_id::text, true);

    IF found_session.last_seen_at < now() - interval '1 minute' THEN
        UPDATE public.sessions s SET last_seen_at = now()
         WHERE (s.tenant_id, s.id) IN (
               SELECT l.tenant_id, l.id FROM public.sessions l
                WHERE l.tenant_id = found_session.tenant_id AND l.id = found_session.id
                  FOR UPDATE SKIP LOCKED);
    END IF;

    RETURN QUERY SELECT found_session.tenant_id, found_session.tenant_name, found_session.id,
                        found_session.user_id, found_session.email, found_session.user_name,
                        found_session.role;
END
$$;

-- Login: the user with this e-mail, their password hash and live memberships (one row per
-- membership, oldest first; one row with NULL tenant when they have none).
CREATE FUNCTION crm_find_login(p_email text)
RETURNS TABLE (user_id uuid, email text, name text, password_hash text,
               tenant_id uuid, tenant_name text, role text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, u.email, u.name, u.password_hash, live.tenant_id, live.name, live.role
      FROM public.users u
      LEFT JOIN LATERAL (
           SELECT m.tenant_id, t.name, m.role, m.created_at
             FROM public.memberships m
             JOIN public.tenants t ON t.id = m.tenant_id
            WHERE m.user_id = u.id AND (t.expires_at IS NULL OR t.expires_at > now())
      ) live ON true
     WHERE lower(u.email) = lower(p_email)
     ORDER BY live.created_at NULLS LAST, live.tenant_id;
$$;

-- Adding a member by e-mail: the id of an existing user, nothing else about them.
CREATE FUNCTION crm_find_user_id(p_email text)
RETURNS uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id FROM public.users u WHERE lower(u.email) = lower(p_email);
$$;

-- The background sweep: expired demo tenants (with everything in them, by cascade), demo
-- users left without a tenant, and QR requests a day past their expiry.
CREATE FUNCTION crm_sweep_expired_tenants()
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
    DELETE FROM public.users u
     WHERE u.email LIKE 'demo+%@demo.crm.invalid'
       AND NOT EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = u.id);
    DELETE FROM public.qr_sessions q WHERE q.expires_at < now() - interval '1 day';
    RETURN removed;
END
$$;

-- QR step 1 (waiting device, unauthenticated): a new request.
CREATE FUNCTION crm_qr_create(p_id uuid, p_code_hash bytea, p_poll_token_hash bytea,
                              p_user_agent text, p_ip text, p_expires_at timestamptz,
                              p_interval_seconds integer)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO public.qr_sessions (id, code_hash, poll_token_hash, requester_user_agent,
                                    requester_ip, expires_at, interval_seconds)
    VALUES (p_id, p_code_hash, p_poll_token_hash, left(p_user_agent, 300), left(p_ip, 64),
            p_expires_at, p_interval_seconds);
$$;

-- QR step 2 (scanning device, in its tenant-scoped transaction): pending -> scanned by
-- p_user, who must be a member of the transaction's tenant. Outcome 'ok', 'not_found',
-- 'expired', or the status that makes the code unusable.
CREATE FUNCTION crm_qr_scan(p_code_hash bytea, p_user uuid)
RETURNS TABLE (outcome text, session_id uuid, user_agent text, ip text, created_at timestamptz)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    scanner_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    request record;
BEGIN
    IF scanner_tenant IS NULL OR NOT EXISTS (
        SELECT 1 FROM public.memberships m WHERE m.tenant_id = scanner_tenant AND m.user_id = p_user
    ) THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::uuid, NULL::text, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    SELECT * INTO request FROM public.qr_sessions q WHERE q.code_hash = p_code_hash FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::uuid, NULL::text, NULL::text, NULL::timestamptz;
    ELSIF request.status IN ('pending', 'scanned', 'linked') AND request.expires_at <= now() THEN
        RETURN QUERY SELECT 'expired'::text, NULL::uuid, NULL::text, NULL::text, NULL::timestamptz;
    ELSIF request.status <> 'pending' THEN
        RETURN QUERY SELECT request.status, NULL::uuid, NULL::text, NULL::text, NULL::timestamptz;
    ELSE
        UPDATE public.qr_sessions q SET status = 'scanned', tenant_id = scanner_tenant, user_id = p_user
         WHERE q.id = request.id;
        RETURN QUERY SELECT 'ok'::text, request.id, request.requester_user_agent,
                            request.requester_ip, request.created_at;
    END IF;
END
$$;

-- QR step 3 (scanning device): scanned by p_user in this tenant -> p_decision ('linked' or
-- 'cancelled'). Outcome 'ok', 'not_found', 'expired', or the blocking status.
CREATE FUNCTION crm_qr_decide(p_id uuid, p_user uuid, p_decision text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    scanner_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    request record;
BEGIN
    IF p_decision NOT IN ('linked', 'cancelled') THEN
        RAISE EXCEPTION 'invalid QR decision %', p_decision;
    END IF;
    SELECT * INTO request FROM public.qr_sessions q WHERE q.id = p_id FOR UPDATE;
    IF NOT FOUND OR scanner_tenant IS NULL
       OR request.tenant_id IS DISTINCT FROM scanner_tenant
       OR request.user_id IS DISTINCT FROM p_user THEN
        RETURN 'not_found';
    ELSIF request.status IN ('pending', 'scanned', 'linked') AND request.expires_at <= now() THEN
        RETURN 'expired';
    ELSIF request.status <> 'scanned' THEN
        RETURN request.status;
    END IF;
    UPDATE public.qr_sessions q SET status = p_decision WHERE q.id = p_id;
    RETURN 'ok';
END
$$;

-- QR step 4 (waiting device, unauthenticated, holding the poll token): the status, and
-- once linked, the new session, created here and handed out exactly once. Outcome
-- 'not_found', 'wrong_token', 'slow_down', 'expired', 'collected', or the status.
CREATE FUNCTION crm_qr_poll(p_id uuid, p_poll_token_hash bytea, p_session_id uuid,
                            p_session_token_hash bytea, p_session_expires_at timestamptz)
RETURNS TABLE (outcome text, tenant_id uuid, user_id uuid)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    request record;
BEGIN
    SELECT * INTO request FROM public.qr_sessions q WHERE q.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::uuid, NULL::uuid;
        RETURN;
    END IF;
    IF request.poll_token_hash <> p_poll_token_hash THEN
        RETURN QUERY SELECT 'wrong_token'::text, NULL::uuid, NULL::uuid;
        RETURN;
    END IF;
    -- RFC 8628 slow_down, with 20 % tolerance for timer jitter on the device.
    IF request.last_polled_at IS NOT NULL
       AND request.last_polled_at > clock_timestamp()
           - make_interval(secs => request.interval_seconds * 0.8) THEN
        RETURN QUERY SELECT 'slow_down'::text, NULL::uuid, NULL::uuid;
        RETURN;
    END IF;
    UPDATE public.qr_sessions q SET last_polled_at = clock_timestamp() WHERE q.id = p_id;
    IF request.status IN ('pending', 'scanned', 'linked') AND request.expires_at <= now() THEN
        RETURN QUERY SELECT 'expired'::text, NULL::uuid, NULL::uuid;
    ELSIF request.status = 'linked' THEN
        INSERT INTO public.sessions (tenant_id, id, user_id, token_hash, expires_at, user_agent, ip)
        VALUES (request.tenant_id, p_session_id, request.user_id, p_session_token_hash,
                p_session_expires_at, request.requester_user_agent, request.requester_ip);
        UPDATE public.qr_sessions q SET status = 'consumed' WHERE q.id = p_id;
        RETURN QUERY SELECT 'collected'::text, request.tenant_id, request.user_id;
    ELSE
        RETURN QUERY SELECT request.status, NULL::uuid, NULL::uuid;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION crm_authenticate_session(bytea, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_find_login(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_find_user_id(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_sweep_expired_tenants() FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_qr_create(uuid, bytea, bytea, text, text, timestamptz, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_qr_scan(bytea, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_qr_decide(uuid, uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_qr_poll(uuid, bytea, uuid, bytea, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_authenticate_session(bytea, bigint) TO crm_app;
GRANT EXECUTE ON FUNCTION crm_find_login(text) TO crm_app;
GRANT EXECUTE ON FUNCTION crm_find_user_id(text) TO crm_app;
GRANT EXECUTE ON FUNCTION crm_sweep_expired_tenants() TO crm_app;
GRANT EXECUTE ON FUNCTION crm_qr_create(uuid, bytea, bytea, text, text, timestamptz, integer) TO crm_app;
GRANT EXECUTE ON FUNCTION crm_qr_scan(bytea, uuid) TO crm_app;
GRANT EXECUTE ON FUNCTION crm_qr_decide(uuid, uuid, text) TO crm_app;
GRANT EXECUTE ON FUNCTION crm_qr_poll(uuid, bytea, uuid, bytea, timestamptz) TO crm_app;
