-- Tenants, users, memberships and API keys.
--
-- Every tenant-owned table: tenant_id NOT NULL, a key leading with tenant_id, composite
-- foreign keys (tenant_id, x_id) so no row can point into another tenant, ENABLE + FORCE
-- ROW LEVEL SECURITY, and one permissive policy on app.tenant_id. NULLIF turns the ''
-- an expired transaction-local setting leaves behind into NULL, which matches nothing.

SET LOCAL ROLE crm_owner;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_isolation ON tenants
    USING (id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

-- People who can log in. Not tenant-owned (one person may belong to several tenants), so
-- no tenant_id; a user is visible only while it is a member of the current tenant.
CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    password_hash  text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);
ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY memberships_isolation ON memberships
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_visible_to_their_tenants ON users FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM memberships m
        WHERE m.user_id = users.id
          AND m.tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    ));
-- Creating an identity reveals nothing about any tenant (sign-up needs it).
CREATE POLICY users_insert ON users FOR INSERT WITH CHECK (true);

CREATE TABLE api_keys (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    prefix        text NOT NULL CHECK (prefix LIKE 'crm_sk_%'),
    key_hash      bytea NOT NULL CHECK (octet_length(key_hash) = 32),
    role          text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    scopes        text[] NOT NULL DEFAULT '{}',
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by)
        REFERENCES memberships (tenant_id, user_id) ON DELETE SET NULL (created_by)
);
-- Resolution by hash happens before the tenant is known, through
-- crm_authenticate_api_key(); the unique index makes it one index probe.
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY api_keys_isolation ON api_keys
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

-- The application role reads its own tenant's rows only (RLS), and never key hashes.
GRANT SELECT ON tenants TO crm_app;
GRANT SELECT ON users TO crm_app;
GRANT SELECT ON memberships TO crm_app;
GRANT SELECT (tenant_id, id, name, prefix, role, scopes, created_by, created_at,
              last_used_at, expires_at, revoked_at) ON api_keys TO crm_app;

-- What the pre-authentication functions (owned by crm_definer) need, and no more.
GRANT SELECT ON tenants TO crm_definer;
GRANT SELECT ON api_keys TO crm_definer;
GRANT UPDATE (last_used_at) ON api_keys TO crm_definer;
