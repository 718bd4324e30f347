-- make bench: the dataset, loaded in SQL as the owner (a superuser URL of the bench database).
--
-- psql variables: tenants, contacts, companies, leads, activities (per tenant), keys (API keys
-- per tenant), hook_url (the webhook subscription's URL). Every id is derived from numbers,
-- md5('<kind><tenant>:<n>')::uuid, so the Lua scripts, the open-loop generator and the
-- pgbench scripts can pick a random row without a look-up: tenant t is md5('t' || t),
-- contact n of tenant t is md5('c' || t || ':' || n), and so on. The ids still look random to
-- the indexes (as gen_random_uuid's do). API keys are 'crm_sk_' followed by 40 hex digits,
-- stored as their SHA-256 as the code does (domain::token).
--
-- Triggers are off while loading (session_replication_role = replica): the default-pipeline
-- trigger would make random stage ids, and the event triggers would write an event per row
-- of history. Every row here is consistent by construction (composite keys match).
\set ON_ERROR_STOP on
SET session_replication_role = replica;
SET synchronous_commit = off;

INSERT INTO tenants (id, name)
SELECT md5('t' || t)::uuid, 'Bench tenant ' || t FROM generate_series(1, :tenants) AS t;

INSERT INTO users (id, email, name)
SELECT md5('u' || t)::uuid, 'owner' || t || '@bench.example', 'Owner ' || t
  FROM generate_series(1, :tenants) AS t;

INSERT INTO memberships (tenant_id, user_id, role)
SELECT md5('t' || t)::uuid, md5('u' || t)::uuid, 'owner' FROM generate_series(1, :tenants) AS t;

-- The secret of key k of tenant t: 'crm_sk_' || substr(md5('k' || t || ':' || k) || md5('K' || t || ':' || k), 1, 40).
-- member_role: the owner's role, which the trigger that is off would have copied (0025).
INSERT INTO api_keys (tenant_id, id, name, prefix, key_hash, role, scopes, created_by, acts_for,
                      member_role)
SELECT md5('t' || t)::uuid, md5('ki' || t || ':' || k)::uuid, 'bench key ' || k,
       substr(s.secret, 1, 12), sha256(convert_to(s.secret, 'UTF8')), 'owner', ARRAY['*'],
       md5('u' || t)::uuid, md5('u' || t)::uuid, 'owner'
  FROM generate_series(1, :tenants) AS t, generate_series(1, :keys) AS k,
       LATERAL (SELECT 'crm_sk_' || substr(md5('k' || t || ':' || k) || md5('K' || t || ':' || k), 1, 40)
                    AS secret) AS s;

INSERT INTO pipelines (tenant_id, id, name, is_default)
SELECT md5('t' || t)::uuid, md5('p' || t)::uuid, 'Sales', true FROM generate_series(1, :tenants) AS t;

INSERT INTO pipeline_stages (tenant_id, pipeline_id, id, name, position, probability, kind)
SELECT md5('t' || t)::uuid, md5('p' || t)::uuid, md5('s' || t || ':' || st.n)::uuid,
       st.name, st.n - 1, st.probability, st.kind
  FROM generate_series(1, :tenants) AS t,
       (VALUES (1, 'Qualified', 10, 'open'), (2, 'Contact made', 20, 'open'),
               (3, 'Proposal sent', 50, 'open'), (4, 'Negotiation', 75, 'open'),
               (5, 'Won', 100, 'won'), (6, 'Lost', 0, 'lost')) AS st(n, name, probability, kind);

INSERT INTO companies (tenant_id, id, name, domain, industry, tags, created_at, updated_at)
SELECT md5('t' || t)::uuid, md5('co' || t || ':' || n)::uuid, 'Company ' || n,
       'company' || n || '.t' || t || '.example', 'Software', ARRAY['bench'],
       now() - (n || ' minutes')::interval, now() - (n || ' minutes')::interval
  FROM generate_series(1, :tenants) AS t, generate_series(1, :companies) AS n;

INSERT INTO contacts (tenant_id, id, first_name, last_name, email, phone, title, tags,
                      custom_fields, company_id, created_at, updated_at)
SELECT md5('t' || t)::uuid, md5('c' || t || ':' || n)::uuid,
       (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken'])[1 + n % 8],
       'Last' || n, 'c' || n || '@t' || t || '.example', '+49 30 ' || (1000000 + n), 'Engineer',
       CASE WHEN n % 3 = 0 THEN ARRAY['bench', 'vip'] ELSE ARRAY['bench'] END,
       jsonb_build_object('n', n),
       md5('co' || t || ':' || (1 + n % :companies))::uuid,
       now() - (n || ' seconds')::interval, now() - (n || ' seconds')::interval
  FROM generate_series(1, :tenants) AS t, generate_series(1, :contacts) AS n;

INSERT INTO leads (tenant_id, id, title, contact_id, company_id, pipeline_id, stage_id, value,
                   currency, status, source, created_at, updated_at)
SELECT md5('t' || t)::uuid, md5('l' || t || ':' || n)::uuid, 'Deal ' || n,
       md5('c' || t || ':' || (1 + n % :contacts))::uuid,
       md5('co' || t || ':' || (1 + n % :companies))::uuid,
       md5('p' || t)::uuid, md5('s' || t || ':' || (1 + n % 6))::uuid, n * 100, 'EUR',
       CASE 1 + n % 6 WHEN 5 THEN 'won' WHEN 6 THEN 'lost' ELSE 'open' END, 'bench',
       now() - (n || ' seconds')::interval, now() - (n || ' seconds')::interval
  FROM generate_series(1, :tenants) AS t, generate_series(1, :leads) AS n;

INSERT INTO activities (tenant_id, id, type, subject, body, contact_id, created_at, updated_at)
SELECT md5('t' || t)::uuid, md5('a' || t || ':' || n)::uuid,
       (ARRAY['note', 'call', 'email', 'meeting', 'task'])[1 + n % 5], 'Activity ' || n,
       'Talked about deal ' || n, md5('c' || t || ':' || (1 + n % :contacts))::uuid,
       now() - (n || ' seconds')::interval, now() - (n || ' seconds')::interval
  FROM generate_series(1, :tenants) AS t, generate_series(1, :activities) AS n;

-- One subscription per tenant, for every event: each write also writes its event and its
-- delivery row. The URL is a closed loopback port and the worker is off during the bench.
-- `event_types` is what the domain expands `*` to (every type: migration 0023's backfill).
INSERT INTO webhook_subscriptions (tenant_id, id, url, description, events, event_types, secret)
SELECT md5('t' || t)::uuid, md5('w' || t)::uuid, :'hook_url', 'bench', ARRAY['*'],
       ARRAY['contact.created', 'contact.updated', 'contact.deleted',
             'company.created', 'company.updated', 'company.deleted',
             'lead.created', 'lead.updated', 'lead.deleted',
             'pipeline.created', 'pipeline.updated', 'pipeline.deleted',
             'activity.created', 'activity.updated', 'activity.deleted',
             'lead.stage_changed', 'invitation.created', 'webhook.test'],
       'whsec_' || encode(sha256(convert_to('w' || t, 'UTF8')), 'base64')
  FROM generate_series(1, :tenants) AS t;

SET session_replication_role = origin;
