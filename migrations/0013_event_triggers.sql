-- The transactional outbox: every create, update and delete of a contact, company, lead,
-- activity or pipeline writes its event into `events` inside the statement (or, for
-- pipelines, the transaction) that made the change. No change commits without its event,
-- and a rolled-back change leaves none: the event is part of the same transaction.
--
-- Why triggers and not an INSERT from the use case (the decision, docs/architecture.md
-- "Events are written by the database"):
--   * every write path emits, including ones added later and cascades (deleting a contact
--     deletes its activities: each gets its `activity.deleted`), and none can forget;
--   * a statement-level trigger writes all of a multi-row statement's events in one
--     INSERT from its transition table, inside the statement: no extra round trip, which
--     is what keeps a 100-contact batch cheap;
--   * the snapshot is the row as committed (`to_jsonb`), so the event cannot disagree
--     with the data. The API shape is rendered from it on read (`crm_render_event`).
--
-- Only changes made inside a tenant's context (`app.tenant_id` set, which the unit of
-- work always does) write events. Maintenance outside any tenant (the expired-sandbox
-- sweep deleting a whole tenant by cascade) writes none and returns before touching
-- `events`. A no-op update (nothing but `updated_at`/`version` changed) writes none.
--
-- The trigger functions are not SECURITY DEFINER: they run with the writer's rights, so
-- RLS checks every event row against the writer's tenant. They carry no SET clause, which
-- would cost a configuration save and restore on every statement; every name in them is
-- schema-qualified instead.

SET LOCAL ROLE crm_owner;

-- The tenant the transaction works for (NULL outside a tenant's context). Inlinable.
CREATE FUNCTION crm_current_tenant() RETURNS uuid
LANGUAGE sql STABLE
AS $$ SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '')::uuid $$;

-- One function serves every table: PL/pgSQL compiles a trigger function once per table
-- it is attached to, so `new_rows`/`old_rows` have that table's row type. TG_ARGV[0] is
-- the resource name used in the event type (`contact` for `contacts`).
CREATE FUNCTION crm_record_row_events() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    tenant   uuid := public.crm_current_tenant();
    resource text := TG_ARGV[0];
BEGIN
    IF tenant IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.events (tenant_id, type, object)
        SELECT n.tenant_id, resource || '.created', pg_catalog.to_jsonb(n) - 'search_text'
          FROM new_rows n
         WHERE n.tenant_id = tenant;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO public.events (tenant_id, type, object, previous)
        SELECT n.tenant_id, resource || '.updated', c.after, c.before
          FROM new_rows n
          JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
         CROSS JOIN LATERAL (SELECT pg_catalog.to_jsonb(n) - 'search_text' AS after,
                                    pg_catalog.to_jsonb(o) - 'search_text' AS before) c
         WHERE n.tenant_id = tenant
           AND c.after - 'updated_at' - 'version' <> c.before - 'updated_at' - 'version';
        IF resource = 'lead' THEN
            -- A stage move is also an event of its own, saying from where to where.
            INSERT INTO public.events (tenant_id, type, object, previous, extra)
            SELECT n.tenant_id, 'lead.stage_changed', pg_catalog.to_jsonb(n),
                   pg_catalog.to_jsonb(o),
                   pg_catalog.jsonb_build_object('fromStageId', o.stage_id,
                                                 'toStageId', n.stage_id)
              FROM new_rows n
              JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
             WHERE n.tenant_id = tenant
               AND n.stage_id IS DISTINCT FROM o.stage_id;
        END IF;
    ELSE
        INSERT INTO public.events (tenant_id, type, object)
        SELECT o.tenant_id, resource || '.deleted', pg_catalog.to_jsonb(o) - 'search_text'
          FROM old_rows o
         WHERE o.tenant_id = tenant;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER contacts_created AFTER INSERT ON contacts REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('contact');
CREATE TRIGGER contacts_updated AFTER UPDATE ON contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('contact');
CREATE TRIGGER contacts_deleted AFTER DELETE ON contacts REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('contact');

CREATE TRIGGER companies_created AFTER INSERT ON companies REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('company');
CREATE TRIGGER companies_updated AFTER UPDATE ON companies
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('company');
CREATE TRIGGER companies_deleted AFTER DELETE ON companies REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('company');

