-- DRAFT, NOT APPLIED: the outbox triggers for issue 6, to become a migration once the
-- delivery worker and the webhook API exist (they are useless cost until then).
--
-- Every INSERT/UPDATE/DELETE on contacts, companies, leads and activities writes its
-- events in the same statement (statement-level triggers with transition tables: one
-- INSERT per statement, so a 100-row batch writes 100 events at once); pipelines fire at
-- commit (deferred), when their stages are final. Only changes made in the row's tenant
-- context write events; maintenance outside a tenant (the demo sweep) writes none, and
-- returns before touching `events`, so it needs no privilege on it.
--
-- Measured (2026-11-25, 2 cores, PostgreSQL 15, 10 000 contacts seeded, psql and
-- `make bench`):
--   * first version (API-shaped JSON built in the trigger by SQL functions with SET
--     search_path, not inlinable): +6.5 ms per 100-row insert;
--   * row snapshots with to_jsonb, rendering at read time: +1.1 to +1.6 ms per 100 rows,
--     +0.1 ms per single-row insert (the statement trigger's fixed cost);
--   * `make bench` (batch of 100 against 5 single POSTs): 0.92 without the triggers,
--     1.11 with them (6 KiB statements), 1.00 with them and 12 KiB statements (one
--     statement per 100-contact batch) and no foreign key from events to tenants.
-- So with the outbox on, issue 4's "100 in one call no slower than 5 single calls" sits
-- at 1.0 +- noise: every change now writes two rows (the change and its event), and the
-- batch pays that 100 times where five single calls pay it five times.
--
-- The CRM-table triggers, as they were measured:

SET LOCAL ROLE crm_owner;
-- Writing events: one statement-level trigger per table and operation, with transition
-- tables, so a multi-row statement writes all its events in one INSERT.

-- The tenant the transaction works for (NULL outside a tenant's context).
CREATE FUNCTION crm_current_tenant() RETURNS uuid
LANGUAGE sql STABLE
AS $$ SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid $$;

CREATE FUNCTION crm_contacts_created() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL; -- outside a tenant's context: no events (and no privileges needed)
    END IF;
    INSERT INTO public.events (tenant_id, type, object)
    SELECT n.tenant_id, 'contact.created', to_jsonb(n)
      FROM new_rows n WHERE n.tenant_id = public.crm_current_tenant();
    RETURN NULL;
END $$;
CREATE FUNCTION crm_contacts_updated() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.events (tenant_id, type, object, previous)
    SELECT n.tenant_id, 'contact.updated', to_jsonb(n), to_jsonb(o)
      FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
     WHERE n.tenant_id = public.crm_current_tenant()
       AND to_jsonb(n) - 'updated_at' - 'version' <> to_jsonb(o) - 'updated_at' - 'version';
    RETURN NULL;
END $$;
CREATE FUNCTION crm_contacts_deleted() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.events (tenant_id, type, object)
    SELECT o.tenant_id, 'contact.deleted', to_jsonb(o)
      FROM old_rows o WHERE o.tenant_id = public.crm_current_tenant();
    RETURN NULL;
END $$;
CREATE TRIGGER contacts_created AFTER INSERT ON contacts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_contacts_created();
CREATE TRIGGER contacts_updated AFTER UPDATE ON contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_contacts_updated();
CREATE TRIGGER contacts_deleted AFTER DELETE ON contacts REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_contacts_deleted();

CREATE FUNCTION crm_companies_created() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL; -- outside a tenant's context: no events (and no privileges needed)
    END IF;
    INSERT INTO public.events (tenant_id, type, object)
    SELECT n.tenant_id, 'company.created', to_jsonb(n)
      FROM new_rows n WHERE n.tenant_id = public.crm_current_tenant();
    RETURN NULL;
END $$;
CREATE FUNCTION crm_companies_updated() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.events (tenant_id, type, object, previous)
    SELECT n.tenant_id, 'company.updated', to_jsonb(n), to_jsonb(o)
      FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
     WHERE n.tenant_id = public.crm_current_tenant()
       AND to_jsonb(n) - 'updated_at' - 'version' <> to_jsonb(o) - 'updated_at' - 'version';
    RETURN NULL;
END $$;
CREATE FUNCTION crm_companies_deleted() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.events (tenant_id, type, object)
    SELECT o.tenant_id, 'company.deleted', to_jsonb(o)
      FROM old_rows o WHERE o.tenant_id = public.crm_current_tenant();
    RETURN NULL;
END $$;
CREATE TRIGGER companies_created AFTER INSERT ON companies REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_companies_created();
CREATE TRIGGER companies_updated AFTER UPDATE ON companies
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_companies_updated();
CREATE TRIGGER companies_deleted AFTER DELETE ON companies REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_companies_deleted();

CREATE FUNCTION crm_leads_created() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL; -- outside a tenant's context: no events (and no privileges needed)
    END IF;
    INSERT INTO public.events (tenant_id, type, object)
    SELECT n.tenant_id, 'lead.created', to_jsonb(n)
      FROM new_rows n WHERE n.tenant_id = public.crm_current_tenant();
    RETURN NULL;
END $$;
CREATE FUNCTION crm_leads_updated() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.events (tenant_id, type, object, previous)
    SELECT n.tenant_id, 'lead.updated', to_jsonb(n), to_jsonb(o)
      FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
     WHERE n.tenant_id = public.crm_current_tenant()
       AND to_jsonb(n) - 'updated_at' - 'version' <> to_jsonb(o) - 'updated_at' - 'version';
    -- A stage move is also its own event, with where from and where to.
    INSERT INTO public.events (tenant_id, type, object, previous, extra)
    SELECT n.tenant_id, 'lead.stage_changed', to_jsonb(n), to_jsonb(o),
           jsonb_build_object('fromStageId', o.stage_id, 'toStageId', n.stage_id)
      FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
     WHERE n.tenant_id = public.crm_current_tenant()
       AND n.stage_id IS DISTINCT FROM o.stage_id;
    RETURN NULL;
END $$;
CREATE FUNCTION crm_leads_deleted() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.events (tenant_id, type, object)
    SELECT o.tenant_id, 'lead.deleted', to_jsonb(o)
      FROM old_rows o WHERE o.tenant_id = public.crm_current_tenant();
    RETURN NULL;
END $$;
CREATE TRIGGER leads_created AFTER INSERT ON leads REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_leads_created();
CREATE TRIGGER leads_updated AFTER UPDATE ON leads
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_leads_updated();
CREATE TRIGGER leads_deleted AFTER DELETE ON leads REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_leads_deleted();

CREATE FUNCTION crm_activities_created() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL; -- outside a tenant's context: no events (and no privileges needed)
    END IF;
    INSERT INTO public.events (tenant_id, type, object)
    SELECT n.tenant_id, 'activity.created', to_jsonb(n)
      FROM new_rows n WHERE n.tenant_id = public.crm_current_tenant();
    RETURN NULL;
END $$;
CREATE FUNCTION crm_activities_updated() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.events (tenant_id, type, object, previous)
    SELECT n.tenant_id, 'activity.updated', to_jsonb(n), to_jsonb(o)
      FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
     WHERE n.tenant_id = public.crm_current_tenant()
       AND to_jsonb(n) - 'updated_at' - 'version' <> to_jsonb(o) - 'updated_at' - 'version';
    RETURN NULL;
END $$;
CREATE FUNCTION crm_activities_deleted() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.crm_current_tenant() IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.events (tenant_id, type, object)
    SELECT o.tenant_id, 'activity.deleted', to_jsonb(o)
      FROM old_rows o WHERE o.tenant_id = public.crm_current_tenant();
    RETURN NULL;
END $$;
CREATE TRIGGER activities_created AFTER INSERT ON activities REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_activities_created();
CREATE TRIGGER activities_updated AFTER UPDATE ON activities
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_activities_updated();
CREATE TRIGGER activities_deleted AFTER DELETE ON activities REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_activities_deleted();

-- Pipelines: a pipeline and its stages change in several statements (the stages after the
-- pipeline row), so created/updated fire at commit (deferred), when the stages are final,
-- and the snapshot carries them (`stages`). `previous` holds the pipeline row as it was
-- (its stages are gone by then); a change of stages alone reports changedFields
-- ["stages"]. Deleted fires before the delete, while the stages still exist.
CREATE FUNCTION crm_pipeline_snapshot(p public.pipelines) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.to_jsonb(p) || pg_catalog.jsonb_build_object('stages', coalesce((
        SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s) ORDER BY s.position)
          FROM public.pipeline_stages s
         WHERE s.tenant_id = p.tenant_id AND s.pipeline_id = p.id), '[]'::jsonb))
