-- Contacts. company_id is accepted now and gains its composite foreign key when companies
-- arrive. E-mail addresses are stored lower-cased by the domain, so a plain unique index on
-- (tenant_id, email) is case-insensitive uniqueness.

SET LOCAL ROLE crm_owner;

CREATE TABLE contacts (
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id             uuid NOT NULL,
    first_name     text CHECK (char_length(first_name) BETWEEN 1 AND 100),
    last_name      text CHECK (char_length(last_name) BETWEEN 1 AND 100),
    email          text CHECK (char_length(email) BETWEEN 3 AND 254 AND email = lower(email)),
    phone          text CHECK (char_length(phone) BETWEEN 1 AND 32),
    title          text CHECK (char_length(title) BETWEEN 1 AND 200),
    tags           text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50),
    custom_fields  jsonb NOT NULL DEFAULT '{}'
                   CHECK (jsonb_typeof(custom_fields) = 'object' AND pg_column_size(custom_fields) <= 262144),
    owner_id       uuid,
    company_id     uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    version        bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- What `q` searches: one lower-cased text, trigram-indexed.
    search_text    text GENERATED ALWAYS AS (lower(
                       coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' ||
                       coalesce(email, '') || ' ' || coalesce(phone, ''))) STORED,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT contacts_owner_fkey FOREIGN KEY (tenant_id, owner_id)
        REFERENCES memberships (tenant_id, user_id) ON DELETE SET NULL (owner_id)
);

CREATE UNIQUE INDEX contacts_tenant_email_key ON contacts (tenant_id, email)
    WHERE email IS NOT NULL;
-- Keyset pagination, one index per sort, each leading with tenant_id.
CREATE INDEX contacts_created_idx ON contacts (tenant_id, created_at, id);
CREATE INDEX contacts_updated_idx ON contacts (tenant_id, updated_at, id);
CREATE INDEX contacts_last_name_idx ON contacts (tenant_id, (coalesce(last_name, '')), id);
CREATE INDEX contacts_email_sort_idx ON contacts (tenant_id, (coalesce(email, '')), id);
CREATE INDEX contacts_company_idx ON contacts (tenant_id, company_id) WHERE company_id IS NOT NULL;
CREATE INDEX contacts_owner_idx ON contacts (tenant_id, owner_id) WHERE owner_id IS NOT NULL;
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags);
CREATE INDEX contacts_search_idx ON contacts USING gin (search_text gin_trgm_ops);

ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY contacts_isolation ON contacts
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON contacts TO crm_app;
