-- `q` on the lead and activity lists (issue 12), indexed under row-level security as the
-- contact and company searches are (migration 0009: the trigram `LIKE` is not LEAKPROOF,
-- so a SECURITY DEFINER function runs it restricted to `app.tenant_id` and returns ids).
--
--  * leads: the title and source (`leads.search_text`), and the linked contact's and
--    company's names: what a user types. Three index scans, one per table, united;
--  * activities: the subject and the body, in a new generated `search_text` (the event
--    triggers already leave any `search_text` out of event snapshots).

SET LOCAL ROLE crm_owner;

CREATE INDEX leads_search_idx ON leads USING gin (search_text gin_trgm_ops);
-- The joins from a matching contact or company to its leads use the partial indexes
-- leads_contact_idx and leads_company_idx of migration 0011.

ALTER TABLE activities
    ADD COLUMN search_text text GENERATED ALWAYS AS (lower(subject || ' ' || coalesce(body, ''))) STORED;
CREATE INDEX activities_search_idx ON activities USING gin (search_text gin_trgm_ops);

GRANT SELECT (tenant_id, id, search_text, contact_id, company_id) ON leads TO crm_definer;
GRANT SELECT (tenant_id, id, search_text) ON activities TO crm_definer;

SET LOCAL ROLE crm_definer;

CREATE FUNCTION crm_search_leads(p_pattern text)
RETURNS SETOF uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH tenant AS (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid AS id)
    SELECT l.id FROM public.leads l, tenant
     WHERE l.tenant_id = tenant.id AND l.search_text LIKE p_pattern
    UNION
    SELECT l.id FROM public.contacts c
      JOIN public.leads l ON l.tenant_id = c.tenant_id AND l.contact_id = c.id, tenant
     WHERE c.tenant_id = tenant.id AND c.search_text LIKE p_pattern
    UNION
    SELECT l.id FROM public.companies c
      JOIN public.leads l ON l.tenant_id = c.tenant_id AND l.company_id = c.id, tenant
     WHERE c.tenant_id = tenant.id AND c.search_text LIKE p_pattern;
$$;

CREATE FUNCTION crm_search_activities(p_pattern text)
RETURNS SETOF uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.id FROM public.activities a
     WHERE a.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
       AND a.search_text LIKE p_pattern;
$$;

REVOKE ALL ON FUNCTION crm_search_leads(text), crm_search_activities(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_search_leads(text), crm_search_activities(text) TO crm_app;