$$;

CREATE FUNCTION crm_pipelines_changed() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    current public.pipelines;
BEGIN
    IF NEW.tenant_id IS DISTINCT FROM public.crm_current_tenant() THEN
        RETURN NULL;
    END IF;
    SELECT * INTO current FROM public.pipelines p
     WHERE p.tenant_id = NEW.tenant_id AND p.id = NEW.id;
    IF NOT FOUND THEN
        RETURN NULL; -- created and deleted in the same transaction
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.events (tenant_id, type, object)
        VALUES (NEW.tenant_id, 'pipeline.created', public.crm_pipeline_snapshot(current));
    ELSIF OLD.name IS DISTINCT FROM NEW.name OR OLD.is_default <> NEW.is_default
          OR OLD.version <> NEW.version THEN
        INSERT INTO public.events (tenant_id, type, object, previous, extra)
        VALUES (NEW.tenant_id, 'pipeline.updated', public.crm_pipeline_snapshot(current),
                to_jsonb(OLD),
                CASE WHEN OLD.name IS NOT DISTINCT FROM NEW.name AND OLD.is_default = NEW.is_default
                     THEN jsonb_build_object('changedFields', jsonb_build_array('stages')) END);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION crm_pipelines_deleted() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF OLD.tenant_id = public.crm_current_tenant() THEN
        INSERT INTO public.events (tenant_id, type, object)
        VALUES (OLD.tenant_id, 'pipeline.deleted', public.crm_pipeline_snapshot(OLD));
    END IF;
    RETURN OLD;
END $$;
CREATE CONSTRAINT TRIGGER pipelines_changed AFTER INSERT OR UPDATE ON pipelines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION crm_pipelines_changed();
CREATE TRIGGER pipelines_deleted BEFORE DELETE ON pipelines
    FOR EACH ROW EXECUTE FUNCTION crm_pipelines_deleted();

-- ---------------------------------------------------------------------------------------
