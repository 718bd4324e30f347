-- Events the core can see, one definition of each API shape, one filter rule (issue 13,
-- point 4).
--
-- Capture stays as it is: the triggers of 0013 write each change's `to_jsonb` row
-- snapshots into `events` in the writing statement (the same-transaction guarantee).
-- What changes is everything after it:
--
--  * Rendering leaves SQL. The event log (`GET /v1/events`) and the delivery claim now
--    return the stored snapshots (type, object, previous, time); the PostgreSQL adapter
--    converts them into `domain::event::DomainEvent`, and the API renders that with the
--    very DTOs of its HTTP responses. `crm_render_event`, `crm_render_object`,
--    `crm_changed_fields` and `crm_ts` (a second definition of every response shape)
--    are dropped.
--  * `invitation.created` stores a row snapshot like every other event (it stored its
--    API shape, built here). The adapter reads both forms, so older events stay as they
--    are.
--  * Subscription filters (`*`, `contact.*`, exact types) are matched by
--    `domain::webhook::filters_match` only: the application expands a subscription's
--    filters into the concrete event types at create and update and stores them in
--    `event_types`; the fan-out tests membership, no pattern logic left in SQL. The
--    back-fill below expands existing subscriptions once, with the rule the fan-out used
--    until now, over the closed list of types of this release.

SET LOCAL ROLE crm_owner;

-- ---------------------------------------------------------------------------------------
-- The expanded filters.

ALTER TABLE webhook_subscriptions
    ADD COLUMN event_types text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(event_types) <= 64);

-- The back-fill runs as crm_definer (BYPASSRLS: a migration has no tenant), with the
-- column privileges it needs for the length of this migration only.
GRANT SELECT (events), UPDATE (event_types) ON webhook_subscriptions TO crm_definer;
SET LOCAL ROLE crm_definer;
UPDATE public.webhook_subscriptions s
   SET event_types = ARRAY(
       SELECT k.t
         FROM unnest(ARRAY[
                  'contact.created', 'contact.updated', 'contact.deleted',
                  'company.created', 'company.updated', 'company.deleted',
                  'lead.created', 'lead.updated', 'lead.deleted',
                  'pipeline.created', 'pipeline.updated', 'pipeline.deleted',
                  'activity.created', 'activity.updated', 'activity.deleted',
                  'lead.stage_changed', 'invitation.created', 'webhook.test'])
              WITH ORDINALITY AS k (t, n)
        WHERE s.events && ARRAY['*', k.t, split_part(k.t, '.', 1) || '.*']
        ORDER BY k.n);
SET LOCAL ROLE crm_owner;
REVOKE SELECT (events), UPDATE (event_types) ON webhook_subscriptions FROM crm_definer;

-- Every writer names the types from now on: a write path that forgets fails loudly.
ALTER TABLE webhook_subscriptions ALTER COLUMN event_types DROP DEFAULT;

-- ---------------------------------------------------------------------------------------
-- Fan-out by membership. As in 0017 otherwise (the sandbox cap, the writer's rights).

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
                           AND n.type = ANY (s.event_types)
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
               AND n.type = ANY (s.event_types)
             WHERE n.tenant_id = tenant AND n.type <> 'webhook.test';
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------------------
-- `invitation.created`: a row snapshot like the others (never the token's hash).

CREATE OR REPLACE FUNCTION crm_record_invitation_event() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO public.events (tenant_id, type, object)
    VALUES (NEW.tenant_id, 'invitation.created', pg_catalog.to_jsonb(NEW) - 'token_hash');
    RETURN NULL;
END
$$;

-- ---------------------------------------------------------------------------------------
-- The claim returns the snapshots; the worker renders and signs.

SET LOCAL ROLE crm_definer;

DROP FUNCTION crm_claim_webhook_deliveries(integer, interval);

-- Takes up to p_limit due deliveries of enabled subscriptions, across tenants, that no
-- live lease holds (FOR UPDATE SKIP LOCKED: concurrent workers take disjoint sets), leases
-- them under a fresh token, and returns what sending needs: the destination, the secrets,
-- and the event as stored. Bounds as in 0017 (1 to 100 a claim, a lease of 1 s to 1 h).
CREATE FUNCTION crm_claim_webhook_deliveries(p_limit integer, p_lease interval)
RETURNS TABLE (tenant_id uuid, delivery_id uuid, lease_token uuid, attempts integer,
               subscription_id uuid, url text, secret text, previous_secret text,
               event_id uuid, event_type text, event_created_at timestamptz,
               event_object jsonb, event_previous jsonb)
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
    SELECT l.tenant_id, l.id, l.lease_token, l.attempts, l.subscription_id, s.url,
           s.secret, CASE WHEN s.previous_secret_expires_at > now() THEN s.previous_secret END,
           e.id, e.type, e.created_at, e.object, e.previous
      FROM leased l
      JOIN public.webhook_subscriptions s ON s.tenant_id = l.tenant_id AND s.id = l.subscription_id
      JOIN public.events e ON e.tenant_id = l.tenant_id AND e.seq = l.event_seq
$$;

REVOKE ALL ON FUNCTION crm_claim_webhook_deliveries(integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_claim_webhook_deliveries(integer, interval) TO crm_worker;

-- ---------------------------------------------------------------------------------------
-- Rendering in SQL is gone.

SET LOCAL ROLE crm_owner;

DROP FUNCTION crm_render_event(public.events);
DROP FUNCTION crm_render_object(text, jsonb);
DROP FUNCTION crm_changed_fields(jsonb, jsonb);
DROP FUNCTION crm_ts(text);