CREATE TRIGGER leads_created AFTER INSERT ON leads REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('lead');
CREATE TRIGGER leads_updated AFTER UPDATE ON leads
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('lead');
CREATE TRIGGER leads_deleted AFTER DELETE ON leads REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('lead');

CREATE TRIGGER activities_created AFTER INSERT ON activities REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('activity');
CREATE TRIGGER activities_updated AFTER UPDATE ON activities
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('activity');
CREATE TRIGGER activities_deleted AFTER DELETE ON activities REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_record_row_events('activity');

-- Pipelines change in several statements (the pipeline row, then its stages), so their
-- created/updated events fire at commit (a deferred constraint trigger), when the stages
-- are final, and the snapshot carries them (`stages`). Every stage change bumps the
-- pipeline's version, which is what fires `pipeline.updated` for it. `previous` is the
-- pipeline row as it was (its old stages are gone by then); a change of stages alone
-- reports changedFields ["stages"]. Deleted fires before the delete, while the stages
-- still exist.
CREATE FUNCTION crm_pipeline_snapshot(p public.pipelines) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.to_jsonb(p) || pg_catalog.jsonb_build_object('stages', coalesce((
        SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s) ORDER BY s.position)
          FROM public.pipeline_stages s
         WHERE s.tenant_id = p.tenant_id AND s.pipeline_id = p.id), '[]'::jsonb))
$$;

CREATE FUNCTION crm_record_pipeline_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    current public.pipelines;
BEGIN
    IF NEW.tenant_id IS DISTINCT FROM public.crm_current_tenant() THEN
        RETURN NULL;
    END IF;
    SELECT * INTO current FROM public.pipelines p
     WHERE p.tenant_id = NEW.tenant_id AND p.id = NEW.id;
    IF NOT FOUND THEN
        RETURN NULL; -- created (or changed) and deleted in the same transaction
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.events (tenant_id, type, object)
        VALUES (NEW.tenant_id, 'pipeline.created', public.crm_pipeline_snapshot(current));
    ELSIF OLD.name IS DISTINCT FROM NEW.name OR OLD.is_default <> NEW.is_default
          OR OLD.version <> NEW.version THEN
        INSERT INTO public.events (tenant_id, type, object, previous, extra)
        VALUES (NEW.tenant_id, 'pipeline.updated', public.crm_pipeline_snapshot(current),
                pg_catalog.to_jsonb(OLD),
                CASE WHEN OLD.name IS NOT DISTINCT FROM NEW.name
                          AND OLD.is_default = NEW.is_default
                     THEN pg_catalog.jsonb_build_object('changedFields',
                                                        pg_catalog.jsonb_build_array('stages'))
                END);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION crm_record_pipeline_deleted() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF OLD.tenant_id = public.crm_current_tenant() THEN
        INSERT INTO public.events (tenant_id, type, object)
        VALUES (OLD.tenant_id, 'pipeline.deleted', public.crm_pipeline_snapshot(OLD));
    END IF;
    RETURN OLD;
END
$$;

CREATE CONSTRAINT TRIGGER pipelines_changed AFTER INSERT OR UPDATE ON pipelines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION crm_record_pipeline_change();
CREATE TRIGGER pipelines_deleted BEFORE DELETE ON pipelines
    FOR EACH ROW EXECUTE FUNCTION crm_record_pipeline_deleted();

-- ---------------------------------------------------------------------------------------
-- Events have no foreign key to tenants (its per-row check would cost every event of a
-- batch), so the sweep of expired sandboxes now deletes their events itself, first.

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
    DELETE FROM public.events e
     USING public.tenants t
     WHERE e.tenant_id = t.id AND t.expires_at IS NOT NULL AND t.expires_at <= now();
    DELETE FROM public.tenants t WHERE t.expires_at IS NOT NULL AND t.expires_at <= now();
    GET DIAGNOSTICS removed = ROW_COUNT;
    -- Identities without any tenant cannot log in anywhere; keeping them would let a
    -- password chosen in a deleted sandbox follow the e-mail address into a real tenant.
    DELETE FROM public.users u
     WHERE NOT EXISTS (SELECT 1 FROM public.memberships m WHERE m.user_id = u.id);
    DELETE FROM public.qr_sessions q WHERE q.expires_at < now() - interval '1 day';
    RETURN removed;
END
$$;
