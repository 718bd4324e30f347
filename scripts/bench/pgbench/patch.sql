-- PATCH /v1/contacts/{id} {"title": …}: the row is read FOR UPDATE, then written whole
-- pgbench -M prepared, as crm_app: the API's SQL for this scenario with the tenant set by
-- set_config instead of crm_authenticate_api_key (the 4-statement shape of SPEC §9).
-- Variables: -D tenants=N -D contacts=N (per tenant). Ids are md5-derived as in
-- scripts/bench/load.sql; computing them costs the statement about a microsecond.
\set t random(1, :tenants)
\set n random(1, :contacts)
\set v random(1, 1000000)
BEGIN;
SELECT set_config('app.tenant_id', md5('t' || :t::text), true);
SELECT tenant_id, id, first_name, last_name, email, phone, title, tags, custom_fields, owner_id, company_id, created_at, updated_at, version FROM contacts WHERE tenant_id = md5('t' || :t::text)::uuid AND id = md5('c' || :t::text || ':' || :n::text)::uuid FOR UPDATE;
UPDATE contacts SET first_name = first_name, last_name = last_name, email = email, phone = phone, title = 'Title ' || :v::text, tags = tags, custom_fields = custom_fields, owner_id = owner_id, company_id = company_id, updated_at = greatest(now(), updated_at), version = version + 1 WHERE tenant_id = md5('t' || :t::text)::uuid AND id = md5('c' || :t::text || ':' || :n::text)::uuid RETURNING tenant_id, id, first_name, last_name, email, phone, title, tags, custom_fields, owner_id, company_id, created_at, updated_at, version;
COMMIT;
