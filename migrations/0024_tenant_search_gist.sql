-- A contact search whose cost follows the caller's tenant, not the whole table (issue 14).
--
-- `q` on contacts runs crm_search_contacts (migration 0009): `tenant_id = <the caller's>
-- AND search_text LIKE '%…%'`. The trigram GIN index of migration 0003 holds every
-- tenant's rows together, so a search fetched every tenant's matches and dropped the
-- others' afterwards; with 10,000 contacts per tenant and 50 tenants sharing names it cost
-- 13.7 ms (docs/benchmarks.md, "Search cost"). A GiST index on (tenant_id, trigrams) keeps
-- each tenant's rows in subtrees of their own: the same search walks only the caller's
-- (3.5 ms there). A GIN index with tenant_id as a key (btree_gin) was measured too and is
-- slower (GIN reads the whole posting list of the tenant key). The GIN index stays: where
-- a pattern's matches are rare across the table it is still the planner's cheaper path.
--
-- btree_gist is a trusted contrib extension (PostgreSQL 13+), like pg_trgm.

CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;

SET LOCAL ROLE crm_owner;

CREATE INDEX contacts_tenant_search_gist ON contacts USING gist (tenant_id, search_text gist_trgm_ops);
