-- Least privilege for the delivery worker (issue 11, point 8).
--
-- Until now the worker's cross-tenant doors (claim due deliveries, forget old history)
-- were callable by crm_app with caller-chosen bounds: the API role could read every
-- tenant's pending payloads and signing secrets through the claim, hold every delivery
-- hostage for years with a long lease, or wipe recent history with a short age. Now:
--
--   crm_worker  LOGIN. What `crm worker` and the in-process worker of `crm serve` connect
--               as: owns nothing, not superuser, no BYPASSRLS (the start-up check refuses
--               it otherwise). It may claim deliveries, sweep history, and record the
--               outcome of an attempt inside the delivery's tenant (RLS applies: it sets
--               `app.tenant_id` like the API). Nothing else: it cannot read contacts.
--   crm_app     loses EXECUTE on the claim and the history sweep.
--
-- The bounds are the database's, whatever the caller passes: a lease between 1 s and
-- 1 h, at most 100 deliveries a claim, history kept at least 7 days (at most 10 years),
-- sweep chunks of at most 10 000 rows.
--
-- Demo sandboxes (tenants.expires_at IS NOT NULL: anyone can make one, without an
-- account) get at most 20 new deliveries per rolling hour, counted in the fan-out, so a
-- sandbox cannot be used to fire webhooks at someone else's server. Events past the cap
-- stay in the sandbox's event log (`GET /v1/events`), undelivered.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crm_worker') THEN
        BEGIN
            CREATE ROLE crm_worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another migrator created it between our check and our CREATE
        END;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO crm_worker;

SET LOCAL ROLE crm_owner;

-- Recording an attempt (PgUnitOfWork::record_attempt, failing_since), within the
-- delivery's tenant: exactly the columns those statements touch.
GRANT SELECT (tenant_id, id, subscription_id, attempts, lease_token),
      UPDATE (status, attempts, next_attempt_at, lease_until, lease_token, last_status_code,
              last_error, updated_at)
    ON webhook_deliveries TO crm_worker;
GRANT SELECT (tenant_id, id, enabled, disabled_reason, failing_since, updated_at),
      UPDATE (enabled, disabled_reason, failing_since, updated_at)
    ON webhook_subscriptions TO crm_worker;
GRANT INSERT (tenant_id, id, delivery_id, status_code, latency_ms, response_body, error)
    ON webhook_attempts TO crm_worker;

-- The fan-out counts a sandbox's recent deliveries (as the writer, within its tenant).
CREATE INDEX webhook_deliveries_created_idx ON webhook_deliveries (tenant_id, created_at);

-- ---------------------------------------------------------------------------------------
-- Fan-out with the sandbox cap. Runs with the writer's rights (crm_app, inside the
-- tenant's context), like before. An ordinary tenant costs one extra primary-key probe of
-- `tenants` per statement. A sandbox's fan-outs are serialised on a transaction-level
-- advisory lock of the tenant, so two concurrent writes cannot both spend the last slot.

CREATE OR REPLACE FUNCTION crm_fan_out_events() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    tenant   uuid;
    budget   bigint;
BEGIN
    FOR tenant IN SELECT DISTINCT n.tenant_id FROM new_rows n LOOP
        IF EXISTS (SELECT 1 FROM public.tenants t
                    WHERE t.id = tenant AND t.expires_at IS NOT NULL) THEN
            IF NOT EXISTS (SELECT 1 FROM public.webhook_subscriptions s
                            WHERE s.tenant_id = tenant AND s.enabled) THEN
                CONTINUE;
            END IF;
            PERFORM pg_advisory_xact_lock(hashtextextended('crm_sandbox_webhooks:' || tenant::text, 0));
            budget := 20 - (SELECT count(*) FROM public.webhook_deliveries d
                             WHERE d.tenant_id = tenant
                               AND d.created_at > pg_catalog.clock_timestamp() - interval '1 hour');
            IF budget > 0 THEN
                INSERT INTO public.webhook_deliveries (tenant_id, id, subscription_id, event_seq)
                SELECT m.tenant_id, gen_random_uuid(), m.subscription_id, m.seq
                  FROM (SELECT n.tenant_id, s.id AS subscription_id, n.seq
                          FROM new_rows n
                          JOIN public.webhook_subscriptions s
                            ON s.tenant_id = n.tenant_id AND s.enabled
                           AND s.events && ARRAY['*', n.type, split_part(n.type, '.', 1) || '.*']
                         WHERE n.tenant_id = tenant AND n.type <> 'webhook.test'
                         ORDER BY n.seq, s.id
                         LIMIT budget) m;
            END IF;
        ELSE
            INSERT INTO public.webhook_deliveries (tenant_id, id, subscription_id, event_seq)
            SELECT n.tenant_id, gen_random_uuid(), s.id, n.seq
              FROM new_rows n
              JOIN public.webhook_subscriptions s
                ON s.tenant_id = n.tenant_id AND s.enabled
               AND s.events && ARRAY['*', n.type, split_part(n.type, '.', 1) || '.*']
             WHERE n.tenant_id = tenant AND n.type <> 'webhook.test';
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------------------
-- The worker's doors, with the bounds fixed here.

SET LOCAL ROLE crm_definer;

CREATE OR REPLACE FUNCTION crm_claim_webhook_deliveries(p_limit integer, p_lease interval)
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
         LIMIT least(greatest(coalesce(p_limit, 1), 1), 100)
           FOR UPDATE OF d SKIP LOCKED
    ), leased AS (
        UPDATE public.webhook_deliveries d
           SET lease_until = now() + least(greatest(coalesce(p_lease, interval '1 minute'),
                                                    interval '1 second'), interval '1 hour'),
               lease_token = gen_random_uuid()
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

CREATE OR REPLACE FUNCTION crm_sweep_webhook_history(p_age interval, p_limit integer)
RETURNS bigint
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH bounds AS (
        SELECT now() - least(greatest(coalesce(p_age, interval '30 days'), interval '7 days'),
                             interval '3650 days') AS cutoff,
               least(greatest(coalesce(p_limit, 1), 1), 10000) AS chunk
    ), old_attempts AS (
        DELETE FROM public.webhook_attempts a
         WHERE (a.tenant_id, a.id) IN (
               SELECT o.tenant_id, o.id FROM public.webhook_attempts o, bounds b
                WHERE o.attempted_at < b.cutoff
                LIMIT (SELECT chunk FROM bounds))
        RETURNING 1
    ), old_events AS (
        DELETE FROM public.events e
         WHERE (e.tenant_id, e.seq) IN (
               SELECT o.tenant_id, o.seq FROM public.events o, bounds b
                WHERE o.created_at < b.cutoff
                  AND NOT EXISTS (SELECT 1 FROM public.webhook_deliveries d
                                   WHERE d.tenant_id = o.tenant_id AND d.event_seq = o.seq
                                     AND d.status = 'pending')
                LIMIT (SELECT chunk FROM bounds))
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM old_attempts) + (SELECT count(*) FROM old_events)
$$;

REVOKE ALL ON FUNCTION crm_claim_webhook_deliveries(integer, interval),
    crm_sweep_webhook_history(interval, integer) FROM PUBLIC, crm_app;
GRANT EXECUTE ON FUNCTION crm_claim_webhook_deliveries(integer, interval),
    crm_sweep_webhook_history(interval, integer) TO crm_worker;
