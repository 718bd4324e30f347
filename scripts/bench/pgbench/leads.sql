-- GET /v1/leads?stageId=…&limit=25
-- pgbench -M prepared, as crm_app: the API's SQL for this scenario with the tenant set by
-- set_config instead of crm_authenticate_api_key (the 4-statement shape of SPEC §9).
-- Variables: -D tenants=N -D contacts=N (per tenant). Ids are md5-derived as in
-- scripts/bench/load.sql; computing them costs the statement about a microsecond.
\set t random(1, :tenants)
\set s random(1, 6)
BEGIN;
SELECT set_config('app.tenant_id', md5('t' || :t::text), true);
SELECT tenant_id, id, title, contact_id, company_id, pipeline_id, stage_id, value, currency, status, owner_id, expected_close_date, source, created_at, updated_at, version FROM leads WHERE tenant_id = md5('t' || :t::text)::uuid AND stage_id = md5('s' || :t::text || ':' || :s::text)::uuid ORDER BY created_at DESC, id DESC LIMIT 26;
COMMIT;
