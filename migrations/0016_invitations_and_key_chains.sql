-- Membership by invitation (SPEC §4), and API keys that answer to a person.
--
--  * `POST /v1/members` is gone: nobody adds an existing account to a tenant, nor chooses
--    a password for someone else. An admin creates an invitation (a single-use
--    `crm_inv_…` token, stored as SHA-256, expiring); whoever accepts it proves control of
--    the account (a new one sets its own password; an existing one gives its password or
--    comes with its own session). `crm_find_user_id`, which told an admin whether an
--    address had an account, goes with it.
--  * Every API key records the member it ultimately acts for (`acts_for`): the session
--    user for a key made in a session, the parent's `acts_for` for a key made by a key.
--    Removing that member deletes every key of the chain (foreign key, cascade); the
--    resolver caps every key of the chain at that member's current role, at once. Keys
--    made by keys before this migration answered to nobody: they are revoked here.

SET LOCAL ROLE crm_owner;

-- ---------------------------------------------------------------------------------------
-- Key chains.

ALTER TABLE api_keys ADD COLUMN acts_for uuid;
-- The back-fill runs as crm_definer (BYPASSRLS: a migration has no tenant), with the two
-- column privileges it needs for the length of this migration only.
GRANT UPDATE (acts_for, revoked_at) ON api_keys TO crm_definer;
SET LOCAL ROLE crm_definer;
UPDATE public.api_keys SET acts_for = created_by WHERE created_by IS NOT NULL;
UPDATE public.api_keys SET revoked_at = now() WHERE acts_for IS NULL AND revoked_at IS NULL;
SET LOCAL ROLE crm_owner;
REVOKE UPDATE (acts_for, revoked_at) ON api_keys FROM crm_definer;

ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_acts_for_fkey FOREIGN KEY (tenant_id, acts_for)
        REFERENCES memberships (tenant_id, user_id) ON DELETE CASCADE,
    ADD CONSTRAINT api_keys_answer_to_a_person CHECK (acts_for IS NOT NULL OR revoked_at IS NOT NULL);
CREATE INDEX api_keys_acts_for_idx ON api_keys (tenant_id, acts_for);
GRANT SELECT (acts_for) ON api_keys TO crm_app;

-- ---------------------------------------------------------------------------------------
-- Invitations.

CREATE TABLE invitations (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    email        text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash   bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    -- The member who invited: an invitation answers to a person like a key does, and goes
    -- when they leave.
    invited_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    accepted_by  uuid,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, invited_by)
        REFERENCES memberships (tenant_id, user_id) ON DELETE CASCADE,
    CHECK ((accepted_at IS NULL) = (accepted_by IS NULL))
);
CREATE UNIQUE INDEX invitations_token_hash_key ON invitations (token_hash);
CREATE INDEX invitations_created_idx ON invitations (tenant_id, created_at DESC, id DESC);
ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY invitations_isolation ON invitations
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

-- The application role never reads a token hash; it accepts (once) and revokes in its
-- own tenant only.
GRANT SELECT (tenant_id, id, email, role, invited_by, created_at, expires_at, accepted_at,
              accepted_by, revoked_at) ON invitations TO crm_app;
GRANT INSERT ON invitations TO crm_app;
GRANT UPDATE (accepted_at, accepted_by, revoked_at) ON invitations TO crm_app;
GRANT SELECT ON invitations TO crm_definer;

-- `invitation.created` lets the tenant's own system send the e-mail. The object is stored
-- in its API shape (no token, no hash), so it is rendered as it is.
CREATE FUNCTION crm_record_invitation_event() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO public.events (tenant_id, type, object)
    VALUES (NEW.tenant_id, 'invitation.created', pg_catalog.jsonb_build_object(
        'id', NEW.id, 'email', NEW.email, 'role', NEW.role, 'invitedBy', NEW.invited_by,
        'createdAt', public.crm_ts(NEW.created_at::text),
        'expiresAt', public.crm_ts(NEW.expires_at::text), 'acceptedAt', NULL));
    RETURN NULL;
END
$$;
CREATE TRIGGER invitations_events AFTER INSERT ON invitations
    FOR EACH ROW EXECUTE FUNCTION crm_record_invitation_event();

CREATE OR REPLACE FUNCTION crm_render_event(e public.events) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.jsonb_build_object(
        'id', 'evt_' || pg_catalog.replace(e.id::text, '-', ''),
        'type', e.type,
        'tenantId', e.tenant_id,
        'createdAt', public.crm_ts(e.created_at::text),
        'data', CASE
            WHEN e.type = 'webhook.test' THEN e.object
            -- Stored already in the API's shape.
            WHEN pg_catalog.split_part(e.type, '.', 1) = 'invitation'
                THEN pg_catalog.jsonb_build_object('object', e.object)
            WHEN e.previous IS NULL THEN pg_catalog.jsonb_build_object('object', o.object)
            ELSE pg_catalog.jsonb_build_object(
                'object', o.object, 'previous', o.previous,
                'changedFields', public.crm_changed_fields(o.object, o.previous))
        END || coalesce(e.extra, '{}'::jsonb))
      FROM (SELECT public.crm_render_object(pg_catalog.split_part(e.type, '.', 1), e.object) AS object,
                   CASE WHEN e.previous IS NOT NULL
                        THEN public.crm_render_object(pg_catalog.split_part(e.type, '.', 1), e.previous)
                   END AS previous) o
$$;

SET LOCAL ROLE crm_definer;

-- Accepting an invitation starts before any tenant is known: the token's hash finds the
-- invitation's tenant, id and address (which the token's holder was sent), nothing else; the acceptance itself then runs in that
-- tenant's context, where a conditional UPDATE makes the token single-use.
CREATE FUNCTION crm_find_invitation(p_token_hash bytea)
RETURNS TABLE (tenant_id uuid, invitation_id uuid, email text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.tenant_id, i.id, i.email
      FROM public.invitations i
      JOIN public.tenants t ON t.id = i.tenant_id
     WHERE i.token_hash = p_token_hash
       AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
       AND (t.expires_at IS NULL OR t.expires_at > now());
$$;
REVOKE ALL ON FUNCTION crm_find_invitation(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_find_invitation(bytea) TO crm_app;

DROP FUNCTION crm_find_user_id(text);

-- The resolver, now with the key's person: the key works only while that person is a
-- member, and never above their current role.
DROP FUNCTION crm_authenticate_api_key(bytea);
CREATE FUNCTION crm_authenticate_api_key(p_key_hash bytea)
RETURNS TABLE (tenant_id uuid, tenant_name text, key_id uuid, key_name text,
               key_prefix text, role text, scopes text[], acts_for uuid)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    found_key record;
BEGIN
    SELECT k.tenant_id, t.name AS tenant_name, k.id, k.name, k.prefix, k.scopes, k.last_used_at,
           k.acts_for,
           CASE WHEN array_position(ARRAY['viewer', 'member', 'admin', 'owner'], m.role)
                     < array_position(ARRAY['viewer', 'member', 'admin', 'owner'], k.role)
                THEN m.role
                ELSE k.role
           END AS effective_role
      INTO found_key
      FROM public.api_keys k
      JOIN public.tenants t ON t.id = k.tenant_id
      JOIN public.memberships m ON m.tenant_id = k.tenant_id AND m.user_id = k.acts_for
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
                        found_key.name, found_key.prefix, found_key.effective_role,
                        found_key.scopes, found_key.acts_for;
END
$$;
REVOKE ALL ON FUNCTION crm_authenticate_api_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_authenticate_api_key(bytea) TO crm_app;
