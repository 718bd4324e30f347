-- The contact read with the tenant set in the same statement, and no key check: what the
-- API's GET would cost PostgreSQL without authenticating (a bound, not a shape we may ship).
\set t random(1, :tenants)
\set n random(1, :contacts)
WITH scope AS MATERIALIZED (SELECT set_config('app.tenant_id', md5('t' || :t::text)::uuid::text, true)::uuid AS tenant_id) SELECT c.* FROM scope LEFT JOIN LATERAL (SELECT * FROM contacts c WHERE c.tenant_id = scope.tenant_id AND c.id = md5('c' || :t::text || ':' || :n::text)::uuid OFFSET 0) c ON true;
