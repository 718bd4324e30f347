-- Companies, and contacts' composite foreign key to them.
--
-- Deleting a company keeps its contacts and clears their company (ON DELETE SET NULL on
-- company_id only: tenant_id is part of the key and never changes).

SET LOCAL ROLE crm_owner;

CREATE TABLE companies (
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id             uuid NOT NULL,
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    domain         text CHECK (char_length(domain) BETWEEN 3 AND 253 AND domain = lower(domain)),
    industry       text CHECK (char_length(industry) BETWEEN 1 AND 100),
    size           text CHECK (size IN ('1-10', '11-50', '51-200', '201-1000', '1001-5000', '5000+')),
    address        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(address) = 'object'),
    tags           text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50),
    custom_fields  jsonb NOT NULL DEFAULT '{}'
                   CHECK (jsonb_typeof(custom_fields) = 'object' AND pg_column_size(custom_fields) <= 262144),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    version        bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    search_text    text GENERATED ALWAYS AS (lower(name || ' ' || coalesce(domain, ''))) STORED,
    PRIMARY KEY (tenant_id, id)
);

CREATE UNIQUE INDEX companies_tenant_domain_key ON companies (tenant_id, domain) WHERE domain IS NOT NULL;
CREATE INDEX companies_created_idx ON companies (tenant_id, created_at, id);
CREATE INDEX companies_updated_idx ON companies (tenant_id, updated_at, id);
CREATE INDEX companies_name_idx ON companies (tenant_id, name, id);
CREATE INDEX companies_domain_sort_idx ON companies (tenant_id, (coalesce(domain, '')), id);
CREATE INDEX companies_tags_idx ON companies USING gin (tags);
CREATE INDEX companies_search_idx ON companies USING gin (search_text gin_trgm_ops);

ALTER TABLE companies ENABLE ROW LEVEL SECURITY;
ALTER TABLE companies FORCE ROW LEVEL SECURITY;
CREATE POLICY companies_isolation ON companies
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON companies TO crm_app;

-- Contacts could name a company before companies existed; no deployment holds such rows
-- (this lands before any release), so the key is validated at once.
ALTER TABLE contacts
    ADD CONSTRAINT contacts_company_fkey FOREIGN KEY (tenant_id, company_id)
        REFERENCES companies (tenant_id, id) ON DELETE SET NULL (company_id);
