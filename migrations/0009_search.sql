-- Search and tag filters that stay indexed under row-level security.
--
-- PostgreSQL may only use an index for a condition whose operator is LEAKPROOF when the
-- table has row-level security: `LIKE` (trigram index) and `@>` (GIN on tags) are not, so
-- as the application role they fell back to scanning the whole table. These narrow
-- SECURITY DEFINER functions (owned by crm_definer, which bypasses RLS) run the indexed
-- condition themselves, restricted to the caller's tenant read from app.tenant_id, and
-- return only ids the caller could see anyway. The list queries join on them.

SET LOCAL ROLE crm_owner;

GRANT SELECT (tenant_id, id, search_text, tags) ON contacts TO crm_definer;
GRANT SELECT (tenant_id, id, search_text, tags) ON companies TO crm_definer;

SET LOCAL ROLE crm_definer;

CREATE FUNCTION crm_search_contacts(p_pattern text)
RETURNS SETOF uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.id FROM public.contacts c
     WHERE c.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
       AND c.search_text LIKE p_pattern;
$$;

CREATE FUNCTION crm_tagged_contacts(p_tag text)
RETURNS SETOF uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.id FROM public.contacts c
     WHERE c.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
       AND c.tags @> ARRAY[p_tag];
$$;

CREATE FUNCTION crm_search_companies(p_pattern text)
RETURNS SETOF uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.id FROM public.companies c
     WHERE c.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
       AND c.search_text LIKE p_pattern;
$$;

CREATE FUNCTION crm_tagged_companies(p_tag text)
RETURNS SETOF uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.id FROM public.companies c
     WHERE c.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
       AND c.tags @> ARRAY[p_tag];
$$;

REVOKE ALL ON FUNCTION crm_search_contacts(text), crm_tagged_contacts(text),
                       crm_search_companies(text), crm_tagged_companies(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_search_contacts(text), crm_tagged_contacts(text),
                          crm_search_companies(text), crm_tagged_companies(text) TO crm_app;
