-- Webhooks: the tenant's event log (the transactional outbox), subscriptions, deliveries
-- and their attempts.
--
-- Events are stored as `to_jsonb` snapshots of the changed row (after, and before for
-- updates), which is cheap to write; the API shape (camelCase, RFC 3339 timestamps,
-- changedFields) is rendered from them when an event is read or delivered
-- (`crm_render_event`), off the write path. The triggers that write them on every CRM
-- table are designed and measured in docs/design/outbox-triggers.sql and land with the
-- rest of the webhook work (see that file for why they are not on yet).
--
-- Each new event is fanned out, in the same transaction, to one delivery per enabled
-- subscription whose filters match. The delivery worker claims due deliveries across
-- tenants through one narrow SECURITY DEFINER function and records every outcome in a
-- transaction scoped to the delivery's tenant.

SET LOCAL ROLE crm_owner;

-- ---------------------------------------------------------------------------------------
-- Tables

CREATE TABLE events (
    -- No foreign key to tenants: its per-row check would cost every write of a batch;
    -- a deleted tenant's events go with the tenant sweep and the retention sweep.
    tenant_id   uuid NOT NULL,
    -- Order of the log (`GET /v1/events?after=`), and the key deliveries refer to.
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    -- The public id (`evt_<hex>`, the `webhook-id` header); looked up only with `seq`.
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    -- The writing transaction: the log shows only events whose transaction, and every
    -- earlier one, has ended, so a reader paging with `after` never skips one.
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    type        text NOT NULL CHECK (char_length(type) BETWEEN 3 AND 64),
    -- Snapshots of the row (to_jsonb): after the change (before it, for deletes), and
    -- before it for updates; `extra` holds type-specific data (a stage move's stages).
    object      jsonb NOT NULL,
    previous    jsonb,
    extra       jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq)
);
-- Retention sweeps by age: append-only, so a BRIN index costs next to nothing to keep.
CREATE INDEX events_created_brin ON events USING brin (created_at);

CREATE TABLE webhook_subscriptions (
    tenant_id                   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                          uuid NOT NULL,
    url                         text NOT NULL CHECK (char_length(url) BETWEEN 8 AND 2048),
    description                 text CHECK (char_length(description) <= 500),
    events                      text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 50),
    enabled                     boolean NOT NULL DEFAULT true,
    disabled_reason             text CHECK (char_length(disabled_reason) <= 500),
    -- Signing needs the secret itself (as with Stripe); the API shows it only at creation
    -- and rotation. During a rotation the previous one signs too, until it expires.
    secret                      text NOT NULL CHECK (secret LIKE 'whsec\_%'),
    previous_secret             text CHECK (previous_secret LIKE 'whsec\_%'),
    previous_secret_expires_at  timestamptz,
    -- Since when every attempt has failed (NULL after a success): 5 days disable it.
    failing_since               timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    version                     bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhook_subscriptions_created_idx ON webhook_subscriptions (tenant_id, created_at, id);

