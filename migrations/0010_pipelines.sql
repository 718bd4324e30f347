-- Pipelines and their ordered stages. Every tenant gets a default pipeline when it is
-- created (a trigger, so sign-up, demo and `crm tenant create` all get one).
--
-- (tenant_id, pipeline_id, id) is unique on stages so that leads can reference a stage
-- *of their pipeline* with one composite foreign key: the database, not the code, keeps a
-- lead's stage in its pipeline.

SET LOCAL ROLE crm_owner;

CREATE TABLE pipelines (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX pipelines_one_default ON pipelines (tenant_id) WHERE is_default;
CREATE INDEX pipelines_created_idx ON pipelines (tenant_id, created_at, id);
ALTER TABLE pipelines ENABLE ROW LEVEL SECURITY;
ALTER TABLE pipelines FORCE ROW LEVEL SECURITY;
CREATE POLICY pipelines_isolation ON pipelines
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

CREATE TABLE pipeline_stages (
    tenant_id    uuid NOT NULL,
    pipeline_id  uuid NOT NULL,
    id           uuid NOT NULL,
    name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    position     integer NOT NULL CHECK (position >= 0),
    probability  integer NOT NULL CHECK (probability BETWEEN 0 AND 100),
    kind         text NOT NULL CHECK (kind IN ('open', 'won', 'lost')),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, pipeline_id, id),
    CONSTRAINT pipeline_stages_position_key UNIQUE (tenant_id, pipeline_id, position)
        DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE pipeline_stages ENABLE ROW LEVEL SECURITY;
ALTER TABLE pipeline_stages FORCE ROW LEVEL SECURITY;
CREATE POLICY pipeline_stages_isolation ON pipeline_stages
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON pipelines, pipeline_stages TO crm_app;

-- The default pipeline of a new tenant. Runs as the inserting role, inside its
-- transaction, so row-level security applies as to any other write of that tenant.
CREATE FUNCTION crm_default_pipeline() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pipeline uuid := gen_random_uuid();
BEGIN
    INSERT INTO public.pipelines (tenant_id, id, name, is_default) VALUES (NEW.id, pipeline, 'Sales', true);
    INSERT INTO public.pipeline_stages (tenant_id, pipeline_id, id, name, position, probability, kind)
    SELECT NEW.id, pipeline, gen_random_uuid(), s.name, s.position, s.probability, s.kind
      FROM (VALUES ('Qualified', 0, 10, 'open'), ('Contact made', 1, 20, 'open'),
                   ('Proposal sent', 2, 50, 'open'), ('Negotiation', 3, 75, 'open'),
                   ('Won', 4, 100, 'won'), ('Lost', 5, 0, 'lost')) AS s(name, position, probability, kind);
    RETURN NEW;
END
$$;
CREATE TRIGGER tenants_default_pipeline AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION crm_default_pipeline();
