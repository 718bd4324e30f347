-- Leads and activities.
--
-- A lead's stage must belong to the lead's pipeline: (tenant_id, pipeline_id, stage_id)
-- references pipeline_stages (tenant_id, pipeline_id, id), so the database refuses a
-- mismatch whatever the code does. A lead's status follows its stage's kind (trigger).
-- Deleting a stage or pipeline that holds leads is refused (RESTRICT); deleting a contact
-- or company clears the lead's reference; deleting a contact, company or lead deletes the
-- activities linked to it (an activity always has at least one link).

SET LOCAL ROLE crm_owner;

CREATE TABLE leads (
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                   uuid NOT NULL,
    title                text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    contact_id           uuid,
    company_id           uuid,
    pipeline_id          uuid NOT NULL,
    stage_id             uuid NOT NULL,
    value                bigint CHECK (value >= 0),
    currency             text CHECK (currency ~ '^[A-Z]{3}$'),
    status               text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
    owner_id             uuid,
    expected_close_date  date,
    source               text CHECK (char_length(source) BETWEEN 1 AND 100),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    version              bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    search_text          text GENERATED ALWAYS AS (lower(title || ' ' || coalesce(source, ''))) STORED,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT leads_value_currency CHECK ((value IS NULL) = (currency IS NULL)),
    CONSTRAINT leads_stage_fkey FOREIGN KEY (tenant_id, pipeline_id, stage_id)
        REFERENCES pipeline_stages (tenant_id, pipeline_id, id) ON DELETE RESTRICT,
    CONSTRAINT leads_contact_fkey FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE SET NULL (contact_id),
    CONSTRAINT leads_company_fkey FOREIGN KEY (tenant_id, company_id)
        REFERENCES companies (tenant_id, id) ON DELETE SET NULL (company_id),
    CONSTRAINT leads_owner_fkey FOREIGN KEY (tenant_id, owner_id)
        REFERENCES memberships (tenant_id, user_id) ON DELETE SET NULL (owner_id)
);
CREATE INDEX leads_created_idx ON leads (tenant_id, created_at, id);
CREATE INDEX leads_updated_idx ON leads (tenant_id, updated_at, id);
CREATE INDEX leads_value_idx ON leads (tenant_id, (coalesce(value, 0)), id);
CREATE INDEX leads_stage_idx ON leads (tenant_id, pipeline_id, stage_id);
CREATE INDEX leads_contact_idx ON leads (tenant_id, contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX leads_company_idx ON leads (tenant_id, company_id) WHERE company_id IS NOT NULL;
CREATE INDEX leads_owner_idx ON leads (tenant_id, owner_id) WHERE owner_id IS NOT NULL;
ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
ALTER TABLE leads FORCE ROW LEVEL SECURITY;
CREATE POLICY leads_isolation ON leads
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

-- The status follows the stage's kind on every insert and stage change.
CREATE FUNCTION crm_lead_status() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT s.kind INTO NEW.status FROM public.pipeline_stages s
     WHERE s.tenant_id = NEW.tenant_id AND s.pipeline_id = NEW.pipeline_id AND s.id = NEW.stage_id;
    IF NEW.status IS NULL THEN
        NEW.status := 'open'; -- the foreign key refuses the row anyway
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER leads_status BEFORE INSERT OR UPDATE OF pipeline_id, stage_id ON leads
    FOR EACH ROW EXECUTE FUNCTION crm_lead_status();

CREATE TABLE activities (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    type          text NOT NULL CHECK (type IN ('note', 'call', 'email', 'meeting', 'task')),
    subject       text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 200),
    body          text CHECK (char_length(body) <= 10000),
    due_at        timestamptz,
    completed_at  timestamptz,
    contact_id    uuid,
    company_id    uuid,
    lead_id       uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT activities_linked CHECK (contact_id IS NOT NULL OR company_id IS NOT NULL OR lead_id IS NOT NULL),
    CONSTRAINT activities_contact_fkey FOREIGN KEY (tenant_id, contact_id)
        REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT activities_company_fkey FOREIGN KEY (tenant_id, company_id)
        REFERENCES companies (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT activities_lead_fkey FOREIGN KEY (tenant_id, lead_id)
        REFERENCES leads (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX activities_created_idx ON activities (tenant_id, created_at, id);
CREATE INDEX activities_contact_idx ON activities (tenant_id, contact_id, created_at, id) WHERE contact_id IS NOT NULL;
CREATE INDEX activities_company_idx ON activities (tenant_id, company_id, created_at, id) WHERE company_id IS NOT NULL;
CREATE INDEX activities_lead_idx ON activities (tenant_id, lead_id, created_at, id) WHERE lead_id IS NOT NULL;
ALTER TABLE activities ENABLE ROW LEVEL SECURITY;
ALTER TABLE activities FORCE ROW LEVEL SECURITY;
CREATE POLICY activities_isolation ON activities
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON leads, activities TO crm_app;