CREATE TABLE webhook_deliveries (
    tenant_id         uuid NOT NULL,
    id                uuid NOT NULL,
    subscription_id   uuid NOT NULL,
    event_seq         bigint NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the next attempt is due; NULL once the delivery is over.
    next_attempt_at   timestamptz DEFAULT now(),
    -- A worker holds the delivery until then, under this token; after it, another worker
    -- may take it over (the holder died), and the old holder can no longer record.
    lease_until       timestamptz,
    lease_token       uuid,
    last_status_code  integer,
    last_error        text CHECK (char_length(last_error) <= 1024),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT webhook_deliveries_subscription_fkey FOREIGN KEY (tenant_id, subscription_id)
        REFERENCES webhook_subscriptions (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_event_fkey FOREIGN KEY (tenant_id, event_seq)
        REFERENCES events (tenant_id, seq) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_subscription_idx
    ON webhook_deliveries (tenant_id, subscription_id, created_at, id);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (tenant_id, event_seq);

CREATE TABLE webhook_attempts (
    tenant_id      uuid NOT NULL,
    id             uuid NOT NULL,
    delivery_id    uuid NOT NULL,
    attempted_at   timestamptz NOT NULL DEFAULT now(),
    status_code    integer,
    latency_ms     integer NOT NULL CHECK (latency_ms >= 0),
    -- The first 1 KiB of the answer.
    response_body  text CHECK (octet_length(response_body) <= 4096),
    error          text CHECK (char_length(error) <= 1024),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT webhook_attempts_delivery_fkey FOREIGN KEY (tenant_id, delivery_id)
        REFERENCES webhook_deliveries (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (tenant_id, delivery_id, attempted_at);
CREATE INDEX webhook_attempts_time_brin ON webhook_attempts USING brin (attempted_at);

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
CREATE POLICY events_isolation ON events
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

ALTER TABLE webhook_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_subscriptions_isolation ON webhook_subscriptions
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_deliveries_isolation ON webhook_deliveries
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_attempts_isolation ON webhook_attempts
    USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, DELETE ON events TO crm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_subscriptions, webhook_deliveries TO crm_app;
GRANT SELECT, INSERT, DELETE ON webhook_attempts TO crm_app;

-- ---------------------------------------------------------------------------------------
-- Fan-out: each new event, one delivery per enabled subscription that wants it.

CREATE FUNCTION crm_fan_out_events() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.webhook_deliveries (tenant_id, id, subscription_id, event_seq)
    SELECT n.tenant_id, gen_random_uuid(), s.id, n.seq
      FROM new_rows n
      JOIN public.webhook_subscriptions s
        ON s.tenant_id = n.tenant_id AND s.enabled
       AND s.events && ARRAY['*', n.type, split_part(n.type, '.', 1) || '.*']
     WHERE n.type <> 'webhook.test';
    RETURN NULL;
END $$;
CREATE TRIGGER events_fan_out AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_fan_out_events();

-- ---------------------------------------------------------------------------------------
-- Reading events: the API shape, rendered from the snapshots.
--
-- These helpers have no SET clause on purpose: PostgreSQL inlines only SQL functions
-- without one. Our own helpers are schema-qualified inside them, and built-ins resolve
-- from pg_catalog, which PostgreSQL searches first unless a caller deliberately lists it
-- later (only to its own harm: they run with the caller's rights).

CREATE FUNCTION crm_ts(t text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.to_char(t::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- One resource snapshot (a to_jsonb row) in the API's shape.
CREATE FUNCTION crm_render_object(p_resource text, r jsonb) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT CASE p_resource
        WHEN 'contact' THEN pg_catalog.jsonb_build_object(
            'id', r -> 'id', 'firstName', r -> 'first_name', 'lastName', r -> 'last_name',
            'email', r -> 'email', 'phone', r -> 'phone', 'title', r -> 'title',
            'tags', r -> 'tags', 'customFields', r -> 'custom_fields',
            'ownerId', r -> 'owner_id', 'companyId', r -> 'company_id')
        WHEN 'company' THEN pg_catalog.jsonb_build_object(
            'id', r -> 'id', 'name', r -> 'name', 'domain', r -> 'domain',
            'industry', r -> 'industry', 'size', r -> 'size', 'address', r -> 'address',
            'tags', r -> 'tags', 'customFields', r -> 'custom_fields')
        WHEN 'lead' THEN pg_catalog.jsonb_build_object(
            'id', r -> 'id', 'title', r -> 'title', 'contactId', r -> 'contact_id',
            'companyId', r -> 'company_id', 'pipelineId', r -> 'pipeline_id',
            'stageId', r -> 'stage_id', 'value', r -> 'value', 'currency', r -> 'currency',
            'status', r -> 'status', 'ownerId', r -> 'owner_id',
            'expectedCloseDate', r -> 'expected_close_date', 'source', r -> 'source')
        WHEN 'activity' THEN pg_catalog.jsonb_build_object(
            'id', r -> 'id', 'type', r -> 'type', 'subject', r -> 'subject',
            'body', r -> 'body', 'dueAt', public.crm_ts(r ->> 'due_at'),
            'completedAt', public.crm_ts(r ->> 'completed_at'),
            'contactId', r -> 'contact_id', 'companyId', r -> 'company_id',
            'leadId', r -> 'lead_id')
        WHEN 'pipeline' THEN pg_catalog.jsonb_build_object(
            'id', r -> 'id', 'name', r -> 'name', 'isDefault', r -> 'is_default')
            || CASE WHEN r ? 'stages' THEN pg_catalog.jsonb_build_object('stages', (
                   SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                              'id', s -> 'id', 'name', s -> 'name', 'position', s -> 'position',
                              'probability', s -> 'probability', 'kind', s -> 'kind')
                          ORDER BY (s ->> 'position')::int), '[]'::jsonb)
                     FROM pg_catalog.jsonb_array_elements(r -> 'stages') s)) ELSE '{}'::jsonb END
        ELSE r
    END || pg_catalog.jsonb_build_object(
        'createdAt', public.crm_ts(r ->> 'created_at'),
        'updatedAt', public.crm_ts(r ->> 'updated_at'), 'version', r -> 'version')
$$;

-- The fields an update changed: every key whose value differs, bookkeeping aside.
CREATE FUNCTION crm_changed_fields(p_new jsonb, p_old jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT coalesce(pg_catalog.jsonb_agg(n.key ORDER BY n.key), '[]'::jsonb)
      FROM pg_catalog.jsonb_each(p_new) n
     WHERE n.key NOT IN ('updatedAt', 'version', 'createdAt', 'stages')
       AND n.value IS DISTINCT FROM p_old -> n.key
$$;

-- The event as delivered and listed: {id, type, tenantId, createdAt, data}.
CREATE FUNCTION crm_render_event(e public.events) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.jsonb_build_object(
        'id', 'evt_' || pg_catalog.replace(e.id::text, '-', ''),
        'type', e.type,
        'tenantId', e.tenant_id,
        'createdAt', public.crm_ts(e.created_at::text),
        'data', CASE
            WHEN e.type = 'webhook.test' THEN e.object
            WHEN e.previous IS NULL THEN pg_catalog.jsonb_build_object('object', o.object)
            ELSE pg_catalog.jsonb_build_object(
                'object', o.object, 'previous', o.previous,
                'changedFields', public.crm_changed_fields(o.object, o.previous))
        END || coalesce(e.extra, '{}'::jsonb))
      FROM (SELECT public.crm_render_object(pg_catalog.split_part(e.type, '.', 1), e.object) AS object,
                   CASE WHEN e.previous IS NOT NULL
                        THEN public.crm_render_object(pg_catalog.split_part(e.type, '.', 1), e.previous)
                   END AS previous) o
$$;

-- ---------------------------------------------------------------------------------------
-- The worker's cross-tenant doors: claim due deliveries, forget old history.

GRANT SELECT ON events TO crm_definer;
GRANT SELECT (tenant_id, id, url, enabled, secret, previous_secret,
              previous_secret_expires_at) ON webhook_subscriptions TO crm_definer;
GRANT SELECT (tenant_id, id, subscription_id, event_seq, status, attempts, next_attempt_at,
              lease_until, lease_token), UPDATE (lease_until, lease_token)
    ON webhook_deliveries TO crm_definer;
GRANT DELETE ON events, webhook_attempts TO crm_definer;
GRANT SELECT (tenant_id, attempted_at) ON webhook_attempts TO crm_definer;
GRANT SELECT (tenant_id, event_seq, status) ON webhook_deliveries TO crm_definer;

SET LOCAL ROLE crm_definer;

-- Takes up to p_limit due deliveries of enabled subscriptions, across tenants, that no
-- live lease holds (FOR UPDATE SKIP LOCKED: concurrent workers take disjoint sets), leases
-- them for p_lease under a fresh token, and returns what sending needs, the body rendered.
-- The outcome is recorded later, scoped to the tenant, and only with the token (a worker
-- whose lease ran out cannot overwrite its successor's outcome).
CREATE FUNCTION crm_claim_webhook_deliveries(p_limit integer, p_lease interval)
RETURNS TABLE (tenant_id uuid, delivery_id uuid, lease_token uuid, attempts integer,
               subscription_id uuid, event_id text, url text, payload text,
               secret text, previous_secret text)
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH due AS (
        SELECT d.tenant_id, d.id
          FROM public.webhook_deliveries d
          JOIN public.webhook_subscriptions s
            ON s.tenant_id = d.tenant_id AND s.id = d.subscription_id AND s.enabled
         WHERE d.status = 'pending'
           AND d.next_attempt_at <= now()
           AND (d.lease_until IS NULL OR d.lease_until < now())
         ORDER BY d.next_attempt_at
         LIMIT least(greatest(p_limit, 1), 1000)
           FOR UPDATE OF d SKIP LOCKED
    ), leased AS (
        UPDATE public.webhook_deliveries d
           SET lease_until = now() + p_lease, lease_token = gen_random_uuid()
          FROM due
         WHERE d.tenant_id = due.tenant_id AND d.id = due.id
        RETURNING d.tenant_id, d.id, d.lease_token, d.attempts, d.subscription_id, d.event_seq
    )
    SELECT l.tenant_id, l.id, l.lease_token, l.attempts, l.subscription_id,
           'evt_' || replace(e.id::text, '-', ''), s.url, public.crm_render_event(e)::text,
           s.secret, CASE WHEN s.previous_secret_expires_at > now() THEN s.previous_secret END
      FROM leased l
      JOIN public.webhook_subscriptions s ON s.tenant_id = l.tenant_id AND s.id = l.subscription_id
      JOIN public.events e ON e.tenant_id = l.tenant_id AND e.seq = l.event_seq
$$;

-- Deletes events and attempts older than p_age, across tenants (retention). An event
-- with a delivery still pending is kept until it is over.
CREATE FUNCTION crm_sweep_webhook_history(p_age interval)
RETURNS bigint
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH attempts AS (
        DELETE FROM public.webhook_attempts a WHERE a.attempted_at < now() - p_age
        RETURNING 1
    ), old_events AS (
        DELETE FROM public.events e
         WHERE e.created_at < now() - p_age
           AND NOT EXISTS (SELECT 1 FROM public.webhook_deliveries d
                            WHERE d.tenant_id = e.tenant_id AND d.event_seq = e.seq
                              AND d.status = 'pending')
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM attempts) + (SELECT count(*) FROM old_events)
$$;

REVOKE ALL ON FUNCTION crm_claim_webhook_deliveries(integer, interval),
    crm_sweep_webhook_history(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_claim_webhook_deliveries(integer, interval),
    crm_sweep_webhook_history(interval) TO crm_app;
