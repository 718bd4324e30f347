-- POST /v1/contacts (the statement triggers write the event and its webhook delivery)
-- pgbench -M prepared, as crm_app: the API's SQL for this scenario with the tenant set by
-- set_config instead of crm_authenticate_api_key (the 4-statement shape of SPEC §9).
-- Variables: -D tenants=N -D contacts=N (per tenant). Ids are md5-derived as in
-- scripts/bench/load.sql; computing them costs the statement about a microsecond.
\set t random(1, :tenants)
\set r random(1, 9000000000000000000)
BEGIN;
SELECT set_config('app.tenant_id', md5('t' || :t::text), true);
INSERT INTO contacts (tenant_id, id, first_name, last_name, email, phone, title, tags, custom_fields, owner_id, company_id) VALUES (md5('t' || :t::text)::uuid, gen_random_uuid(), 'Bench', 'Post', 'p' || :r::text || '@post.example', NULL, NULL, '{bench}', '{}', NULL, NULL) RETURNING tenant_id, id, first_name, last_name, email, phone, title, tags, custom_fields, owner_id, company_id, created_at, updated_at, version;
COMMIT;
